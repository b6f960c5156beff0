//! The event decoder: records of any length and content for every data source of the decode
//! fixture (all field kinds), in JSON and in columns. The first byte picks the data source.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::decoder(data));

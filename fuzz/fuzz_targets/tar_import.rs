//! `import` of a layout tar into a fresh store: refused or imported, never a panic, and what
//! was imported passes the store's own reads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::tar_import(data));

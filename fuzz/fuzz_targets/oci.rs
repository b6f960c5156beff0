//! OCI index and manifest parsing: the input is tagged in a fresh store as an image index and
//! as an image manifest, then read the ways the commands read images (list, inspect, the
//! runtime's gadget reader); it is also written as the store's own index.json.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ig_image_fuzz::targets::oci(data));

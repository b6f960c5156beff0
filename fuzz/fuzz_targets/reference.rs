//! Image references and digests: parsing, and that what parses prints back into something that
//! parses to the same reference.
#![no_main]

use gadget_store::{Digest, Reference};
use ig_image_fuzz::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };
    let _ = Digest::parse(input);
    let Ok(r) = Reference::parse(input) else {
        return;
    };
    let full = r.full();
    let again = Reference::parse(&full)
        .unwrap_or_else(|e| panic!("`{input}` parsed, its full form `{full}` does not: {e}"));
    assert_eq!(again.full(), full, "input `{input}`");
    let _ = (r.display(), r.display_name(), r.name(), r.without_digest());
    if let Some(t) = r.tag() {
        let _ = r.with_tag(t);
    }
});

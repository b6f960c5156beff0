//! artifacthub-pkg.yml: read and checked (against Artifact Hub's rules and the gadget.yaml
//! beside it).
#![no_main]

use ig_image::artifacthub::{self, PkgOptions};
use ig_image_fuzz::{GADGET_YAML, fresh_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("artifacthub");
    std::fs::write(dir.join("gadget.yaml"), GADGET_YAML).unwrap();
    std::fs::write(dir.join("artifacthub-pkg.yml"), data).unwrap();
    let opts = PkgOptions {
        dir: dir.clone(),
        image: None,
        version: Some("1.0.0".into()),
    };
    let _ = artifacthub::check(&opts);
    let _ = artifacthub::generate(&opts);
});

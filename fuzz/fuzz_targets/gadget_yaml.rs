//! gadget.yaml: ig-image's validation (alone and against a real object), its descriptive
//! fields, and the runtime's reading of it.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use gadget_object::GadgetObject;
use ig_image::metadata::{self, ValidateOptions};
use ig_image_fuzz::{repo_file, text};
use libfuzzer_sys::fuzz_target;

fn object() -> &'static GadgetObject {
    static OBJ: OnceLock<GadgetObject> = OnceLock::new();
    OBJ.get_or_init(|| {
        GadgetObject::parse(repo_file!("gadget-object/testdata/good.o")).expect("good.o parses")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(yaml) = text(data) else { return };
    let file = Path::new("gadget.yaml");
    let _ = metadata::validate(yaml, file, None);
    let _ = metadata::validate_with(
        yaml,
        file,
        Some(object()),
        &ValidateOptions { has_wasm: true },
    );
    let _ = metadata::descriptive(yaml, file);
    if let Ok(m) = runtime_min::metadata::Metadata::parse(yaml) {
        let obj = object();
        let _ = runtime_min::decode::Decoder::for_object(
            obj,
            Some(&m),
            runtime_min::decode::Clock::with_offset(0),
        );
    }
});

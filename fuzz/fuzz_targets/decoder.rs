//! The event decoder: records of any length and content for every data source of the decode
//! fixture (all field kinds), in JSON and in columns. The first byte picks the data source.
#![no_main]

use std::sync::OnceLock;

use gadget_object::GadgetObject;
use ig_image_fuzz::repo_file;
use libfuzzer_sys::fuzz_target;
use runtime_min::decode::{Clock, Decoder};

fn decoders() -> &'static [Decoder] {
    static D: OnceLock<Vec<Decoder>> = OnceLock::new();
    D.get_or_init(|| {
        let obj = GadgetObject::parse(repo_file!("runtime-min/testdata/decode_fixture.o"))
            .expect("the decode fixture parses");
        Decoder::for_object(&obj, None, Clock::with_offset(0)).expect("decoders")
    })
}

fuzz_target!(|data: &[u8]| {
    let d = decoders();
    let Some((&pick, record)) = data.split_first() else {
        return;
    };
    let decoder = &d[pick as usize % d.len()];
    let mut out = Vec::new();
    decoder.write_json(record, None, &mut out);
    serde_json::from_slice::<serde_json::Value>(&out).unwrap_or_else(|e| {
        panic!(
            "the decoder wrote invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    });
    let _ = decoder.texts(record);
});

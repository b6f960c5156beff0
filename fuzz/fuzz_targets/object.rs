//! The ELF/BTF object parser and the object checks: whatever the bytes, a result, never a
//! panic; and what parses also gets its data sources, fields and decoders.
#![no_main]

use gadget_object::{Endianness, GadgetObject};
use libfuzzer_sys::fuzz_target;
use runtime_min::decode::{Clock, Decoder};

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = GadgetObject::parse(data) else {
        return;
    };
    let _ = obj.check(Endianness::Little);
    let _ = obj.check(Endianness::Big);
    let _ = obj.summary();
    for ds in obj.data_sources() {
        let _ = obj.data_source_fields(&ds.name);
        let _ = obj.map_iter_fields(&ds.name);
    }
    let _ = Decoder::for_object(&obj, None, Clock::with_offset(0));
});

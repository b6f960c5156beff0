//! `import` of a layout tar into a fresh store: refused or imported, never a panic, and what
//! was imported passes the store's own reads.
#![no_main]

use gadget_store::Store;
use ig_image_fuzz::fresh_dir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("tar_import");
    let archive = dir.join("in.tar");
    std::fs::write(&archive, data).unwrap();
    let store = Store::open(dir.join("store")).expect("a fresh store opens");
    if let Ok(names) = store.import(&archive) {
        for image in store.list().expect("an imported store lists") {
            if let Some(r) = image.parsed() {
                let _ = store.resolve(&r);
            }
        }
        let _ = names;
    }
});

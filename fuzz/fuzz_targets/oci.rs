//! OCI index and manifest parsing: the input is tagged in a fresh store as an image index and
//! as an image manifest, then read the ways the commands read images (list, inspect, the
//! runtime's gadget reader); it is also written as the store's own index.json.
#![no_main]

use gadget_store::{Reference, Store};
use ig_image_fuzz::fresh_dir;
use libfuzzer_sys::fuzz_target;
use oci_spec::image::{Descriptor, MediaType};

fuzz_target!(|data: &[u8]| {
    let dir = fresh_dir("oci");
    let store = Store::open(dir.join("store")).expect("a fresh store");
    let index: Reference = "fuzz:index".parse().unwrap();
    let manifest: Reference = "fuzz:manifest".parse().unwrap();
    let tagged = store.transaction(|tx| {
        let digest = tx.write_blob(data)?;
        let size = data.len() as u64;
        // Tagging walks the document's graph; a document naming missing blobs is refused.
        let a = tx.tag(
            &index,
            Descriptor::new(MediaType::ImageIndex, size, digest.to_oci()),
        );
        let b = tx.tag(
            &manifest,
            Descriptor::new(MediaType::ImageManifest, size, digest.to_oci()),
        );
        Ok::<_, gadget_store::StoreError>(a.is_ok() || b.is_ok())
    });
    if tagged.unwrap_or(false) {
        let _ = store.list();
        for r in [&index, &manifest] {
            let _ = ig_image::inspect::inspect(&store, r, None);
            let _ = runtime_min::source::Gadget::from_store(&store, r, None);
        }
    }
    // The same bytes as the store's index.json.
    let layout = dir.join("layout");
    if std::fs::create_dir_all(layout.join("blobs/sha256")).is_ok()
        && std::fs::write(
            layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .is_ok()
        && std::fs::write(layout.join("index.json"), data).is_ok()
    {
        if let Ok(s) = Store::open(&layout) {
            let _ = s.list();
            let _ = s.resolve(&index);
        }
    }
});

//! Signature verification against a fresh store holding one image: cosign simple-signing
//! payloads and Sigstore bundle statements signed by the target itself (so that the parsing
//! behind a good signature is reached), and raw signature manifests and bundles as given.
//! The first input byte picks which; the rest is the fuzzed document.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gadget_store::{Digest, Reference, Store, StoreError, Transaction};
use ig_image::sign::cosign::{
    BUNDLE, EMPTY, EMPTY_BLOB, IN_TOTO_PAYLOAD_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, pae,
};
use ig_image::sign::keys::{NamedKey, PrivateKey};
use ig_image_fuzz::fresh_dir;
use libfuzzer_sys::fuzz_target;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The signed image: an empty index, so its digest is the same in every run (seeds name it).
const SUBJECT: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

fn key() -> &'static (PrivateKey, Vec<NamedKey>) {
    static KEY: OnceLock<(PrivateKey, Vec<NamedKey>)> = OnceLock::new();
    KEY.get_or_init(|| {
        let k = PrivateKey::generate_p256();
        let named = vec![NamedKey {
            name: "fuzz.pub".into(),
            key: k.public_key(),
        }];
        (k, named)
    })
}

fn blob(tx: &Transaction<'_>, media_type: &str, data: &[u8]) -> Result<Value, StoreError> {
    let digest = tx.write_blob(data)?;
    Ok(json!({"mediaType": media_type, "digest": digest.as_str(), "size": data.len()}))
}

fn manifest(tx: &Transaction<'_>, doc: &Value) -> Result<Descriptor, StoreError> {
    tx.write_json(MediaType::ImageManifest, doc)
}

fn signature_manifest(
    subject: &Digest,
    artifact: Option<&str>,
    layer: Value,
    empty: Value,
) -> Value {
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": empty,
        "layers": [layer],
        "subject": {"mediaType": INDEX, "digest": subject.as_str(), "size": SUBJECT.len()},
    });
    if let Some(a) = artifact {
        doc["artifactType"] = json!(a);
    }
    doc
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, doc)) = data.split_first() else {
        return;
    };
    let (private, keys) = key();
    let dir = fresh_dir("signature");
    let store = Store::open(dir.join("store")).expect("a fresh store");
    let image: Reference = "fuzz:v1".parse().unwrap();
    let set_up = store.transaction(|tx| -> Result<(), StoreError> {
        let subject = tx.write_blob(SUBJECT)?;
        let desc = Descriptor::new(
            MediaType::ImageIndex,
            SUBJECT.len() as u64,
            subject.to_oci(),
        );
        tx.tag(&image, desc)?;
        let empty = blob(tx, EMPTY, EMPTY_BLOB)?;
        let sig_tag = image
            .with_tag(&format!("sha256-{}.sig", subject.hex()))
            .expect("a valid tag");
        match mode % 4 {
            // A simple-signing payload, signed.
            0 => {
                let mut layer = blob(tx, SIMPLE_SIGNING, doc)?;
                let sig = private.sign(doc).expect("signing works");
                layer["annotations"] = json!({SIGNATURE_ANNOTATION: B64.encode(sig)});
                let m = signature_manifest(&subject, None, layer, empty);
                let desc = manifest(tx, &m)?;
                tx.tag(&sig_tag, desc)?;
            }
            // An in-toto statement in a bundle, signed.
            1 => {
                let sig = private
                    .sign(&pae(IN_TOTO_PAYLOAD_TYPE, doc))
                    .expect("signing works");
                let bundle = json!({
                    "mediaType": BUNDLE,
                    "dsseEnvelope": {
                        "payloadType": IN_TOTO_PAYLOAD_TYPE,
                        "payload": B64.encode(doc),
                        "signatures": [{"sig": B64.encode(sig)}],
                    },
                });
                let layer = blob(tx, BUNDLE, &serde_json::to_vec(&bundle).unwrap())?;
                let m = signature_manifest(&subject, Some(BUNDLE), layer, empty);
                let desc = manifest(tx, &m)?;
                tx.add_untagged(&desc)?;
            }
            // A signature manifest as given: as a legacy tag and as a referrer.
            2 => {
                let digest = tx.write_blob(doc)?;
                let desc =
                    Descriptor::new(MediaType::ImageManifest, doc.len() as u64, digest.to_oci());
                tx.add_untagged(&desc)?;
                let _ = tx.tag(&sig_tag, desc);
            }
            // A bundle as given.
            _ => {
                let layer = blob(tx, BUNDLE, doc)?;
                let m = signature_manifest(&subject, Some(BUNDLE), layer, empty);
                let desc = manifest(tx, &m)?;
                tx.add_untagged(&desc)?;
            }
        }
        Ok(())
    });
    if set_up.is_ok() {
        let _ = ig_image::sign::verify::verify(&store, &image, keys);
    }
});

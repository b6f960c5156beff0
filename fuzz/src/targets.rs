//! The body of every fuzz target, one function per parser: the fuzz binaries
//! (fuzz/fuzz_targets) call them with libFuzzer's inputs, and the `fuzz_corpus` test (tests/tests/fuzz_corpus.rs)
//! replays the checked-in seeds through the same functions (so CI runs them without a fuzz
//! build). Shared by path, so it names its helpers through `crate::support`.
#![allow(clippy::missing_panics_doc)]

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gadget_object::{Endianness, GadgetObject};
use gadget_store::{Digest, Reference, Store, StoreError, Transaction};
use ig_image_build::artifacthub::PkgOptions;
use ig_image_build::build_yaml::BuildSpec;
use ig_image_build::metadata::{self, ValidateOptions};
use ig_image_sign::cosign::{
    BUNDLE, EMPTY, EMPTY_BLOB, IN_TOTO_PAYLOAD_TYPE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, pae,
};
use ig_image_sign::keys::{NamedKey, Password, PrivateKey, PublicKey, decrypt_envelope};
use oci_spec::image::{Descriptor, MediaType};
use runtime_min::decode::{Clock, Decoder};
use serde_json::{Value, json};

use crate::repo_file;
use crate::support::{GADGET_YAML, fresh_dir, text};

fn good_object() -> &'static GadgetObject {
    static OBJ: OnceLock<GadgetObject> = OnceLock::new();
    OBJ.get_or_init(|| {
        GadgetObject::parse(repo_file!("gadget-object/testdata/good.o")).expect("good.o parses")
    })
}

const INDEX: &str = gadget_store::media_types::INDEX;
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

fn decoders() -> &'static [Decoder] {
    static D: OnceLock<Vec<Decoder>> = OnceLock::new();
    D.get_or_init(|| {
        let obj = GadgetObject::parse(repo_file!("runtime-min/testdata/decode_fixture.o"))
            .expect("the decode fixture parses");
        Decoder::for_object(&obj, None, Clock::with_offset(0)).expect("decoders")
    })
}

/// The ELF/BTF object parser and the object checks: whatever the bytes, a result, never a
/// panic; and what parses also gets its data sources, fields and decoders.
pub fn object(data: &[u8]) {
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
}

/// gadget.yaml: ig-image's validation (alone and against a real object), its descriptive
/// fields, and the runtime's reading of it.
pub fn gadget_yaml(data: &[u8]) {
    let Some(yaml) = text(data) else { return };
    let file = Path::new("gadget.yaml");
    let _ = metadata::validate(yaml, file, None);
    let _ = metadata::validate_with(
        yaml,
        file,
        Some(good_object()),
        &ValidateOptions { has_wasm: true },
    );
    let _ = metadata::descriptive(yaml, file);
    if let Ok(m) = runtime_min::metadata::Metadata::parse(yaml) {
        let obj = good_object();
        let _ = runtime_min::decode::Decoder::for_object(
            obj,
            Some(&m),
            runtime_min::decode::Clock::with_offset(0),
        );
    }
}

/// build.yaml: loaded from a gadget directory (paths, cflags, platforms, wasm).
pub fn build_yaml(data: &[u8]) {
    let dir = fresh_dir("build_yaml");
    std::fs::write(dir.join("gadget.yaml"), GADGET_YAML).unwrap();
    std::fs::write(dir.join("program.bpf.c"), "").unwrap();
    std::fs::write(dir.join("build.yaml"), data).unwrap();
    let _ = BuildSpec::load(&dir, None);
}

/// artifacthub-pkg.yml: read and checked (against Artifact Hub's rules and the gadget.yaml
/// beside it).
pub fn artifacthub(data: &[u8]) {
    let dir = fresh_dir("artifacthub");
    std::fs::write(dir.join("gadget.yaml"), GADGET_YAML).unwrap();
    std::fs::write(dir.join("artifacthub-pkg.yml"), data).unwrap();
    let opts = PkgOptions {
        dir: dir.clone(),
        image: None,
        version: Some("1.0.0".into()),
    };
    let _ = ig_image_build::artifacthub::check(&opts);
    let _ = ig_image_build::artifacthub::generate(&opts);
}

/// Image references and digests: parsing, and that what parses prints back into something that
/// parses to the same reference.
pub fn reference(data: &[u8]) {
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
}

/// OCI index and manifest parsing: the input is tagged in a fresh store as an image index and
/// as an image manifest, then read the ways the commands read images (list, inspect, the
/// runtime's gadget reader); it is also written as the store's own index.json.
pub fn oci(data: &[u8]) {
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
            let _ = ig_image_build::inspect::inspect(&store, r, None);
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
}

/// `import` of a layout tar into a fresh store: refused or imported, never a panic, and what
/// was imported passes the store's own reads.
pub fn tar_import(data: &[u8]) {
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
}

/// WASM modules: the build's validation (wasmparser) and the runtime's (wasmi: parse, imports,
/// exports, instantiation without running anything).
pub fn wasm(data: &[u8]) {
    let _ = ig_image_build::wasm::validate(data);
    let _ = runtime_min::wasm::validate(data);
    let _ = runtime_min::wasm::unsupported_imports(data);
}

/// cosign key files: public keys (PEM, SPKI DER), private keys (PKCS#8) and the encrypted
/// envelope of `cosign.key` (under `cfg(fuzzing)` the scrypt cost is lowered, so that inputs
/// reaching the key derivation stay fast).
pub fn cosign_key(data: &[u8]) {
    let _ = PublicKey::from_pem(data, "fuzz.pub");
    let _ = PublicKey::from_spki_der(data, "fuzz.pub");
    let _ = PrivateKey::from_pkcs8_der(data, "fuzz.key");
    let password = Password::new(b"fuzz".to_vec());
    let _ = PrivateKey::from_encrypted_pem(data, &password, "fuzz.key");
    let _ = decrypt_envelope(data, &password, "fuzz.key");
}

/// Signature verification against a fresh store holding one image: cosign simple-signing
/// payloads and Sigstore bundle statements signed by the target itself (so that the parsing
/// behind a good signature is reached), and raw signature manifests and bundles as given.
/// The first input byte picks which; the rest is the fuzzed document.
pub fn signature(data: &[u8]) {
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
        let _ = ig_image_sign::verify::verify(&store, &image, keys);
    }
}

/// The event decoder: records of any length and content for every data source of the decode
/// fixture (all field kinds), in JSON and in columns. The first byte picks the data source.
pub fn decoder(data: &[u8]) {
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
}

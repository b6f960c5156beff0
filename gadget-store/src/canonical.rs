//! Deterministic JSON for the OCI documents we write (indexes, manifests, `index.json`).
//!
//! Pure: no I/O. Object keys keep the order in which the value serializes them (a struct's
//! declared field order, since `serde_json` is built with `preserve_order`), except inside every
//! object stored under an `annotations` key, whose keys are sorted: oci-spec keeps annotations
//! in a `HashMap`, whose iteration order changes from run to run. The output has no whitespace.
//! Identical inputs therefore always give identical bytes, hence identical digests.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serializes `value` as deterministic, compact JSON (see the module docs).
///
/// Fails only when `value`'s `Serialize` implementation fails or produces a map with non-string
/// keys, which never happens for oci-spec types.
///
/// ```
/// use std::collections::HashMap;
/// let mut annotations = HashMap::new();
/// annotations.insert("b", "2");
/// annotations.insert("a", "1");
/// let doc = serde_json::json!({"schemaVersion": 2, "annotations": annotations});
/// assert_eq!(
///     gadget_store::to_canonical_json(&doc).unwrap(),
///     br#"{"schemaVersion":2,"annotations":{"a":"1","b":"2"}}"#
/// );
/// ```
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_value(value)?;
    sort_annotations(&mut v);
    serde_json::to_vec(&v)
}

/// Sorts the keys of every object found under an `annotations` key, at any depth.
pub(crate) fn sort_annotations(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "annotations" {
                    if let Value::Object(ann) = child {
                        sort_map(ann);
                    }
                }
                sort_annotations(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_annotations),
        _ => {}
    }
}

fn sort_map(map: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    map.extend(entries);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;

    use oci_spec::image::{
        Descriptor, DescriptorBuilder, ImageManifest, ImageManifestBuilder, MediaType,
    };

    use super::*;

    fn manifest(annotations: HashMap<String, String>) -> ImageManifest {
        let config = DescriptorBuilder::default()
            .media_type(MediaType::EmptyJSON)
            .digest(
                oci_spec::image::Digest::from_str(
                    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                )
                .unwrap(),
            )
            .size(2u64)
            .annotations(annotations.clone())
            .build()
            .unwrap();
        ImageManifestBuilder::default()
            .schema_version(2u32)
            .artifact_type(MediaType::Other("application/vnd.gadget.v1+binary".into()))
            .config(config)
            .layers(Vec::<Descriptor>::new())
            .annotations(annotations)
            .build()
            .unwrap()
    }

    #[test]
    fn annotations_sorted_and_compact() {
        // Insert in several orders: HashMap iteration order differs between maps built with
        // different random states, so this exercises the sorting.
        let keys: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
        let mut outputs = Vec::new();
        for round in 0..8 {
            let mut ann = HashMap::new();
            let mut ks = keys.clone();
            ks.rotate_left(round * 5);
            for k in ks {
                ann.insert(k.clone(), format!("v-{k}"));
            }
            outputs.push(to_canonical_json(&manifest(ann)).unwrap());
        }
        assert!(outputs.windows(2).all(|w| w[0] == w[1]));
        let text = String::from_utf8(outputs[0].clone()).unwrap();
        assert!(!text.contains(' ') && !text.contains('\n'));
        // Field order as declared by oci-spec: schemaVersion, artifactType, config, layers...
        let pos = |needle: &str| text.find(needle).unwrap();
        assert!(pos("\"schemaVersion\"") < pos("\"artifactType\""));
        assert!(pos("\"artifactType\"") < pos("\"config\""));
        assert!(pos("\"config\"") < pos("\"layers\":[]"));
        // Nested (config descriptor) and top-level annotations are both sorted.
        let v: Value = serde_json::from_slice(&outputs[0]).unwrap();
        for ann in [&v["annotations"], &v["config"]["annotations"]] {
            let got: Vec<&String> = ann.as_object().unwrap().keys().collect();
            let mut want = got.clone();
            want.sort();
            assert_eq!(got, want);
            assert_eq!(got.len(), 40);
        }
    }

    #[test]
    fn other_objects_keep_their_order() {
        let v = serde_json::json!({"z": {"b": 1, "a": 2}, "annotations": {"b": "1", "a": "2"}});
        assert_eq!(
            to_canonical_json(&v).unwrap(),
            br#"{"z":{"b":1,"a":2},"annotations":{"a":"2","b":"1"}}"#
        );
    }

    #[test]
    fn nested_in_arrays() {
        let v = serde_json::json!({"manifests": [{"annotations": {"y": "1", "x": "2"}}]});
        assert_eq!(
            to_canonical_json(&v).unwrap(),
            br#"{"manifests":[{"annotations":{"x":"2","y":"1"}}]}"#
        );
    }
}

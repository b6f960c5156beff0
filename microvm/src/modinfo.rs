//! Which kernel modules booting needs (virtio and 9p) and in what order to load them, from each
//! module's `.modinfo` section (`depends=`, `name=`): Debian's packages ship no `modules.dep`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use object::{Object as _, ObjectSection as _};

/// The modules the guest needs (missing ones are built into the kernel).
pub const WANTED: &[&str] = &["virtio_pci", "virtio_mmio", "9pnet_virtio", "9p"];

/// `foo-bar` and `foo_bar` are the same module.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a `.ko` file name (`9pnet_virtio.ko.xz` → `9pnet_virtio`).
pub fn module_name(file_name: &str) -> Option<String> {
    let base = file_name.split(".ko").next()?;
    file_name.contains(".ko").then(|| normalize(base))
}

/// The `depends=` list of an ELF module.
pub fn depends(ko: &[u8]) -> anyhow::Result<Vec<String>> {
    let file = object::File::parse(ko).context("not an ELF kernel module")?;
    let section = file
        .section_by_name(".modinfo")
        .context("the module has no .modinfo section")?;
    let data = section.data().context("cannot read .modinfo")?;
    Ok(data
        .split(|b| *b == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Load order for `wanted` and their dependencies given each available module's dependencies;
/// modules that are not available are taken as built in. Dependencies come first.
pub fn load_order(wanted: &[&str], deps: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    fn visit(
        m: &str,
        deps: &BTreeMap<String, Vec<String>>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(m.to_string()) {
            return;
        }
        let Some(ds) = deps.get(m) else { return };
        for d in ds {
            visit(d, deps, seen, out);
        }
        out.push(m.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for w in wanted {
        visit(&normalize(w), deps, &mut seen, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        assert_eq!(
            module_name("9pnet_virtio.ko.xz").as_deref(),
            Some("9pnet_virtio")
        );
        assert_eq!(module_name("virtio-pci.ko").as_deref(), Some("virtio_pci"));
        assert_eq!(module_name("vmlinuz"), None);
        let deps: BTreeMap<String, Vec<String>> = [
            ("9p", vec!["9pnet", "netfs"]),
            ("9pnet", vec![]),
            ("netfs", vec![]),
            ("9pnet_virtio", vec!["9pnet", "virtio_ring"]),
            ("virtio_ring", vec![]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        // virtio_pci and virtio_mmio are built in here (not available as modules).
        assert_eq!(
            load_order(WANTED, &deps),
            ["9pnet", "virtio_ring", "9pnet_virtio", "netfs", "9p"]
        );
    }
}

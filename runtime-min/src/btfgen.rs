//! Finding this kernel's BTF in an image's btfgen layer, for kernels without
//! `/sys/kernel/btf/vmlinux`.
//!
//! The layer (`application/vnd.gadget.btfgen.v1+binary`) is a tar.gz of minimized BTF files, one
//! per known kernel, named `<ID>/<VERSION_ID>/<arch dir>/<release>.btf` where `ID` and
//! `VERSION_ID` come from `/etc/os-release`, the arch dir is `uname -m` (`aarch64` spelled
//! `arm64`, as btfhub does) and the release is `uname -r`. That is the lookup the upstream
//! runtime does; entries written with a `./` prefix (an upstream regression) are found too.

use std::io::Read as _;

use flate2::read::GzDecoder;
use gadget_facts::platform::Platform;

/// Where os-release is read from.
pub const OS_RELEASE: &str = "/etc/os-release";

/// Largest BTF entry read from a layer (a whole kernel's BTF is ~6 MB; minimized ones are KBs).
const MAX_ENTRY: u64 = 64 << 20;

/// The btfgen layer could not serve this kernel.
#[derive(Debug, thiserror::Error)]
pub enum BtfgenError {
    /// `/etc/os-release` cannot be read or lacks `ID`/`VERSION_ID`.
    #[error("cannot tell which btfgen entry fits this host: {0}")]
    Host(String),
    /// The layer is not a readable tar.gz.
    #[error("the btfgen layer is not a valid tar.gz: {0}")]
    Layer(String),
    /// No entry for this kernel.
    #[error(
        "the image's btfgen layer has no BTF for this kernel (`{wanted}`); it has: {available}"
    )]
    NotFound {
        /// The entry looked up.
        wanted: String,
        /// The entries there are.
        available: String,
    },
}

/// The key of this host's entry in a btfgen layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// os-release `ID`.
    pub id: String,
    /// os-release `VERSION_ID`.
    pub version_id: String,
    /// btfhub's name of the architecture (`x86_64`, `arm64`).
    pub arch_dir: String,
    /// `uname -r`.
    pub release: String,
}

impl HostKey {
    /// This machine's key (os-release and `uname`).
    pub fn of_this_host() -> Result<HostKey, BtfgenError> {
        let text = std::fs::read_to_string(OS_RELEASE)
            .map_err(|e| BtfgenError::Host(format!("`{OS_RELEASE}`: {e}")))?;
        let (machine, release) = uname();
        HostKey::from_parts(&text, &machine, &release)
    }

    /// The key from os-release text and `uname -m` / `uname -r`.
    pub fn from_parts(
        os_release: &str,
        machine: &str,
        release: &str,
    ) -> Result<HostKey, BtfgenError> {
        let value = |key: &str| {
            os_release.lines().find_map(|l| {
                let (k, v) = l.trim().split_once('=')?;
                (k == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
            })
        };
        let missing = |k: &str| BtfgenError::Host(format!("`{OS_RELEASE}` has no `{k}`"));
        let id = value("ID")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("ID"))?;
        let version_id = value("VERSION_ID")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing("VERSION_ID"))?;
        let arch_dir = Platform::from_machine(machine)
            .map_or(machine, |p| p.btfhub_arch_dir())
            .to_string();
        Ok(HostKey {
            id,
            version_id,
            arch_dir,
            release: release.to_string(),
        })
    }

    /// The entry name, `<ID>/<VERSION_ID>/<arch dir>/<release>.btf`.
    pub fn entry(&self) -> String {
        format!(
            "{}/{}/{}/{}.btf",
            self.id, self.version_id, self.arch_dir, self.release
        )
    }
}

/// `uname -m` and `uname -r`.
fn uname() -> (String, String) {
    let u = rustix::system::uname();
    let text = |field: &std::ffi::CStr| field.to_string_lossy().into_owned();
    (text(u.machine()), text(u.release()))
}

/// The BTF of entry `key` in the tar.gz `layer`.
pub fn lookup(layer: &[u8], key: &HostKey) -> Result<Vec<u8>, BtfgenError> {
    let wanted = key.entry();
    let bad = |e: std::io::Error| BtfgenError::Layer(e.to_string());
    let mut archive = tar::Archive::new(GzDecoder::new(layer));
    let mut available = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let name = name.strip_prefix("./").unwrap_or(&name).to_string();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if name == wanted {
            if entry.size() > MAX_ENTRY {
                return Err(BtfgenError::Layer(format!(
                    "`{name}` is {} bytes (at most {MAX_ENTRY})",
                    entry.size()
                )));
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.take(MAX_ENTRY).read_to_end(&mut data).map_err(bad)?;
            return Ok(data);
        }
        available.push(name);
    }
    Err(BtfgenError::NotFound {
        wanted,
        available: if available.is_empty() {
            "no entries".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, *data).unwrap();
        }
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    const DEBIAN: &str =
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";

    #[test]
    fn key_follows_os_release_and_uname() {
        let k = HostKey::from_parts(DEBIAN, "x86_64", "6.1.0-56-cloud-amd64").unwrap();
        assert_eq!(k.entry(), "debian/12/x86_64/6.1.0-56-cloud-amd64.btf");
        let k =
            HostKey::from_parts("ID='ubuntu'\nVERSION_ID=22.04\n", "aarch64", "5.15.0-1").unwrap();
        assert_eq!(k.entry(), "ubuntu/22.04/arm64/5.15.0-1.btf");
        let e = HostKey::from_parts("ID=arch\n", "x86_64", "6.9").unwrap_err();
        assert!(e.to_string().contains("VERSION_ID"), "{e}");
    }

    #[test]
    fn finds_the_entry_and_names_what_is_there_otherwise() {
        let k = HostKey::from_parts(DEBIAN, "x86_64", "6.1.0-56-cloud-amd64").unwrap();
        let l = layer(&[
            ("debian/12/arm64/6.1.0-56-cloud-arm64.btf", b"arm"),
            ("debian/12/x86_64/6.1.0-56-cloud-amd64.btf", b"amd"),
        ]);
        assert_eq!(lookup(&l, &k).unwrap(), b"amd");
        // Upstream's regressed `./` layout is still found.
        let dotted = layer(&[("./debian/12/x86_64/6.1.0-56-cloud-amd64.btf", b"old")]);
        assert_eq!(lookup(&dotted, &k).unwrap(), b"old");
        let other = HostKey::from_parts(DEBIAN, "x86_64", "6.18.0").unwrap();
        let e = lookup(&l, &other).unwrap_err().to_string();
        assert!(e.contains("debian/12/x86_64/6.18.0.btf"), "{e}");
        assert!(
            e.contains("debian/12/arm64/6.1.0-56-cloud-arm64.btf"),
            "{e}"
        );
        assert!(matches!(
            lookup(b"not gzip", &k),
            Err(BtfgenError::Layer(_))
        ));
    }
}

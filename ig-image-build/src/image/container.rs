//! The container image of ig-image itself (`scripts/container-image`, for
//! `kubectl debug node/N --image=…`): per platform one layer with the static binary, the CA
//! roots and the mount points a container runtime fills, under one index. Reproducible: the
//! same binaries, CA roots and creation time give the same digests.

use std::collections::HashMap;

use gadget_facts::media_types as mt;
use gadget_facts::platform::Platform;
use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder,
};

use super::assemble::{
    AssembleError, AssembledImage, descriptor, digest_of, err, finish_index, manifest_entry,
};

/// Where the binary goes in the image (on `PATH`, the entrypoint).
pub const BINARY_PATH: &str = "usr/bin/ig-image";
/// Where the CA roots go (the path most TLS stacks look at first).
pub const CA_ROOTS_PATH: &str = "etc/ssl/certs/ca-certificates.crt";
/// The environment every container of the image starts with.
pub const ENV: [&str; 3] = [
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    // A debug container starts without bpffs or tracefs (and a bare runtime without /sys).
    "IG_IMAGE_AUTO_MOUNT_FILESYSTEMS=true",
];

use gadget_facts::media_types::{IMAGE_CONFIG, LAYER_TAR_GZIP};

/// Everything that goes into the container image.
#[derive(Debug, Clone)]
pub struct ContainerInputs {
    /// One static ig-image binary per platform.
    pub binaries: Vec<(Platform, Vec<u8>)>,
    /// The CA roots (PEM bundle).
    pub ca_roots: Vec<u8>,
    /// ig-image's version (the `org.opencontainers.image.version` annotation).
    pub version: String,
    /// Creation time, RFC 3339 (from `SOURCE_DATE_EPOCH` for a reproducible image).
    pub created: String,
    /// The files' modification time, seconds since the epoch (the same instant).
    pub mtime: u64,
}

/// The root filesystem as an uncompressed tar: entries in a fixed order, owned by root, every
/// time `mtime`, no user or group names.
pub fn rootfs_tar(binary: &[u8], ca_roots: &[u8], mtime: u64) -> std::io::Result<Vec<u8>> {
    // Directories (mount points included), then files, each path before what is inside it.
    const DIRS: [(&str, u32); 15] = [
        ("dev/", 0o755),
        ("etc/", 0o755),
        ("etc/ssl/", 0o755),
        ("etc/ssl/certs/", 0o755),
        ("host/", 0o755),
        ("proc/", 0o555),
        ("root/", 0o700),
        ("sys/", 0o555),
        ("tmp/", 0o1777),
        ("usr/", 0o755),
        ("usr/bin/", 0o755),
        ("var/", 0o755),
        ("var/lib/", 0o755),
        ("var/lib/ig/", 0o755),
        ("var/tmp/", 0o1777),
    ];
    let files: [(&str, u32, &[u8]); 4] = [
        (CA_ROOTS_PATH, 0o644, ca_roots),
        ("etc/group", 0o644, b"root:x:0:\n"),
        (
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/usr/bin/ig-image\n",
        ),
        (BINARY_PATH, 0o755, binary),
    ];
    let mut out = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    for (path, mode) in DIRS {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        out.append_data(&mut h, path, std::io::empty())?;
    }
    for (path, mode, data) in files {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        out.append_data(&mut h, path, data)?;
    }
    out.into_inner()
}

/// Gzip with no name and no time in the header, so the same tar gives the same bytes.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut gz = flate2::GzBuilder::new().mtime(0).write(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::default(),
    );
    gz.write_all(data)?;
    gz.finish()
}

/// Builds every blob of the container image, index last.
pub fn assemble_container(inputs: &ContainerInputs) -> Result<AssembledImage, AssembleError> {
    if inputs.binaries.is_empty() {
        return Err(err("no binary given: one per platform is needed"));
    }
    let annotations: HashMap<String, String> = [
        (mt::TITLE, "ig-image".to_string()),
        (
            mt::DESCRIPTION,
            "ig-image: build, sign and prove Inspektor Gadget images".to_string(),
        ),
        (mt::VERSION, inputs.version.clone()),
        (mt::CREATED, inputs.created.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut binaries: Vec<&(Platform, Vec<u8>)> = inputs.binaries.iter().collect();
    binaries.sort_by_key(|(p, _)| p.oci_arch());
    let mut blobs = Vec::new();
    let mut entries = Vec::new();
    for (platform, binary) in binaries {
        let tar = rootfs_tar(binary, &inputs.ca_roots, inputs.mtime).map_err(err)?;
        let layer_bytes = gzip(&tar).map_err(err)?;
        let layer = descriptor(LAYER_TAR_GZIP, &layer_bytes)?;
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::from(platform.oci_arch()))
            .os(Os::Linux)
            .created(inputs.created.clone())
            .config(
                ConfigBuilder::default()
                    .entrypoint(vec![format!("/{BINARY_PATH}")])
                    .cmd(vec!["--help".to_string()])
                    .env(ENV.iter().map(|e| e.to_string()).collect::<Vec<_>>())
                    .working_dir("/".to_string())
                    .build()
                    .map_err(err)?,
            )
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers".to_string())
                    .diff_ids(vec![digest_of(&tar)?.to_string()])
                    .build()
                    .map_err(err)?,
            )
            .history(vec![
                HistoryBuilder::default()
                    .created(inputs.created.clone())
                    .created_by("scripts/container-image".to_string())
                    .build()
                    .map_err(err)?,
            ])
            .build()
            .map_err(err)?;
        let config_bytes = gadget_store::canonical::to_canonical_json(&config).map_err(err)?;
        let config_descriptor = descriptor(IMAGE_CONFIG, &config_bytes)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_descriptor.clone())
            .layers(vec![layer.clone()])
            .annotations(annotations.clone())
            .build()
            .map_err(err)?;
        let (entry, manifest_bytes) = manifest_entry(*platform, &manifest)?;
        blobs.push((layer, layer_bytes));
        blobs.push((config_descriptor, config_bytes));
        blobs.push((entry.clone(), manifest_bytes));
        entries.push(entry);
    }
    finish_index(blobs, entries, annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ContainerInputs {
        ContainerInputs {
            binaries: vec![
                (Platform::Arm64, b"\x7fELF arm64".to_vec()),
                (Platform::Amd64, b"\x7fELF amd64".to_vec()),
            ],
            ca_roots: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            version: "0.1.0".into(),
            created: "2026-01-01T00:00:00Z".into(),
            mtime: 1_767_225_600,
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_digests() {
        let a = assemble_container(&inputs()).unwrap();
        let b = assemble_container(&inputs()).unwrap();
        assert_eq!(a.index.digest(), b.index.digest());
        let mut other = inputs();
        other.mtime += 1;
        assert_ne!(
            a.index.digest(),
            assemble_container(&other).unwrap().index.digest()
        );
    }

    #[test]
    fn the_rootfs_holds_the_binary_executable_and_the_ca_roots() {
        let tar = rootfs_tar(b"bin", b"pem", 7).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = HashMap::new();
        for entry in archive.entries().unwrap() {
            let e = entry.unwrap();
            let h = e.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 7);
            seen.insert(e.path().unwrap().display().to_string(), h.mode().unwrap());
        }
        assert_eq!(seen[BINARY_PATH], 0o755);
        assert_eq!(seen[CA_ROOTS_PATH], 0o644);
        assert_eq!(seen["tmp/"], 0o1777);
    }

    #[test]
    fn one_manifest_per_platform_with_the_entrypoint_and_env() {
        let image = assemble_container(&inputs()).unwrap();
        // layer, config, manifest per platform, then the index.
        assert_eq!(image.blobs.len(), 7);
        let config: serde_json::Value = serde_json::from_slice(&image.blobs[1].1).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/bin/ig-image");
        assert!(
            config["config"]["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "IG_IMAGE_AUTO_MOUNT_FILESYSTEMS=true")
        );
        let index: serde_json::Value = serde_json::from_slice(&image.blobs[6].1).unwrap();
        let arches: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(arches, ["amd64", "arm64"]);
    }
}

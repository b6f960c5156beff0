//! Debian's archive: a suite's signed `InRelease`, its `Packages` index, the newest kernel
//! package in it, and downloads checked against the index's SHA256.
//!
//! Trust chain: `InRelease` is checked with `gpgv` against `debian-archive-keyring` when both are
//! installed (and the check is recorded); `Packages.xz` must match the SHA256 that `InRelease`
//! lists, and each `.deb` the SHA256 that `Packages` lists.

use std::cmp::Ordering;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use gadget_facts::env::{IG_IMAGE_DEBIAN_MIRROR, IG_IMAGE_DEBIAN_SECURITY_MIRROR};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::decompress;

/// The main archive (`IG_IMAGE_DEBIAN_MIRROR` overrides it).
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// The security archive (`IG_IMAGE_DEBIAN_SECURITY_MIRROR` overrides it).
pub const DEFAULT_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
/// The keyring `gpgv` checks `InRelease` with.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Suites with no `-security` companion.
const NO_SECURITY: &[&str] = &["sid", "unstable", "experimental"];

/// The mirrors to use.
#[derive(Debug, Clone)]
pub struct Mirrors {
    /// Main archive URL.
    pub main: String,
    /// Security archive URL.
    pub security: String,
}

impl Mirrors {
    /// From the environment, else Debian's CDN.
    pub fn from_env() -> Mirrors {
        let get = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.to_string())
        };
        Mirrors {
            main: get(IG_IMAGE_DEBIAN_MIRROR, DEFAULT_MIRROR),
            security: get(IG_IMAGE_DEBIAN_SECURITY_MIRROR, DEFAULT_SECURITY_MIRROR),
        }
    }
}

/// One package from a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// `Package:`.
    pub name: String,
    /// `Version:`.
    pub version: String,
    /// Full URL of the `.deb`.
    pub url: String,
    /// `Size:`.
    pub size: u64,
    /// `SHA256:`.
    pub sha256: String,
    /// `Depends:` package names (alternatives flattened).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
}

/// A parsed suite index (the kernel packages and `busybox-static` only) and how it was trusted.
#[derive(Debug, Clone)]
pub struct SuiteIndex {
    /// `bookworm-security`.
    pub suite: String,
    /// The `linux-*` packages and `busybox-static`.
    pub packages: Vec<Package>,
    /// How `InRelease` was checked.
    pub signature: String,
}

/// An HTTP client and a runtime for it.
pub struct Archive {
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    mirrors: Mirrors,
}

impl Archive {
    /// A client for `mirrors`.
    pub fn new(mirrors: Mirrors) -> anyhow::Result<Archive> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("ig-image/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Archive { http, rt, mirrors })
    }

    fn get(&self, url: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
        self.rt.block_on(async {
            let resp = self
                .http
                .get(url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            if !resp.status().is_success() {
                bail!("GET {url}: HTTP {}", resp.status());
            }
            let mut out = Vec::new();
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                out.extend_from_slice(&chunk.with_context(|| format!("GET {url}"))?);
                if out.len() as u64 > limit {
                    bail!("GET {url}: larger than {limit} bytes, refused");
                }
            }
            Ok(out)
        })
    }

    /// The suites to search for `suite`'s current kernel: itself and its security suite.
    pub fn suites_for(&self, suite: &str) -> Vec<(String, String)> {
        let mut out = vec![(self.mirrors.main.clone(), suite.to_string())];
        if !NO_SECURITY.contains(&suite) {
            out.push((self.mirrors.security.clone(), format!("{suite}-security")));
        }
        out
    }

    /// Reads `dists/<suite>/InRelease` (signature checked when possible) and its
    /// `main/binary-<arch>/Packages.xz` (hash checked), keeping the `linux-*` packages and
    /// `busybox-static`.
    pub fn index(&self, mirror: &str, suite: &str, arch: &str) -> anyhow::Result<SuiteIndex> {
        let base = format!("{mirror}/dists/{suite}");
        let inrelease = self.get(&format!("{base}/InRelease"), 4 << 20)?;
        let (release, signature) =
            check_signature(&inrelease).with_context(|| format!("{base}/InRelease"))?;
        let rel_path = format!("main/binary-{arch}/Packages.xz");
        let (sha, size) = release_entry(&release, &rel_path)
            .with_context(|| format!("{base}/InRelease lists no SHA256 for `{rel_path}`"))?;
        let xz = self.get(&format!("{base}/{rel_path}"), size.max(1) + 1)?;
        let got = hex::encode(Sha256::digest(&xz));
        if got != sha {
            bail!("{base}/{rel_path}: SHA256 {got} does not match InRelease's {sha}");
        }
        let text = decompress::decompress(&xz, 1 << 30, &format!("{base}/{rel_path}"))?;
        let packages = parse_packages(&String::from_utf8_lossy(&text), mirror, |n| {
            n.starts_with("linux-") || n == "busybox-static"
        });
        Ok(SuiteIndex {
            suite: suite.to_string(),
            packages,
            signature,
        })
    }

    /// Downloads `pkg` to `dest`, checking its size and SHA256 against the index.
    pub fn download(&self, pkg: &Package, dest: &Path) -> anyhow::Result<()> {
        let tmp = dest.with_extension("part");
        self.rt
            .block_on(async {
                let resp = self
                    .http
                    .get(&pkg.url)
                    .send()
                    .await
                    .with_context(|| format!("GET {}", pkg.url))?;
                if !resp.status().is_success() {
                    bail!("GET {}: HTTP {}", pkg.url, resp.status());
                }
                let mut f = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create `{}`", tmp.display()))?;
                let mut hash = Sha256::new();
                let mut n = 0u64;
                let mut body = resp.bytes_stream();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.with_context(|| format!("GET {}", pkg.url))?;
                    n += chunk.len() as u64;
                    if n > pkg.size {
                        bail!("{}: larger than the index's {} bytes", pkg.url, pkg.size);
                    }
                    hash.update(&chunk);
                    f.write_all(&chunk)?;
                }
                let got = hex::encode(hash.finalize());
                if got != pkg.sha256 {
                    bail!(
                        "{}: SHA256 {got} does not match the index's {}",
                        pkg.url,
                        pkg.sha256
                    );
                }
                Ok(())
            })
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
        std::fs::rename(&tmp, dest).with_context(|| format!("cannot write `{}`", dest.display()))
    }
}

/// Checks a clear-signed `InRelease` with `gpgv` and Debian's keyring; returns the signed text
/// and a sentence saying how it was checked. A bad signature is an error; a missing `gpgv` or
/// keyring is not (the sentence says so).
pub fn check_signature(inrelease: &[u8]) -> anyhow::Result<(String, String)> {
    let gpgv = which::which("gpgv");
    let keyring = Path::new(KEYRING);
    let (Ok(gpgv), true) = (gpgv, keyring.is_file()) else {
        let text = strip_clearsign(&String::from_utf8_lossy(inrelease));
        return Ok((
            text,
            "InRelease signature NOT checked (install gpgv and debian-archive-keyring)".into(),
        ));
    };
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("InRelease");
    let output = dir.path().join("Release");
    std::fs::write(&input, inrelease)?;
    let out = Command::new(gpgv)
        .arg("--keyring")
        .arg(keyring)
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .context("cannot run gpgv")?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("gpgv rejected the signature: {}", log.trim());
    }
    let signers: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            l.split_once("Good signature from \"")
                .map(|(_, s)| s.trim_end_matches('"'))
        })
        .collect();
    let text = std::fs::read_to_string(&output).context("gpgv wrote no signed text")?;
    Ok((
        text,
        format!(
            "InRelease signature checked with gpgv and {KEYRING}: good signature from {}",
            signers.join("; ")
        ),
    ))
}

fn strip_clearsign(text: &str) -> String {
    let body = text
        .split_once("\n\n")
        .filter(|_| text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"))
        .map_or(text, |(_, b)| b);
    body.split("\n-----BEGIN PGP SIGNATURE-----")
        .next()
        .unwrap_or(body)
        .to_string()
}

/// The SHA256 and size `Release` lists for `path`.
pub fn release_entry(release: &str, path: &str) -> Option<(String, u64)> {
    let mut in_sha = false;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha = line.trim_end() == "SHA256:";
            continue;
        }
        if in_sha {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 3 && f[2] == path {
                return Some((f[0].to_string(), f[1].parse().ok()?));
            }
        }
    }
    None
}

/// The packages of a `Packages` index whose name passes `keep`.
pub fn parse_packages(text: &str, mirror: &str, keep: impl Fn(&str) -> bool) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        let Some(name) = field("Package") else {
            continue;
        };
        if !keep(&name) {
            continue;
        }
        let (Some(version), Some(file), Some(size), Some(sha256)) = (
            field("Version"),
            field("Filename"),
            field("Size"),
            field("SHA256"),
        ) else {
            continue;
        };
        let depends = field("Depends")
            .unwrap_or_default()
            .split([',', '|'])
            .filter_map(|d| d.split_whitespace().next().map(str::to_string))
            .collect();
        out.push(Package {
            name,
            version,
            url: format!("{mirror}/{file}"),
            size: size.parse().unwrap_or(0),
            sha256,
            depends,
        });
    }
    out
}

/// The flavour's kernel image packages: `linux-image-<abi>-<flavour>`, not `-dbg`/`-unsigned`.
pub fn is_kernel_image(name: &str, flavour: &str) -> bool {
    name.strip_prefix("linux-image-")
        .and_then(|r| r.strip_suffix(&format!("-{flavour}")))
        .is_some_and(|abi| {
            // `6.1.0-57`, `7.2.13+deb14`; not the `6.12` metapackages.
            abi.starts_with(|c: char| c.is_ascii_digit())
                && abi.contains(['-', '+'])
                && !abi.contains("-cloud")
                && !abi.contains("-rt")
        })
}

/// The suite's current kernel image of `flavour` among several suites' indexes: the one the
/// newest `linux-image-<flavour>` metapackage depends on (else the newest image), with the
/// packages that hold its files: itself, plus the `linux-binary-*`/`linux-modules-*` it depends
/// on (sid splits them).
pub fn newest_kernel(indexes: &[SuiteIndex], flavour: &str) -> Option<(Vec<Package>, String)> {
    let newest = |keep: &dyn Fn(&Package) -> bool| {
        let mut best: Option<(&Package, &SuiteIndex)> = None;
        for idx in indexes {
            for p in idx.packages.iter().filter(|p| keep(p)) {
                if best.is_none_or(|(b, _)| {
                    compare_versions(&p.version, &b.version) == Ordering::Greater
                }) {
                    best = Some((p, idx));
                }
            }
        }
        best
    };
    let meta_name = format!("linux-image-{flavour}");
    let wanted = newest(&|p| p.name == meta_name).and_then(|(meta, _)| {
        meta.depends
            .iter()
            .find(|d| is_kernel_image(d, flavour))
            .cloned()
    });
    let (image, idx) = match wanted {
        Some(name) => newest(&|p| p.name == name)?,
        None => newest(&|p| is_kernel_image(&p.name, flavour))?,
    };
    let mut pkgs = vec![image.clone()];
    for dep in &image.depends {
        if dep.starts_with("linux-binary-") || dep.starts_with("linux-modules-") {
            if let Some(p) = idx
                .packages
                .iter()
                .find(|p| &p.name == dep && p.version == image.version)
            {
                pkgs.push(p.clone());
            }
        }
    }
    Some((pkgs, idx.suite.clone()))
}

/// The newest version of package `name` among several suites' indexes.
pub fn newest_package(indexes: &[SuiteIndex], name: &str) -> Option<Package> {
    indexes
        .iter()
        .flat_map(|i| i.packages.iter())
        .filter(|p| p.name == name)
        .max_by(|a, b| compare_versions(&a.version, &b.version))
        .cloned()
}

/// Debian version order (epoch, upstream, revision; `~` sorts before everything).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or(0), r),
            None => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<char>) -> i32 {
        match c {
            None => 0,
            Some('~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    fn part(mut a: &str, mut b: &str) -> Ordering {
        while !a.is_empty() || !b.is_empty() {
            let na = a.find(|c: char| c.is_ascii_digit()).unwrap_or(a.len());
            let nb = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
            let (sa, sb) = (&a[..na], &b[..nb]);
            let (mut ca, mut cb) = (sa.chars(), sb.chars());
            loop {
                let (x, y) = (ca.next(), cb.next());
                if x.is_none() && y.is_none() {
                    break;
                }
                match order(x).cmp(&order(y)) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            a = &a[na..];
            b = &b[nb..];
            let da = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            let db = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
            let x: u128 = a[..da].parse().unwrap_or(0);
            let y: u128 = b[..db].parse().unwrap_or(0);
            match x.cmp(&y) {
                Ordering::Equal => {}
                o => return o,
            }
            a = &a[da..];
            b = &b[db..];
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua, ub))
        .then_with(|| part(ra, rb))
}

/// Where a downloaded package goes in a directory.
pub fn deb_path(dir: &Path, pkg: &Package) -> PathBuf {
    dir.join(format!(
        "{}_{}.deb",
        pkg.name,
        pkg.version.replace(':', "%3a")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_version_order() {
        assert_eq!(
            compare_versions("5.10.262-1", "5.10.247-1"),
            Ordering::Greater
        );
        assert_eq!(compare_versions("1.0~rc1-1", "1.0-1"), Ordering::Less);
        assert_eq!(compare_versions("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(compare_versions("6.1.192-1", "6.1.192-1"), Ordering::Equal);
        assert_eq!(
            compare_versions("6.12.117-1", "6.12.9-1"),
            Ordering::Greater
        );
    }

    #[test]
    fn picks_the_newest_image_and_its_split_packages() {
        let text = "Package: linux-image-7.2.13+deb14-amd64\nVersion: 7.2.13-1\nDepends: dracut | initramfs-tools, linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1), linux-modules-7.2.13+deb14-amd64 (= 7.2.13-1)\nFilename: pool/i.deb\nSize: 10\nSHA256: aa\n\n\
Package: linux-binary-7.2.13+deb14-amd64\nVersion: 7.2.13-1\nFilename: pool/b.deb\nSize: 10\nSHA256: bb\n\n\
Package: linux-modules-7.2.13+deb14-amd64\nVersion: 7.2.13-1\nFilename: pool/m.deb\nSize: 10\nSHA256: cc\n\n\
Package: linux-image-7.1.2+deb14-amd64\nVersion: 7.1.2-1\nFilename: pool/o.deb\nSize: 10\nSHA256: dd\n\n\
Package: linux-image-7.3.0+deb14-cloud-amd64\nVersion: 7.3.0-1\nFilename: pool/c.deb\nSize: 10\nSHA256: ee\n\n\
Package: linux-image-7.4.0+deb14-amd64\nVersion: 7.4.0-1\nFilename: pool/newer-not-default.deb\nSize: 10\nSHA256: ab\n\n\
Package: linux-image-7.4-amd64\nVersion: 7.4.0-1\nDepends: linux-image-7.4.0+deb14-amd64\nFilename: pool/meta74.deb\nSize: 10\nSHA256: ac\n\n\
Package: linux-image-amd64\nVersion: 7.2.13-1\nDepends: linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)\nFilename: pool/meta.deb\nSize: 10\nSHA256: ff\n";
        let idx = SuiteIndex {
            suite: "sid".into(),
            packages: parse_packages(text, "http://m/debian", |n| n.starts_with("linux-")),
            signature: String::new(),
        };
        let (pkgs, suite) = newest_kernel(&[idx], "amd64").unwrap();
        assert_eq!(suite, "sid");
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "linux-image-7.2.13+deb14-amd64",
                "linux-binary-7.2.13+deb14-amd64",
                "linux-modules-7.2.13+deb14-amd64"
            ]
        );
        assert_eq!(pkgs[1].url, "http://m/debian/pool/b.deb");
    }

    #[test]
    fn release_sha256_entries() {
        let r = "Origin: Debian\nMD5Sum:\n 0011 12 main/binary-amd64/Packages.xz\nSHA256:\n abcd 1234 main/binary-amd64/Packages.xz\n abce 99 main/binary-arm64/Packages.xz\n";
        assert_eq!(
            release_entry(r, "main/binary-amd64/Packages.xz"),
            Some(("abcd".into(), 1234))
        );
        assert_eq!(release_entry(r, "contrib/x"), None);
    }
}

//! Reading a Debian package: its `ar` members and the files of `data.tar.*`, streamed (a kernel
//! package unpacks to hundreds of MB; only the few files booting needs are kept).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// One `ar` member: name, offset of its data in the file, size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name (`data.tar.xz`).
    pub name: String,
    /// Offset of its data.
    pub offset: u64,
    /// Its size.
    pub size: u64,
}

/// The members of the `ar` archive at `path`.
pub fn members(path: &Path) -> anyhow::Result<Vec<Member>> {
    let mut f = File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let len = f.metadata()?.len();
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic)
        .with_context(|| format!("`{}` is not a Debian package (too short)", path.display()))?;
    if &magic != b"!<arch>\n" {
        bail!(
            "`{}` is not a Debian package (no ar header)",
            path.display()
        );
    }
    let mut out = Vec::new();
    let mut pos = 8u64;
    while pos + 60 <= len {
        f.seek(SeekFrom::Start(pos))?;
        let mut h = [0u8; 60];
        f.read_exact(&mut h)?;
        if &h[58..60] != b"`\n" {
            bail!(
                "`{}`: corrupt ar member header at byte {pos}",
                path.display()
            );
        }
        let name = String::from_utf8_lossy(&h[0..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = String::from_utf8_lossy(&h[48..58])
            .trim()
            .parse()
            .with_context(|| format!("`{}`: bad ar member size at byte {pos}", path.display()))?;
        let offset = pos + 60;
        if offset + size > len {
            bail!(
                "`{}` is truncated (member `{name}` ends past the file)",
                path.display()
            );
        }
        out.push(Member { name, offset, size });
        pos = offset + size + (size & 1);
    }
    Ok(out)
}

/// Calls `visit` with each regular file of the package's `data.tar.*` (path without `./`) and a
/// reader of its contents; `visit` returns whether to keep going.
pub fn for_each_file(
    path: &Path,
    mut visit: impl FnMut(&Path, &mut dyn Read) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let member = members(path)?
        .into_iter()
        .find(|m| m.name.starts_with("data.tar"))
        .with_context(|| format!("`{}` has no data.tar member", path.display()))?;
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(member.offset))?;
    let body = f.take(member.size);
    let tool: Option<(&str, &[&str])> = match member.name.as_str() {
        "data.tar" => None,
        "data.tar.xz" => Some(("xz", &["-dc"])),
        "data.tar.zst" => Some(("zstd", &["-dcq"])),
        "data.tar.gz" => Some(("gzip", &["-dc"])),
        other => bail!("`{}`: unsupported member `{other}`", path.display()),
    };
    match tool {
        None => walk_tar(BufReader::new(body), &mut visit),
        Some((program, args)) => {
            let mut child = Command::new(program)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| {
                    format!("cannot run `{program}` to unpack `{}`", path.display())
                })?;
            let mut stdin = child.stdin.take().expect("piped");
            let stdout = child.stdout.take().expect("piped");
            let result = std::thread::scope(|s| {
                s.spawn(move || {
                    let mut body = body;
                    let _ = std::io::copy(&mut body, &mut stdin);
                });
                walk_tar(BufReader::new(stdout), &mut visit)
            });
            let _ = child.kill();
            let _ = child.wait();
            result.with_context(|| format!("cannot read `{}`", path.display()))
        }
    }
}

fn walk_tar(
    reader: impl Read,
    visit: &mut dyn FnMut(&Path, &mut dyn Read) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        // `./boot/vmlinuz-…` → `boot/vmlinuz-…`; only plain components are kept.
        let path: PathBuf = entry
            .path()?
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        if !visit(&path, &mut entry)? {
            break;
        }
    }
    Ok(())
}

/// Builds fake packages for tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::fs::File;
    use std::io::Write as _;
    use std::path::{Path, PathBuf};

    /// A package with one uncompressed data.tar holding `files`.
    pub(crate) fn fake_deb(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let mut tarball = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tarball
                .append_data(&mut h, format!("./{name}"), *data)
                .unwrap();
        }
        let data = tarball.into_inner().unwrap();
        let path = dir.join("fake.deb");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"!<arch>\n").unwrap();
        for (name, body) in [("debian-binary", &b"2.0\n"[..]), ("data.tar", &data[..])] {
            writeln!(
                f,
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`",
                name,
                0,
                0,
                0,
                100644,
                body.len()
            )
            .unwrap();
            f.write_all(body).unwrap();
            if body.len() % 2 == 1 {
                f.write_all(b"\n").unwrap();
            }
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::fake_deb;
    use super::*;

    #[test]
    fn reads_members_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let deb = fake_deb(dir.path(), &[("boot/vmlinuz-1", b"kernel"), ("a/b", b"x")]);
        let names: Vec<String> = members(&deb).unwrap().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["debian-binary", "data.tar"]);
        let mut seen = Vec::new();
        for_each_file(&deb, |p, r| {
            let mut s = String::new();
            r.read_to_string(&mut s)?;
            seen.push((p.display().to_string(), s));
            Ok(true)
        })
        .unwrap();
        assert_eq!(
            seen[0],
            ("boot/vmlinuz-1".to_string(), "kernel".to_string())
        );
    }

    #[test]
    fn refuses_what_is_not_a_package() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.deb");
        std::fs::write(&p, b"hello world, not an archive").unwrap();
        let e = members(&p).unwrap_err().to_string();
        assert!(e.contains("not a Debian package"), "{e}");
    }
}

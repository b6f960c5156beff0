//! Decompressing what Debian ships (xz, zstd, gzip) by content, with the `xz` and `zstd`
//! programs (argument vectors, no shell) or flate2 for gzip.
//!
//! The programs handle what pure-Rust decoders here do not: the kernel's xz payloads use the x86
//! BCJ filter, and they are several times faster on 100 MB archives.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// A compression format, recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `1f 8b`.
    Gzip,
    /// `fd 37 7a 58 5a 00`.
    Xz,
    /// `28 b5 2f fd`.
    Zstd,
    /// Legacy `.lzma` (`5d 00 00`).
    Lzma,
    /// Not compressed.
    None,
}

impl Compression {
    /// The format of `data` from its first bytes.
    pub fn sniff(data: &[u8]) -> Compression {
        if data.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if data.starts_with(&[0x5d, 0, 0]) {
            Compression::Lzma
        } else {
            Compression::None
        }
    }
}

/// Decompresses `data` (any format [`Compression::sniff`] knows), at most `limit` bytes out.
pub fn decompress(data: &[u8], limit: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    match Compression::sniff(data) {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(data)
                .take(limit + 1)
                .read_to_end(&mut out)
                .with_context(|| format!("cannot gunzip {what}"))?;
            check_limit(&out, limit, what)?;
            Ok(out)
        }
        Compression::Xz => run_filter("xz", &["-dc", "--single-stream"], data, limit, what),
        Compression::Lzma => run_filter("xz", &["-dc", "--format=lzma"], data, limit, what),
        Compression::Zstd => run_filter("zstd", &["-dcq"], data, limit, what),
    }
}

fn check_limit(out: &[u8], limit: u64, what: &str) -> anyhow::Result<()> {
    if out.len() as u64 > limit {
        bail!("{what} decompresses to more than {limit} bytes: refused");
    }
    Ok(())
}

/// Pipes `data` through `program args`, reading at most `limit + 1` bytes of its output.
fn run_filter(
    program: &str,
    args: &[&str],
    data: &[u8],
    limit: u64,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot run `{program}` to decompress {what} (install xz-utils and zstd)")
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let out = std::thread::scope(|s| {
        let writer = s.spawn(move || {
            // A broken pipe means the program stopped reading (error or limit): reported below.
            let _ = stdin.write_all(data);
        });
        let mut out = Vec::new();
        let read = child
            .stdout
            .take()
            .expect("piped stdout")
            .take(limit + 1)
            .read_to_end(&mut out);
        if out.len() as u64 > limit {
            let _ = child.kill();
        }
        let _ = writer.join();
        read.map(|_| out)
    })
    .with_context(|| format!("cannot read `{program}`'s output for {what}"))?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child
        .wait()
        .with_context(|| format!("`{program}` for {what}"))?;
    check_limit(&out, limit, what)?;
    if !status.success() {
        bail!("`{program}` cannot decompress {what}: {}", err.trim());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_round_trips_gzip() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello kernel").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(Compression::sniff(&gz), Compression::Gzip);
        assert_eq!(decompress(&gz, 100, "test").unwrap(), b"hello kernel");
        assert!(decompress(&gz, 5, "test").is_err());
    }

    #[test]
    fn xz_through_the_program() {
        if which::which("xz").is_err() {
            return;
        }
        let out = std::process::Command::new("xz")
            .args(["-zc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(b"abc").unwrap();
                c.wait_with_output()
            })
            .unwrap();
        assert_eq!(Compression::sniff(&out.stdout), Compression::Xz);
        assert_eq!(decompress(&out.stdout, 10, "t").unwrap(), b"abc");
        let err = decompress(&out.stdout[..10], 10, "a cut file").unwrap_err();
        assert!(format!("{err:#}").contains("a cut file"), "{err:#}");
    }
}

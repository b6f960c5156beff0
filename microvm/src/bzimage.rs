//! Cutting the uncompressed `vmlinux` out of an x86 bzImage (`vmlinuz`): under emulation QEMU
//! boots it directly through its PVH ELF note, which saves the kernel decompressing itself
//! instruction by instruction.

use anyhow::{Context as _, bail};

use crate::decompress::{self, Compression};

/// The largest vmlinux accepted (Debian's are 40–70 MB).
const MAX_VMLINUX: u64 = 512 << 20;

/// The compressed payload of a bzImage, as its header describes it.
pub fn payload(bzimage: &[u8]) -> anyhow::Result<&[u8]> {
    if bzimage.len() < 0x250 || &bzimage[0x202..0x206] != b"HdrS" {
        bail!("not an x86 bzImage (no `HdrS` boot header; truncated or another format)");
    }
    let version = u16::from_le_bytes([bzimage[0x206], bzimage[0x207]]);
    if version < 0x208 {
        bail!("boot protocol {version:#x} is older than 2.08 (no payload offset)");
    }
    let setup_sects = match bzimage[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let word = |at: usize| u32::from_le_bytes(bzimage[at..at + 4].try_into().expect("4 bytes"));
    let start = (setup_sects + 1) * 512 + word(0x248) as usize;
    let end = start + word(0x24c) as usize;
    if end > bzimage.len() {
        bail!(
            "the kernel image is truncated: its payload ends at byte {end}, the file has {}",
            bzimage.len()
        );
    }
    Ok(&bzimage[start..end])
}

/// The uncompressed ELF `vmlinux` inside a bzImage.
pub fn extract_vmlinux(bzimage: &[u8]) -> anyhow::Result<Vec<u8>> {
    let payload = payload(bzimage)?;
    let kind = Compression::sniff(payload);
    let out = match kind {
        Compression::None => bail!(
            "unknown payload compression (magic {:02x?})",
            &payload[..payload.len().min(6)]
        ),
        // gzip ends with its own size; the others have the size appended (4 bytes, little endian).
        Compression::Gzip => decompress::decompress(payload, MAX_VMLINUX, "the kernel payload")?,
        _ => {
            let (body, size) = payload
                .split_at_checked(payload.len().saturating_sub(4))
                .context("empty kernel payload")?;
            let want = u32::from_le_bytes(size.try_into().context("short kernel payload")?);
            let out = decompress::decompress(body, MAX_VMLINUX, "the kernel payload")?;
            if out.len() as u64 != u64::from(want) {
                bail!(
                    "the kernel payload decompressed to {} bytes, its header says {want}",
                    out.len()
                );
            }
            out
        }
    };
    if !out.starts_with(b"\x7fELF") {
        bail!("the kernel payload is not an ELF vmlinux");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_truncated_and_foreign_images() {
        assert!(
            payload(b"short")
                .unwrap_err()
                .to_string()
                .contains("not an x86 bzImage")
        );
        let mut img = vec![0u8; 0x1000];
        img[0x1f1] = 1;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206] = 0x0f;
        img[0x207] = 0x02;
        img[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        img[0x24c..0x250].copy_from_slice(&0x10000u32.to_le_bytes());
        let e = payload(&img).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}

//! The guest's initramfs, written here as a `newc` cpio: static busybox, the kernel's virtio/9p
//! modules and an `/init` that mounts the host root read-only over 9p, mounts the job's
//! read-write share, chroots and runs `ig-image microvm-guest` (the same binary as the host's).

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

/// The busybox binary copied into the initramfs of a guest of the host's architecture (Debian's
/// `busybox-static`); other architectures bring their own (the kernel cache's).
pub const BUSYBOX: &str = "/bin/busybox";

/// Where the init puts busybox's applets in the guest's root when the host's programs cannot run
/// there (a guest of another architecture): first on `PATH`, so `--exec true` runs.
pub const GUEST_APPLETS: &str = "/run/ig-vm/bin";

/// QEMU's isa-debug-exit port (x86): the init writes its exit code there.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// The init script. The kernel command line carries `igvm.job=<dir>` (the read-write share,
/// mounted at the same path), `igvm.exe=<path>` (the ig-image binary in the host root) and, for a
/// guest whose architecture is not the host's, `igvm.applets=1` (busybox's applets go to
/// [`GUEST_APPLETS`], first on `PATH`).
pub const INIT: &str = r#"#!/bin/busybox sh
# ig-image microVM init: load virtio/9p, mount the host root read-only, run the job, power off.
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
say() { echo "ig-vm: $*" > /dev/console; }
finish() {
  say "exit $1"
  if [ -e /dev/port ]; then
    $B printf "\\$($B printf %03o "$1")" | $B dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
  fi
  $B poweroff -f
}
for m in $($B cat /modules.order); do
  $B insmod /modules/$m || say "insmod $m failed"
done
for w in $($B cat /proc/cmdline); do
  case "$w" in
    igvm.job=*) JOB="${w#igvm.job=}" ;;
    igvm.exe=*) EXE="${w#igvm.exe=}" ;;
    igvm.applets=1) APPLETS=1 ;;
  esac
done
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /root || { say "cannot mount the host root over 9p (virtio-9p missing?)"; finish 90; }
$B mount -t proc proc /root/proc
$B mount -t sysfs sys /root/sys
$B mount -t devtmpfs dev /root/dev
$B mount -t tmpfs -o size=64m run /root/run
$B mount -t bpf bpf /root/sys/fs/bpf 2>/dev/null
$B mount -t tracefs tracefs /root/sys/kernel/tracing 2>/dev/null
$B mount -t debugfs debugfs /root/sys/kernel/debug 2>/dev/null
$B mount -t 9p -o trans=virtio,version=9p2000.L,rw,cache=none,msize=512000 results "/root$JOB" || { say "cannot mount the results share"; finish 91; }
if [ -n "$APPLETS" ]; then
  A=/root/run/ig-vm/bin
  $B mkdir -p $A && $B cp /bin/busybox $A/busybox &&
    $B chroot /root /run/ig-vm/bin/busybox --install -s /run/ig-vm/bin || { say "cannot install busybox in the guest"; finish 92; }
  export PATH=/run/ig-vm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fi
say "running the job"
$B chroot /root "$EXE" microvm-guest "$JOB/job.json"
finish $?
"#;

/// Writes a `newc` cpio archive.
pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> Cpio<W> {
    /// An archive written to `out`.
    pub fn new(out: W) -> Cpio<W> {
        Cpio {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.ino += 1;
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.written += b.len() as u64;
        self.out.write_all(b)
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.write(&[0u8; 3][..n])
    }

    /// A directory.
    pub fn dir(&mut self, name: &str) -> std::io::Result<()> {
        self.entry(name, 0o040755, &[])
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.entry(name, 0o100000 | mode, data)
    }

    /// A symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) -> std::io::Result<()> {
        self.entry(name, 0o120777, target.as_bytes())
    }

    /// The trailer; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.entry("TRAILER!!!", 0, &[])?;
        Ok(self.out)
    }
}

/// Writes the initramfs for a kernel whose modules (in load order) are `modules`, with the
/// static `busybox` for the guest's architecture.
pub fn write(path: &Path, modules: &[std::path::PathBuf], busybox: &Path) -> anyhow::Result<()> {
    let busybox = std::fs::read(busybox).with_context(|| {
        format!(
            "cannot read `{}` (install busybox-static)",
            busybox.display()
        )
    })?;
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    let mut c = Cpio::new(std::io::BufWriter::new(file));
    for d in ["bin", "proc", "sys", "dev", "root", "modules"] {
        c.dir(d)?;
    }
    c.file("bin/busybox", 0o755, &busybox)?;
    c.symlink("bin/sh", "busybox")?;
    c.file("init", 0o755, INIT.as_bytes())?;
    let mut order = String::new();
    for m in modules {
        let name = m
            .file_name()
            .and_then(|n| n.to_str())
            .context("module file name")?;
        let data = std::fs::read(m).with_context(|| format!("cannot read `{}`", m.display()))?;
        c.file(&format!("modules/{name}"), 0o644, &data)?;
        order.push_str(name);
        order.push('\n');
    }
    c.file("modules.order", 0o644, order.as_bytes())?;
    c.finish()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_headers_are_aligned() {
        let mut c = Cpio::new(Vec::new());
        c.dir("bin").unwrap();
        c.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        let out = c.finish().unwrap();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 4, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("TRAILER!!!"));
        // The file header: mode 0100755, size 10.
        let at = text.find("init").unwrap() - 110;
        assert_eq!(&text[at + 14..at + 22], "000081ed");
        assert_eq!(&text[at + 54..at + 62], "0000000a");
    }
}

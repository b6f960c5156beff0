//! How the `gadget_*` types are shown: errno and signal names, open flags, file modes, IP
//! endpoints and boot-time timestamps as wall-clock RFC 3339.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

const ERRNO: &[&str] = &[
    "",
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
    "ERFKILL",
    "EHWPOISON",
];

/// `ENOENT` for 2 (a negative errno is taken by its absolute value); `""` for 0.
pub fn errno_name(v: i64) -> String {
    let n = v.unsigned_abs();
    if n == 0 {
        return String::new();
    }
    match ERRNO.get(n as usize) {
        Some(name) if !name.is_empty() => (*name).to_string(),
        _ => format!("E{n}"),
    }
}

const SIGNALS: &[&str] = &[
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGKILL` for 9, `SIGRTMIN+3` for 37.
pub fn signal_name(v: u64) -> String {
    match SIGNALS.get(v as usize) {
        Some(name) if !name.is_empty() => (*name).to_string(),
        _ if (32..=64).contains(&v) => format!("SIGRTMIN+{}", v - 32),
        _ => v.to_string(),
    }
}

/// open(2) flags as `O_WRONLY|O_CREAT|O_TRUNC` (this machine's values).
pub fn open_flags(v: u64) -> String {
    let v = v as i64 as libc::c_int;
    let mut out = String::from(match v & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    });
    let named: &[(libc::c_int, &str)] = &[
        (libc::O_CREAT, "O_CREAT"),
        (libc::O_EXCL, "O_EXCL"),
        (libc::O_NOCTTY, "O_NOCTTY"),
        (libc::O_TRUNC, "O_TRUNC"),
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_DSYNC, "O_DSYNC"),
        (libc::O_ASYNC, "O_ASYNC"),
        (libc::O_DIRECT, "O_DIRECT"),
        (libc::O_LARGEFILE, "O_LARGEFILE"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
        (libc::O_NOATIME, "O_NOATIME"),
        (libc::O_CLOEXEC, "O_CLOEXEC"),
        (libc::O_PATH, "O_PATH"),
    ];
    let mut rest = v & !libc::O_ACCMODE;
    // O_SYNC and O_TMPFILE include another flag's bit: test them first.
    for (bit, name) in [(libc::O_TMPFILE, "O_TMPFILE"), (libc::O_SYNC, "O_SYNC")] {
        if rest & bit == bit {
            out.push('|');
            out.push_str(name);
            rest &= !bit;
        }
    }
    for (bit, name) in named {
        if rest & bit != 0 {
            out.push('|');
            out.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        let _ = write!(out, "|{rest:#o}");
    }
    out
}

/// A mode as `ls -l` shows it (`-rw-r--r--`); only the permission bits when no type bits are set.
pub fn file_mode(v: u64) -> String {
    let m = v as u32;
    let kind = match m & 0o170_000 {
        0o140_000 => 's',
        0o120_000 => 'l',
        0o100_000 => '-',
        0o060_000 => 'b',
        0o040_000 => 'd',
        0o020_000 => 'c',
        0o010_000 => 'p',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bit = |b: u32, c: char| if m & b != 0 { c } else { '-' };
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        s.push(bit(4 << shift, 'r'));
        s.push(bit(2 << shift, 'w'));
        let x = m & (1 << shift) != 0;
        s.push(match (m & special != 0, x) {
            (true, true) => lower,
            (true, false) => upper,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// An address of a `union gadget_ip_addr_t` (16 bytes) for IP version 4 or 6.
pub fn ip_addr(addr: &[u8], version: u8) -> String {
    match version {
        4 if addr.len() >= 4 => Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
        6 if addr.len() >= 16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&addr[..16]);
            Ipv6Addr::from(a).to_string()
        }
        _ => String::new(),
    }
}

/// `ip:port`, with the IPv6 address in brackets.
pub fn endpoint(addr: &[u8], version: u8, port: u16) -> String {
    match version {
        6 => format!("[{}]:{port}", ip_addr(addr, 6)),
        4 => format!("{}:{port}", ip_addr(addr, 4)),
        _ => format!(":{port}"),
    }
}

/// IP protocol numbers.
pub fn ip_proto(v: u64) -> String {
    match v {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        132 => "SCTP".into(),
        _ => v.to_string(),
    }
}

/// Converts boot-time nanoseconds (`bpf_ktime_get_boot_ns`) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Realtime minus boottime, in nanoseconds.
    offset_ns: i128,
}

fn clock_ns(id: rustix::time::ClockId) -> i128 {
    let ts = rustix::time::clock_gettime(id);
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    /// Reads the current offset between the realtime and boottime clocks.
    pub fn now() -> Clock {
        let boot = clock_ns(rustix::time::ClockId::Boottime);
        let real = clock_ns(rustix::time::ClockId::Realtime);
        Clock {
            offset_ns: real - boot,
        }
    }

    /// A fixed offset (tests, benchmarks).
    pub fn with_offset(offset_ns: i128) -> Clock {
        Clock { offset_ns }
    }

    /// Appends `2026-01-02T03:04:05.123456789Z` for a boot-time timestamp.
    pub fn write_rfc3339(&self, boot_ns: u64, out: &mut Vec<u8>) {
        let t = i128::from(boot_ns) + self.offset_ns;
        let secs = t.div_euclid(1_000_000_000) as i64;
        let nanos = t.rem_euclid(1_000_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; 30];
        let put = |buf: &mut [u8], at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        if !(0..=9999).contains(&y) {
            out.extend_from_slice(
                format!(
                    "{y}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
                    sod / 3600,
                    sod / 60 % 60,
                    sod % 60
                )
                .as_bytes(),
            );
            return;
        }
        put(&mut buf, 0, y as u32, 4);
        buf[4] = b'-';
        put(&mut buf, 5, m, 2);
        buf[7] = b'-';
        put(&mut buf, 8, d, 2);
        buf[10] = b'T';
        put(&mut buf, 11, sod / 3600, 2);
        buf[13] = b':';
        put(&mut buf, 14, sod / 60 % 60, 2);
        buf[16] = b':';
        put(&mut buf, 17, sod % 60, 2);
        buf[19] = b'.';
        put(&mut buf, 20, nanos, 9);
        buf[29] = b'Z';
        out.extend_from_slice(&buf);
    }

    /// The same as a `String`.
    pub fn rfc3339(&self, boot_ns: u64) -> String {
        let mut v = Vec::with_capacity(30);
        self.write_rfc3339(boot_ns, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(errno_name(-13), "EACCES");
        assert_eq!(errno_name(0), "");
        assert_eq!(errno_name(9999), "E9999");
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(34), "SIGRTMIN+2");
        assert_eq!(ip_proto(6), "TCP");
    }

    #[test]
    fn flags_and_modes() {
        assert_eq!(open_flags(0), "O_RDONLY");
        let f = (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC) as u64;
        assert_eq!(open_flags(f), "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC");
        assert_eq!(open_flags(libc::O_TMPFILE as u64 | 2), "O_RDWR|O_TMPFILE");
        assert_eq!(file_mode(0o100_644), "-rw-r--r--");
        assert_eq!(file_mode(0o040_755), "drwxr-xr-x");
        assert_eq!(file_mode(0o4755), "-rwsr-xr-x");
        assert_eq!(file_mode(0o1777), "-rwxrwxrwt");
    }

    #[test]
    fn endpoints() {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(endpoint(&a, 4, 80), "10.0.0.1:80");
        let mut b = [0u8; 16];
        b[15] = 1;
        assert_eq!(endpoint(&b, 6, 443), "[::1]:443");
        assert_eq!(ip_addr(&a, 0), "");
    }

    #[test]
    fn timestamps() {
        let c = Clock::with_offset(0);
        assert_eq!(c.rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29T12:34:56.000000789Z = 1709210096 s
        assert_eq!(
            c.rfc3339(1_709_210_096_000_000_789),
            "2024-02-29T12:34:56.000000789Z"
        );
        let c = Clock::with_offset(1_000_000_000);
        assert_eq!(c.rfc3339(500), "1970-01-01T00:00:01.000000500Z");
    }
}

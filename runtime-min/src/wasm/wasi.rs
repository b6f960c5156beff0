//! The minimal WASI preview1 a module gets: `fd_write` to stdout and stderr goes to the log,
//! `proc_exit`, `clock_time_get`, `random_get`, an empty environment and argument list, and
//! ENOSYS from any other WASI function the module imports.

use wasmi::{Caller, FuncType, IntoFunc, Linker, Module, Val};

use super::{Host, LOG_LIMIT, WASI, memory, read_mem, write_mem};

const ENOSYS: i32 = 52;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EIO: i32 = 29;

/// Defines the WASI functions, and ENOSYS for the others `module` imports.
pub(super) fn define_wasi(linker: &mut Linker<Host>, module: &Module) -> Result<(), wasmi::Error> {
    let mut wasi = Wasi {
        linker,
        defined: Vec::new(),
    };
    wasi.define("fd_write", fd_write)?;
    wasi.define("proc_exit", |code: i32| -> Result<(), wasmi::Error> {
        Err(wasmi::Error::i32_exit(code))
    })?;
    wasi.define("clock_time_get", clock_time_get)?;
    wasi.define("random_get", random_get)?;
    // Empty environment and arguments: zero counts, zero sizes.
    for name in ["environ_sizes_get", "args_sizes_get"] {
        wasi.define(name, zero_counts)?;
    }
    for name in ["environ_get", "args_get"] {
        wasi.define(name, |_: i32, _: i32| -> i32 { 0 })?;
    }
    wasi.define_the_rest_as_enosys(module)
}

/// The linker, and the WASI functions defined on it so far.
struct Wasi<'l> {
    linker: &'l mut Linker<Host>,
    defined: Vec<&'static str>,
}

impl Wasi<'_> {
    fn define<Params, Results>(
        &mut self,
        name: &'static str,
        func: impl IntoFunc<Host, Params, Results>,
    ) -> Result<(), wasmi::Error> {
        self.linker.func_wrap(WASI, name, func)?;
        self.defined.push(name);
        Ok(())
    }

    /// Every other WASI function `module` imports returns ENOSYS (or nothing, for functions
    /// without a result).
    fn define_the_rest_as_enosys(self, module: &Module) -> Result<(), wasmi::Error> {
        for import in module.imports() {
            if import.module() != WASI || self.defined.contains(&import.name()) {
                continue;
            }
            if let wasmi::ExternType::Func(ty) = import.ty() {
                let ty: FuncType = ty.clone();
                self.linker.func_new(
                    WASI,
                    import.name(),
                    ty,
                    |_caller, _params: &[Val], results: &mut [Val]| {
                        for r in results.iter_mut() {
                            *r = match r {
                                Val::I64(_) => Val::I64(ENOSYS as i64),
                                _ => Val::I32(ENOSYS),
                            };
                        }
                        Ok(())
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Writes `bytes` at `ptr` in the module's memory: 0, or EFAULT when they do not fit.
fn write_or_efault(caller: &mut Caller<'_, Host>, ptr: i32, bytes: &[u8]) -> i32 {
    if write_mem(caller, ptr as u32 as usize, bytes) {
        0
    } else {
        EFAULT
    }
}

/// Logs what the module writes to stdout or stderr, line by line; only the first
/// [`LOG_LIMIT`] bytes of one call are kept, the rest counts as written.
fn fd_write(mut caller: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, written: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let Some(mem) = memory(&caller) else {
        return EBADF;
    };
    let mut text = Vec::new();
    let mut total = 0u32;
    for i in 0..n.max(0) as usize {
        let mut iov = [0u8; 8];
        if mem
            .read(&caller, iovs as u32 as usize + 8 * i, &mut iov)
            .is_err()
        {
            return EFAULT;
        }
        let ptr = u32::from_le_bytes(iov[..4].try_into().unwrap_or_default()) as usize;
        let len = u32::from_le_bytes(iov[4..].try_into().unwrap_or_default()) as usize;
        if ptr
            .checked_add(len)
            .is_none_or(|end| end > mem.data_size(&caller))
        {
            return EFAULT;
        }
        let keep = len.min(LOG_LIMIT - text.len());
        match read_mem(&caller, ptr, keep) {
            Some(b) => text.extend_from_slice(&b),
            None => return EFAULT,
        }
        total = total.wrapping_add(len as u32);
    }
    if write_or_efault(&mut caller, written, &total.to_le_bytes()) != 0 {
        return EFAULT;
    }
    let text = String::from_utf8_lossy(&text);
    for line in text.lines() {
        (caller.data_mut().log)(&format!("wasm fd {fd}: {line}"));
    }
    0
}

/// Clock 0 is the real-time clock, any other the monotonic one.
fn clock_time_get(mut caller: Caller<'_, Host>, id: i32, _precision: i64, out: i32) -> i32 {
    let clock = if id == 0 {
        rustix::time::ClockId::Realtime
    } else {
        rustix::time::ClockId::Monotonic
    };
    let ts = rustix::time::clock_gettime(clock);
    let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    write_or_efault(&mut caller, out, &ns.to_le_bytes())
}

fn random_get(mut caller: Caller<'_, Host>, buf: i32, len: i32) -> i32 {
    let fits = memory(&caller).is_some_and(|m| {
        (buf as u32 as usize).saturating_add(len as u32 as usize) <= m.data_size(&caller)
    });
    if !fits {
        return EFAULT;
    }
    let mut bytes = vec![0u8; len as u32 as usize];
    let mut filled = 0;
    while filled < bytes.len() {
        let flags = rustix::rand::GetRandomFlags::empty();
        match rustix::rand::getrandom(&mut bytes[filled..], flags) {
            Ok(n) if n > 0 => filled += n,
            _ => return EIO,
        }
    }
    write_or_efault(&mut caller, buf, &bytes)
}

/// `environ_sizes_get` and `args_sizes_get` of an empty list: zero strings, zero bytes.
fn zero_counts(mut caller: Caller<'_, Host>, count: i32, size: i32) -> i32 {
    for p in [count, size] {
        if write_or_efault(&mut caller, p, &[0; 4]) != 0 {
            return EFAULT;
        }
    }
    0
}

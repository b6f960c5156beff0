// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
// Copyright (c) The ig-image authors

//! trace_exec_rs - the Rust twin of the C `trace_exec` sample: one event per successful
//! execve()/execveat(), from the `sched/sched_process_exec` tracepoint.
//!
//! Rust eBPF has no CO-RE field relocations, so nothing here reads a kernel struct: the event
//! is built from helpers (pid, comm, time) and tracepoint records, whose layouts are ABI. The
//! parent is remembered at fork time (`sched/sched_process_fork`, which runs in the parent)
//! in an LRU map keyed by the child's pid.

#![no_std]
#![no_main]
#![allow(non_upper_case_globals)]

use aya_ebpf::{
    EbpfContext as _,
    btf_maps::LruHashMap,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_map, tracepoint},
    programs::TracePointContext,
};
use gadget_sdk::{GadgetString, TASK_COMM_LEN, gadget_param, gadget_tracer, gadget_tracer_map};

const FILENAME_LEN: usize = 512;

/// One exec. `#[repr(C)]`: the runtime decodes it from BTF, field by field.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct event {
    /// Nanoseconds since boot (`bpf_ktime_get_boot_ns`), shown as `timestamp`.
    pub timestamp_raw: u64,
    /// Process id (thread-group id) after the exec.
    pub pid: u32,
    /// Process id of the process that forked it; 0 if that fork happened before the gadget
    /// started.
    pub ppid: u32,
    /// Command name after the exec (NUL-padded; a string in BTF, see [`GadgetString`]).
    pub comm: GadgetString<TASK_COMM_LEN>,
    /// File name passed to exec (NUL-terminated).
    pub filename: GadgetString<FILENAME_LEN>,
}

gadget_tracer_map!(events, 256 * 1024);
gadget_tracer!(exec, events, event);
gadget_param!(
    /// Only report this process id (0 = all).
    targ_pid: u32 = 0
);

/// Child pid -> parent tgid, written at fork time.
#[btf_map]
static parents: LruHashMap<u32, u32, 16384> = LruHashMap::new();

/// `sched_process_fork` record offsets. Linux 6.1 has `char parent_comm[16]` inline (parent_pid
/// at 24, child_pid at 44); newer kernels turned the comms into `__data_loc` fields (parent_pid
/// at 12, child_pid at 20). Without CO-RE, tell them apart by finding the parent's pid, which is
/// the current thread's id (the tracepoint runs in the parent). The record's common header
/// (`common_pid`) cannot serve: for BPF programs the kernel overwrites its first 8 bytes with a
/// pointer to the registers.
const LAYOUTS: [(usize, usize); 2] = [(12, 20), (24, 44)];

#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn ig_exec_fork(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let current_tid = pid_tgid as u32 as i32;
    for (parent_off, child_off) in LAYOUTS {
        // SAFETY: offsets inside the tracepoint record; the helper checks the reads.
        let parent = unsafe { ctx.read_at::<i32>(parent_off) };
        if parent != Ok(current_tid) {
            continue;
        }
        // SAFETY: as above.
        if let Ok(child) = unsafe { ctx.read_at::<i32>(child_off) } {
            // The parent process of the child is the current thread's process.
            let parent_tgid = (pid_tgid >> 32) as u32;
            let _ = parents.insert(child as u32, parent_tgid, 0);
        }
        break;
    }
    0
}

/// `sched_process_exec`: `__data_loc char[] filename` at offset 8 (low 16 bits: the string's
/// offset in the record).
const FILENAME_LOC: usize = 8;

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn ig_trace_exec(ctx: TracePointContext) -> u32 {
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let wanted = gadget_sdk::param(&targ_pid);
    if wanted != 0 && wanted != pid {
        return 0;
    }
    let Some(mut entry) = events.reserve_untyped::<event>(0) else {
        if let Some(lost) = events_lost_samples.get_ptr_mut(0) {
            // SAFETY: a per-CPU slot of this map, only touched on this CPU.
            unsafe { *lost += 1 };
        }
        return 0;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points at a reserved ring buffer record of `size_of::<event>()` bytes; every
    // field is written before submit.
    unsafe {
        (*e).timestamp_raw = bpf_ktime_get_boot_ns();
        (*e).pid = pid;
        // SAFETY (get): a plain lookup; the value is copied out at once.
        (*e).ppid = parents.get(pid).copied().unwrap_or(0);
        (*e).comm = GadgetString(bpf_get_current_comm().unwrap_or([0; TASK_COMM_LEN]));
        let loc = ctx.read_at::<u32>(FILENAME_LOC).unwrap_or(0);
        let src = ctx.as_ptr().cast::<u8>().add((loc & 0xFFFF) as usize);
        let filename = (*e).filename.as_mut_bytes();
        if bpf_probe_read_kernel_str_bytes(src, filename).is_err() {
            filename[0] = 0;
        }
    }
    entry.submit(0);
    0
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/exec_fixes.h - the thread that called execve(), seen from its exit.
 *
 * When a non-leader thread calls execve() and it succeeds, the kernel kills
 * the other threads and the new program continues in the thread-group
 * leader: sys_exit_execve then runs as the leader, not as the caller. To get
 * the caller back, gadget_enter_exec() adds the caller's tid to a per-tgid
 * sum at entry, and gadget_get_exec_caller_pid() subtracts it at exit. Of
 * concurrent execve() calls in one process only one can succeed, and the
 * failing ones exit first, so the sum left for a successful one is exactly
 * its caller's tid.
 *
 * API:
 *   ig_pid_by_tgid                        HASH tgid -> sum of tids (1024)
 *   void gadget_enter_exec(void)          call in sys_enter_execve
 *   pid_t gadget_get_exec_caller_pid(long retval)
 *                                         call in sys_exit_execve; the
 *                                         caller's tid, 0 if unknown
 */

#ifndef __EXEC_FIXES_H
#define __EXEC_FIXES_H

#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, pid_t);
	__type(value, __u64);
} ig_pid_by_tgid SEC(".maps");

static __always_inline void gadget_enter_exec(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	pid_t tid = (pid_t)pid_tgid;
	pid_t tgid = pid_tgid >> 32;
	__u64 zero = 0;
	__u64 *sum;

	bpf_map_update_elem(&ig_pid_by_tgid, &tgid, &zero, BPF_NOEXIST);
	sum = bpf_map_lookup_elem(&ig_pid_by_tgid, &tgid);
	if (sum)
		__atomic_add_fetch(sum, (__u64)tid, __ATOMIC_RELAXED);
}

static __always_inline pid_t gadget_get_exec_caller_pid(long retval)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	pid_t tid = (pid_t)pid_tgid;
	pid_t tgid = pid_tgid >> 32;
	pid_t caller;
	__u64 *sum;

	sum = bpf_map_lookup_elem(&ig_pid_by_tgid, &tgid);
	if (!sum)
		return 0;

	/* Success: the leader runs here, the sum holds the caller. Failure:
	 * the caller itself runs here. */
	caller = retval == 0 ? (pid_t)*sum : tid;
	__atomic_add_fetch(sum, -(__u64)tid, __ATOMIC_RELAXED);
	if (retval == 0 || *sum == 0)
		bpf_map_delete_elem(&ig_pid_by_tgid, &tgid);
	return caller;
}

#endif /* __EXEC_FIXES_H */

// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * trace_kill - signals sent with kill(2), and whether they were delivered.
 *
 * Reads the syscall's arguments the way upstream's gadgets do: through the
 * tracepoint context `struct syscall_trace_enter`, whose `args[]` is a
 * flexible array member. Every access to it is a CO-RE relocation (vmlinux.h
 * types carry preserve_access_index), resolved against the running kernel's
 * BTF at load time: `ctx->args[0]` is the target pid and `ctx->args[1]` the
 * signal, as in `SYSCALL_DEFINE2(kill, pid_t, pid, int, sig)`.
 *
 * sys_enter_kill stores the arguments per thread; sys_exit_kill emits the
 * event with the result.
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

/* Only report kills that failed. */
const volatile bool failed = false;
GADGET_PARAM(failed);

struct kill_args {
	__s32 target;
	__u32 sig;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct kill_args);
} start SEC(".maps");

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	/* kill(2)'s pid: > 0 a process, 0 the caller's group, -1 all, < -1 a group. */
	__s32 target;
	gadget_signal sig_raw;
	gadget_errno error_raw;
};

GADGET_TRACER_MAP(events, 1024 * 256);

GADGET_TRACER(kill, events, event);

SEC("tracepoint/syscalls/sys_enter_kill")
int ig_kill_e(struct syscall_trace_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kill_args args = {};

	if (gadget_should_discard_data_current())
		return 0;

	/* CO-RE reads of the flexible array args[]. */
	args.target = (__s32)BPF_CORE_READ(ctx, args[0]);
	args.sig = (__u32)BPF_CORE_READ(ctx, args[1]);
	bpf_map_update_elem(&start, &pid_tgid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int ig_kill_x(struct syscall_trace_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kill_args *args;
	struct event *event;
	long ret;

	args = bpf_map_lookup_elem(&start, &pid_tgid);
	if (!args)
		return 0;

	ret = BPF_CORE_READ(ctx, ret);
	if (failed && ret >= 0)
		goto cleanup;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		goto cleanup;

	event->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&event->proc);
	event->target = args->target;
	event->sig_raw = args->sig;
	event->error_raw = ret < 0 ? (__u32)-ret : 0;
	gadget_submit_buf(ctx, &events, event, sizeof(*event));

cleanup:
	bpf_map_delete_elem(&start, &pid_tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

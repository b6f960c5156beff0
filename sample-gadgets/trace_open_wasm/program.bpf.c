// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * trace_open - one event per openat(2) call.
 *
 * sys_enter_openat remembers the arguments of the call in `start`, keyed by
 * the calling thread (pid_tgid); sys_exit_openat picks them up, reads the
 * file name from the caller's memory and emits the event with the result:
 * `fd` on success, `error_raw` (a positive errno) on failure.
 *
 * Parameters: `failed` (only report failed opens) and the common filters of
 * gadget/filter.h (pid, tid, uid, gid, comm, mount namespace).
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define FNAME_LEN 256

/* Only report opens that failed. */
const volatile bool failed = false;
GADGET_PARAM(failed);

/* What sys_enter_openat saw, until sys_exit_openat runs. */
struct open_args {
	const char *fname;
	__u32 flags;
	__u32 mode;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct open_args);
} start SEC(".maps");

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	gadget_errno error_raw;
	__u32 fd;
	gadget_file_flags flags_raw;
	gadget_file_mode mode_raw;
	char fname[FNAME_LEN];
};

GADGET_TRACER_MAP(events, 1024 * 256);

GADGET_TRACER(open, events, event);

/* openat(int dfd, const char *filename, int flags, umode_t mode) */
SEC("tracepoint/syscalls/sys_enter_openat")
int ig_openat_e(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct open_args args = {};

	if (gadget_should_discard_data_current())
		return 0;

	args.fname = (const char *)ctx->args[1];
	args.flags = (__u32)ctx->args[2];
	args.mode = (__u32)ctx->args[3];
	bpf_map_update_elem(&start, &pid_tgid, &args, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ig_openat_x(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct open_args *args;
	struct event *event;
	long ret;

	args = bpf_map_lookup_elem(&start, &pid_tgid);
	if (!args)
		return 0; /* filtered out at entry, or entry missed */

	ret = ctx->ret;
	if (failed && ret >= 0)
		goto cleanup;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		goto cleanup;

	event->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&event->proc);
	if (ret >= 0) {
		event->fd = (__u32)ret;
		event->error_raw = 0;
	} else {
		event->fd = 0;
		event->error_raw = (__u32)-ret;
	}
	event->flags_raw = args->flags;
	event->mode_raw = args->mode;
	if (bpf_probe_read_user_str(event->fname, sizeof(event->fname),
				    args->fname) < 0)
		event->fname[0] = '\0';

	gadget_submit_buf(ctx, &events, event, sizeof(*event));

cleanup:
	bpf_map_delete_elem(&start, &pid_tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

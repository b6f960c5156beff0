// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * trace_exec - one event per successful execve()/execveat().
 *
 * Hooks the sched/sched_process_exec tracepoint, which fires in the context
 * of the process after the new program has replaced the old one, so comm is
 * already the new command name and pid is the (possibly new) thread-group
 * leader. Each event carries the process (pid, tid, comm, creds, mount
 * namespace, real parent) and the file name passed to exec.
 *
 * Filters: the common ones from gadget/filter.h (pid, tid, uid, gid, comm and
 * the container / mount namespace filter).
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define FILENAME_LEN 512

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	char filename[FILENAME_LEN];
};

GADGET_TRACER_MAP(events, 1024 * 256);

GADGET_TRACER(exec, events, event);

SEC("tracepoint/sched/sched_process_exec")
int ig_trace_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct event *event;
	__u32 name_off;

	if (gadget_should_discard_data_current())
		return 0;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		return 0;

	event->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&event->proc);

	/* filename is a __data_loc field: the low 16 bits give its offset
	 * from the start of the tracepoint record. */
	name_off = ctx->__data_loc_filename & 0xFFFF;
	if (bpf_probe_read_kernel_str(event->filename, sizeof(event->filename),
				      (void *)ctx + name_off) < 0)
		event->filename[0] = '\0';

	gadget_submit_buf(ctx, &events, event, sizeof(*event));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

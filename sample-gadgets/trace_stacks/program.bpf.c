// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * trace_stacks - who unlinks files, and through which code paths.
 *
 * The syscalls/sys_enter_unlinkat (and, on x86, sys_enter_unlink)
 * tracepoints emit one event per call with
 * the kernel stack (an id into the SDK's stack map `ig_kstack`, symbolized
 * by the runtime) and, with --collect-ustack, the user stack (`ig_ustack`,
 * plus the executable's identity so the runtime can symbolize it). A
 * tracepoint rather than a kprobe, so it also runs on kernels built without
 * kprobes; from a tracepoint, gadget_get_user_stack() collects no
 * OpenTelemetry correlation id.
 *
 * Shows the SDK's stack API: <gadget/kernel_stack_map.h> and
 * <gadget/user_stack_map.h>.
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/buffer.h>
#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/kernel_stack_map.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/user_stack_map.h>

#define NAME_LEN 128

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	/* Kernel stack id in ig_kstack; shown as the list of functions. */
	gadget_kernel_stack kstack_raw;
	/* User stack; all zero unless collect_ustack is set. */
	struct gadget_user_stack ustack_raw;
	char name[NAME_LEN];
};

GADGET_TRACER_MAP(events, 1024 * 256);

GADGET_TRACER(unlink, events, event);

static __always_inline int emit(void *ctx, const char *pathname)
{
	struct event *event;

	if (gadget_should_discard_data_current())
		return 0;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		return 0;

	event->timestamp_raw = bpf_ktime_get_boot_ns();
	gadget_process_populate(&event->proc);
	event->kstack_raw = gadget_get_kernel_stack(ctx);
	gadget_get_user_stack(ctx, &event->ustack_raw);
	if (bpf_probe_read_user_str(event->name, sizeof(event->name),
				    pathname) < 0)
		event->name[0] = '\0';

	gadget_submit_buf(ctx, &events, event, sizeof(*event));
	return 0;
}

/* unlinkat(int dfd, const char *pathname, int flag) */
SEC("tracepoint/syscalls/sys_enter_unlinkat")
int ig_unlinkat_stacks(struct trace_event_raw_sys_enter *ctx)
{
	return emit(ctx, (const char *)ctx->args[1]);
}

#ifdef __TARGET_ARCH_x86
/* unlink(const char *pathname): x86 has it (glibc's unlink() uses it there),
 * arm64 only has unlinkat. */
SEC("tracepoint/syscalls/sys_enter_unlink")
int ig_unlink_stacks(struct trace_event_raw_sys_enter *ctx)
{
	return emit(ctx, (const char *)ctx->args[0]);
}
#endif

char LICENSE[] SEC("license") = "GPL";

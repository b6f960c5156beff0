/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/user_stack_map.h - user-space stacks, symbolized by the runtime.
 *
 * An event field of type `struct gadget_user_stack` (see types.h) is filled
 * by gadget_get_user_stack(). The runtime reads the stack addresses from the
 * stack trace map `ig_ustack` (and build ids from `ig_build_id`) by name,
 * identifies the executable from the inode/device/mtime fields and
 * symbolizes the stack (the `ustack` column).
 *
 * Params (GADGET_PARAM, set by the runtime or the user):
 *   collect_ustack           bool, default false: collect anything at all
 *   collect_build_id         bool, default false: also fill ig_build_id
 *   collect_otel_stack       bool, default false: ask an OpenTelemetry
 *                            profiler (tail call) for a correlation id
 *   ig_build_id_max_entries  int, default 1024: max_entries of ig_build_id
 *                            (declared 0, sized at load time)
 *
 * Maps: ig_ustack (STACK_TRACE, 10000 stacks of 127 frames), ig_build_id
 * (HASH, stack id -> 127 struct bpf_stack_build_id), otel_generic_params
 * (PERCPU_ARRAY of struct generic_param), otel_tc_kprobe and otel_tc_perf
 * (PROG_ARRAY, filled by the runtime with the profiler's programs).
 *
 * API:
 *   GADGET_USER_MAX_STACK_DEPTH, GADGET_USER_STACK_MAP_MAX_ENTRIES
 *   (also under the older names USER_MAX_STACK_DEPTH and
 *   USER_STACK_MAP_MAX_ENTRIES)
 *   gadget_get_user_stack(ctx, &ustack)   picks the variant below from the
 *                                         C type of ctx
 *   gadget_get_user_stack_from_kprobe(ctx, &ustack)      kprobe/uprobe ctx
 *   gadget_get_user_stack_from_perf_event(ctx, &ustack)  perf_event ctx
 *   gadget_get_user_stack_from_tracepoint(ctx, &ustack)  anything else
 *                                         (no OpenTelemetry correlation)
 *   gadget_inode_get_mtime(inode, &sec, &nsec)   mtime on every kernel layout
 *   gadget_get_base_addr_hash(task)       FNV-1a of mm, start_code, start_stack
 */

#ifndef __USER_STACK_MAP_H
#define __USER_STACK_MAP_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include <gadget/types.h>
#include <gadget/macros.h>
#include <gadget/fnv1a.h>
#include <gadget/core_fixes.bpf.h>

const volatile bool collect_ustack = false;
GADGET_PARAM(collect_ustack);

const volatile bool collect_build_id = false;
GADGET_PARAM(collect_build_id);

const volatile bool collect_otel_stack = false;
GADGET_PARAM(collect_otel_stack);

const volatile int ig_build_id_max_entries = 1024;
GADGET_PARAM(ig_build_id_max_entries);

#define GADGET_USER_MAX_STACK_DEPTH 127
#define GADGET_USER_STACK_MAP_MAX_ENTRIES 10000
#define USER_MAX_STACK_DEPTH GADGET_USER_MAX_STACK_DEPTH
#define USER_STACK_MAP_MAX_ENTRIES GADGET_USER_STACK_MAP_MAX_ENTRIES

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GADGET_USER_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, GADGET_USER_STACK_MAP_MAX_ENTRIES);
} ig_ustack SEC(".maps");

/* max_entries comes from ig_build_id_max_entries at load time. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, sizeof(__u32));
	__uint(value_size,
	       GADGET_USER_MAX_STACK_DEPTH * sizeof(struct bpf_stack_build_id));
	__uint(max_entries, 0);
} ig_build_id SEC(".maps");

static const struct bpf_stack_build_id
	ig_empty_build_id[GADGET_USER_MAX_STACK_DEPTH] = {};

/* Written by the OpenTelemetry profiler's program during the tail call. */
struct generic_param {
	__u64 correlation_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct generic_param);
} otel_generic_params SEC(".maps");

/* One program array per program type: a tail call needs a target of the
 * caller's type. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__array(values, int());
} otel_tc_kprobe SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__array(values, int());
} otel_tc_perf SEC(".maps");

/* The inode's modification time moved three times. Each flavour below
 * describes one layout; the size check tells same-named fields of different
 * types apart. */
struct timespec___obsolete { /* 4.0 - 4.17 */
	__kernel_old_time_t tv_sec;
	long tv_nsec;
};
struct inode___with_timespec {
	struct timespec___obsolete i_mtime;
};
struct inode___with_timespec64 { /* 4.18 - 6.6 */
	struct timespec64 i_mtime;
};
struct inode___with_timespec64_underscore { /* 6.7 - 6.10 */
	struct timespec64 __i_mtime;
};
struct inode___with_two_fields { /* 6.11 and later */
	time64_t i_mtime_sec;
	__u32 i_mtime_nsec;
};

static __always_inline void
gadget_inode_get_mtime(struct inode *inode, __u64 *mtime_sec, __u32 *mtime_nsec)
{
	if (bpf_core_field_exists(struct inode___with_two_fields,
				  i_mtime_sec) &&
	    bpf_core_field_size(struct inode___with_two_fields, i_mtime_sec) ==
		    sizeof(time64_t)) {
		struct inode___with_two_fields *i = (void *)inode;

		*mtime_sec = BPF_CORE_READ(i, i_mtime_sec);
		*mtime_nsec = BPF_CORE_READ(i, i_mtime_nsec);
		return;
	}
	if (bpf_core_field_exists(struct inode___with_timespec64_underscore,
				  __i_mtime) &&
	    bpf_core_field_size(struct inode___with_timespec64_underscore,
				__i_mtime) == sizeof(struct timespec64)) {
		struct inode___with_timespec64_underscore *i = (void *)inode;

		*mtime_sec = BPF_CORE_READ(i, __i_mtime.tv_sec);
		*mtime_nsec = BPF_CORE_READ(i, __i_mtime.tv_nsec);
		return;
	}
	if (bpf_core_field_exists(struct inode___with_timespec64, i_mtime) &&
	    bpf_core_field_size(struct inode___with_timespec64, i_mtime) ==
		    sizeof(struct timespec64)) {
		struct inode___with_timespec64 *i = (void *)inode;

		*mtime_sec = BPF_CORE_READ(i, i_mtime.tv_sec);
		*mtime_nsec = BPF_CORE_READ(i, i_mtime.tv_nsec);
		return;
	}
	if (bpf_core_field_exists(struct inode___with_timespec, i_mtime) &&
	    bpf_core_field_size(struct inode___with_timespec, i_mtime) ==
		    sizeof(struct timespec___obsolete)) {
		struct inode___with_timespec *i = (void *)inode;

		*mtime_sec = BPF_CORE_READ(i, i_mtime.tv_sec);
		*mtime_nsec = BPF_CORE_READ(i, i_mtime.tv_nsec);
		return;
	}
	*mtime_sec = 0;
	*mtime_nsec = 0;
}

/* Tells two processes running the same executable apart. */
static __always_inline __u32 gadget_get_base_addr_hash(struct task_struct *task)
{
	__u32 hash = fnv_32a_init();

	fnv_32a_update_u64(&hash, (__u64)BPF_CORE_READ(task, mm));
	fnv_32a_update_u64(&hash, (__u64)BPF_CORE_READ(task, mm, start_code));
	fnv_32a_update_u64(&hash, (__u64)BPF_CORE_READ(task, mm, start_stack));
	return hash;
}

static __attribute__((noinline)) int
gadget_fetch_otel_stack_from_kprobe(void *ctx)
{
	bpf_tail_call(ctx, &otel_tc_kprobe, 0);
	return 0;
}

static __attribute__((noinline)) int
gadget_fetch_otel_stack_from_perf_event(void *ctx)
{
	bpf_tail_call(ctx, &otel_tc_perf, 0);
	return 0;
}

/* Everything but the OpenTelemetry correlation id, which depends on the
 * program type. With collect_ustack off the struct is zeroed (inode 0 tells
 * the runtime there is no stack). */
static __always_inline void
__gadget_fill_user_stack(void *ctx, struct gadget_user_stack *ustack)
{
	struct task_struct *task;
	struct inode *exe_inode;
	struct pid *thread_pid;
	struct upid *numbers;
	unsigned int level;
	dev_t dev;

	__builtin_memset(ustack, 0, sizeof(*ustack));
	if (!collect_ustack)
		return;

	ustack->stack_id = bpf_get_stackid(
		ctx, &ig_ustack, BPF_F_FAST_STACK_CMP | BPF_F_USER_STACK);
	ustack->boot_timestamp = bpf_ktime_get_boot_ns();

	task = (struct task_struct *)bpf_get_current_task();
	exe_inode = BPF_CORE_READ(task, mm, exe_file, f_inode);

	/* pid numbers as seen from the first two pid namespace levels; the
	 * runtime picks the one matching the pid namespace it sees. The cast
	 * works with numbers[] as a fixed array and as a flexible one (6.5). */
	thread_pid = BPF_CORE_READ(task, thread_pid);
	level = BPF_CORE_READ(thread_pid, level);
	numbers = (struct upid *)&thread_pid->numbers;
	ustack->tgid_level0 = BPF_CORE_READ(task, tgid);
	ustack->pid_level0 = BPF_CORE_READ(numbers, nr);
	ustack->pidns_level0 = BPF_CORE_READ(numbers, ns, ns.inum);
	if (level >= 1) {
		ustack->pid_level1 = BPF_CORE_READ(numbers + 1, nr);
		ustack->pidns_level1 = BPF_CORE_READ(numbers + 1, ns, ns.inum);
	}

	/* The kernel's dev_t is major << 20 | minor (kdev_t.h); user space
	 * compares major and minor separately. */
	dev = BPF_CORE_READ(exe_inode, i_sb, s_dev);
	ustack->major = (__u32)(dev >> 20);
	ustack->minor = (__u32)(dev & ((1U << 20) - 1));
	ustack->inode = (__u64)BPF_CORE_READ(exe_inode, i_ino);
	gadget_inode_get_mtime(exe_inode, &ustack->mtime_sec,
			       &ustack->mtime_nsec);
	ustack->base_addr_hash = gadget_get_base_addr_hash(task);

	if (collect_build_id && ustack->stack_id >= 0) {
		struct bpf_stack_build_id *build_id;

		/* Only the first event with this stack fills the entry. */
		if (bpf_map_update_elem(&ig_build_id, &ustack->stack_id,
					&ig_empty_build_id, BPF_NOEXIST) != 0)
			return;
		build_id = bpf_map_lookup_elem(&ig_build_id, &ustack->stack_id);
		if (!build_id)
			return;
		bpf_get_stack(ctx, build_id,
			      GADGET_USER_MAX_STACK_DEPTH *
				      sizeof(struct bpf_stack_build_id),
			      BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	}
}

static __always_inline void
__gadget_read_otel_correlation(struct gadget_user_stack *ustack)
{
	__u32 zero = 0;
	struct generic_param *param =
		bpf_map_lookup_elem(&otel_generic_params, &zero);

	if (param)
		ustack->otel_correlation_id = param->correlation_id;
}

static __always_inline void
gadget_get_user_stack_from_kprobe(void *ctx, struct gadget_user_stack *ustack)
{
	__gadget_fill_user_stack(ctx, ustack);
	if (collect_ustack && collect_otel_stack) {
		gadget_fetch_otel_stack_from_kprobe(ctx);
		__gadget_read_otel_correlation(ustack);
	}
}

static __always_inline void
gadget_get_user_stack_from_perf_event(void *ctx,
				      struct gadget_user_stack *ustack)
{
	__gadget_fill_user_stack(ctx, ustack);
	if (collect_ustack && collect_otel_stack) {
		gadget_fetch_otel_stack_from_perf_event(ctx);
		__gadget_read_otel_correlation(ustack);
	}
}

/* No tail call is possible from a tracepoint into the profiler's programs:
 * asking for OpenTelemetry stacks there makes the load fail (the branch is
 * pruned by the verifier when collect_otel_stack is false). */
static __always_inline void
gadget_get_user_stack_from_tracepoint(void *ctx,
				      struct gadget_user_stack *ustack)
{
	__gadget_fill_user_stack(ctx, ustack);
	if (collect_ustack && collect_otel_stack)
		bpf_core_unreachable();
}

/* Dispatch on the static type of ctx. Other context types (tracepoints,
 * raw tracepoints, a plain void *) get the variant without OpenTelemetry,
 * so gadgets written against older SDKs keep building. */
#define gadget_get_user_stack(ctx, ustack)                                     \
	_Generic((ctx),                                                        \
		struct bpf_perf_event_data *: gadget_get_user_stack_from_perf_event, \
		struct pt_regs *: gadget_get_user_stack_from_kprobe,           \
		default: gadget_get_user_stack_from_tracepoint)((ctx), (ustack))

#endif /* __USER_STACK_MAP_H */

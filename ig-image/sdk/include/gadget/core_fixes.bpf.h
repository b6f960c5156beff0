/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/core_fixes.bpf.h - reading kernel fields that were renamed or moved.
 *
 * Each helper picks, at load time through CO-RE existence checks, the layout
 * the running kernel has. The `___suffix` structs below are CO-RE "flavours":
 * libbpf ignores everything from the triple underscore on when it matches
 * them against the kernel's types, so they describe the old or new layout of
 * the real struct without clashing with vmlinux.h.
 *
 * API:
 *   bpf_core_unreachable()                 reject the program at load time
 *                                          (the call libbpf emits for an
 *                                          unresolved relocation, 0xbad2310)
 *   __s64 get_task_state(task)             task_struct::__state (5.14+) or ::state
 *   struct gendisk *get_gendisk(bio)       bio->bi_bdev->bd_disk (5.12+) or bio->bi_disk
 *   bool has_block_rq_completion(void)     trace_event_raw_block_rq_completion exists (5.18+)
 *   struct gendisk *get_disk(request)      request->rq_disk or request->q->disk (5.17+)
 *   bool renamedata_has_old_mnt_userns_field(void)  idmapped-mount vfs_* signatures (5.12+)
 *   bool has_kfree(void)                   trace_event_raw_kfree exists (6.0+)
 *   bool has_kmem_cache_free(void)         trace_event_raw_kmem_cache_free exists (6.0+)
 */

#ifndef __CORE_FIXES_BPF_H
#define __CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/* Calling this makes the verifier refuse the program with "invalid func
 * unknown#195896080", the same message an unguarded failed CO-RE relocation
 * gives. Put it in a branch that CO-RE checks prove dead on supported
 * kernels. */
static void (*bpf_core_unreachable)(void) = (void *)0xbad2310;

/* task_struct::state became task_struct::__state in 5.14 (commit 2f064a59a1). */
struct task_struct___o {
	volatile long int state;
} __attribute__((preserve_access_index));

struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

static __always_inline __s64 get_task_state(void *task)
{
	struct task_struct___x *new_layout = task;

	if (bpf_core_field_exists(new_layout->__state))
		return BPF_CORE_READ(new_layout, __state);
	return BPF_CORE_READ((struct task_struct___o *)task, state);
}

/* bio::bi_disk was replaced by bio::bi_bdev in 5.12 (commit 309dca309fc3). */
struct bio___o {
	struct gendisk *bi_disk;
} __attribute__((preserve_access_index));

struct bio___x {
	struct block_device *bi_bdev;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *get_gendisk(void *bio)
{
	struct bio___x *new_layout = bio;

	if (bpf_core_field_exists(new_layout->bi_bdev))
		return BPF_CORE_READ(new_layout, bi_bdev, bd_disk);
	return BPF_CORE_READ((struct bio___o *)bio, bi_disk);
}

/* block_rq_complete's event struct became
 * trace_event_raw_block_rq_completion when block_rq_error was added (5.18,
 * commit d5869fdc189f). */
struct trace_event_raw_block_rq_complete___x {
	dev_t dev;
	sector_t sector;
	unsigned int nr_sector;
} __attribute__((preserve_access_index));

struct trace_event_raw_block_rq_completion___x {
	dev_t dev;
	sector_t sector;
	unsigned int nr_sector;
} __attribute__((preserve_access_index));

static __always_inline bool has_block_rq_completion(void)
{
	return bpf_core_type_exists(
		struct trace_event_raw_block_rq_completion___x);
}

/* request::rq_disk was removed in favour of request->q->disk (5.17,
 * commits d152c682f03c and f3fa33acca9f). */
struct request_queue___x {
	struct gendisk *disk;
} __attribute__((preserve_access_index));

struct request___x {
	struct request_queue___x *q;
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *get_disk(void *request)
{
	struct request___x *r = request;

	if (bpf_core_field_exists(r->rq_disk))
		return BPF_CORE_READ(r, rq_disk);
	return BPF_CORE_READ(r, q, disk);
}

/* Idmapped mounts (5.12, commit 6521f8917082) added a user namespace as the
 * first argument of vfs_create()/vfs_unlink() and old_mnt_userns to struct
 * renamedata: its presence tells which argument is the dentry. */
struct renamedata___x {
	struct user_namespace *old_mnt_userns;
} __attribute__((preserve_access_index));

static __always_inline bool renamedata_has_old_mnt_userns_field(void)
{
	return bpf_core_field_exists(struct renamedata___x, old_mnt_userns);
}

/* kmem tracepoints: trace_event_raw_kmem_free was split into
 * trace_event_raw_kfree and trace_event_raw_kmem_cache_free (6.0, commit
 * 3544de8ee6e4). */
struct trace_event_raw_kmem_free___x {
	const void *ptr;
} __attribute__((preserve_access_index));

struct trace_event_raw_kfree___x {
	const void *ptr;
} __attribute__((preserve_access_index));

struct trace_event_raw_kmem_cache_free___x {
	const void *ptr;
} __attribute__((preserve_access_index));

static __always_inline bool has_kfree(void)
{
	return bpf_core_type_exists(struct trace_event_raw_kfree___x);
}

static __always_inline bool has_kmem_cache_free(void)
{
	return bpf_core_type_exists(struct trace_event_raw_kmem_cache_free___x);
}

#endif /* __CORE_FIXES_BPF_H */

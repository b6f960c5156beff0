/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/buffer.h - sending events from a gadget to user space.
 *
 * GADGET_TRACER_MAP(name, size) declares the ring buffer <name> a tracer
 * writes its events into, and a per-CPU counter map <name>_lost_samples that
 * counts the events which could not be sent. On kernels without ring buffers
 * the loader turns <name> into a perf event array; every helper below checks
 * at load time (through a CO-RE enum relocation on `enum bpf_func_id`) whether
 * the ring buffer helpers exist and otherwise uses bpf_perf_event_output().
 *
 * Include vmlinux.h (or linux/bpf.h) before this header.
 *
 * API:
 *   GADGET_MAX_EVENT_SIZE                       size of the scratch buffer (10240)
 *   void *gadget_reserve_buf(&map, size)        NULL when nothing is available
 *   void  gadget_discard_buf(buf)               drop a reserved buffer
 *   long  gadget_submit_buf(ctx, &map, buf, size)
 *   long  gadget_output_buf(ctx, &map, buf, size)  copy buf into the map
 *
 * Define GADGET_NO_BUF_RESERVE before including to leave out the scratch map
 * `gadget_heap` and the reserve/discard/submit helpers.
 *
 * gadget_reserve_buf() and gadget_output_buf() are macros: they derive the
 * name of the lost-samples counter by pasting `_lost_samples` onto the last
 * token of their map argument, so pass the map as `&<map name>`.
 */

#ifndef __BUFFER_BPF_H
#define __BUFFER_BPF_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#ifndef GADGET_MAX_EVENT_SIZE
#define GADGET_MAX_EVENT_SIZE 10240
#endif

#define GADGET_TRACER_MAP(name, size)                                          \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                            \
		__uint(max_entries, size);                                     \
	} name SEC(".maps");                                                   \
	const void *gadget_map_tracer_##name __attribute__((unused));          \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                       \
		__uint(max_entries, 1);                                        \
		__type(key, __u32);                                            \
		__type(value, __u64);                                          \
	} name##_lost_samples SEC(".maps");

/* Adds one to the per-CPU lost-samples counter `counter_map`. */
static __always_inline void __gadget_count_lost(void *counter_map)
{
	__u32 slot = 0;
	__u64 *lost = bpf_map_lookup_elem(counter_map, &slot);

	if (lost)
		*lost += 1;
}

#define __GADGET_HAVE_RINGBUF(helper)                                          \
	bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_##helper)

#ifndef GADGET_NO_BUF_RESERVE

/* Per-CPU scratch space used instead of ring buffer memory when the kernel
 * has no ring buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GADGET_MAX_EVENT_SIZE);
} gadget_heap SEC(".maps");

#define gadget_reserve_buf(map, size)                                          \
	__gadget_reserve_buf(map, map##_lost_samples, size)

static __always_inline void *__gadget_reserve_buf(void *map, void *lost_map,
						  __u64 size)
{
	__u32 slot = 0;
	void *buf;

	if (__GADGET_HAVE_RINGBUF(reserve)) {
		buf = bpf_ringbuf_reserve(map, size, 0);
		if (!buf)
			__gadget_count_lost(lost_map);
		return buf;
	}

	if (size > GADGET_MAX_EVENT_SIZE)
		return NULL;
	return bpf_map_lookup_elem(&gadget_heap, &slot);
}

static __always_inline void gadget_discard_buf(void *buf)
{
	/* Scratch memory from gadget_heap needs no release. */
	if (__GADGET_HAVE_RINGBUF(discard))
		bpf_ringbuf_discard(buf, 0);
}

static __always_inline long gadget_submit_buf(void *ctx, void *map, void *buf,
					      __u64 size)
{
	if (__GADGET_HAVE_RINGBUF(submit)) {
		bpf_ringbuf_submit(buf, 0);
		return 0;
	}

	/* perf reports its own losses to the reader (PERF_RECORD_LOST) */
	return bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, buf, size);
}

#endif /* GADGET_NO_BUF_RESERVE */

#define gadget_output_buf(ctx, map, buf, size)                                 \
	__gadget_output_buf(ctx, map, map##_lost_samples, buf, size)

static __always_inline long __gadget_output_buf(void *ctx, void *map,
						void *lost_map, void *buf,
						__u64 size)
{
	long err;

	if (__GADGET_HAVE_RINGBUF(output)) {
		err = bpf_ringbuf_output(map, buf, size, 0);
		if (err)
			__gadget_count_lost(lost_map);
		return err;
	}

	return bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, buf, size);
}

#endif /* __BUFFER_BPF_H */

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/gpu_bridge_maps.h - the GPU bridge's pinned maps, for gadgets that
 * read GPU telemetry (record layouts in gpu_types.h).
 *
 * Each map is declared with pinning LIBBPF_PIN_BY_NAME, so a gadget shares
 * the map the bridge pinned under that name instead of creating its own.
 * Select the maps you use by defining, before including this header:
 *
 *   GPU_BRIDGE_WANT_META              gpu_meta + gpu_meta_fresh()
 *   GPU_BRIDGE_WANT_DEVICE            gpu_device
 *   GPU_BRIDGE_WANT_PER_PID           gpu_per_pid + gpu_pid_holder()
 *   GPU_BRIDGE_WANT_PER_PID_PER_DEVICE  gpu_per_pid_per_device
 *   GPU_BRIDGE_WANT_ALL               all four
 *
 * Include vmlinux.h and bpf_helpers.h first.
 */

#ifndef __GPU_BRIDGE_MAPS_H
#define __GPU_BRIDGE_MAPS_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <gadget/gpu_types.h>

#ifdef GPU_BRIDGE_WANT_ALL
#define GPU_BRIDGE_WANT_META
#define GPU_BRIDGE_WANT_DEVICE
#define GPU_BRIDGE_WANT_PER_PID
#define GPU_BRIDGE_WANT_PER_PID_PER_DEVICE
#endif

#ifdef GPU_BRIDGE_WANT_META
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gpu_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_meta SEC(".maps");

/* The meta record when the bridge's last update is at most
 * stale_threshold_ms old at now_boot_ns (a bpf_ktime_get_boot_ns() value),
 * otherwise NULL. */
static __always_inline struct gpu_meta *gpu_meta_fresh(__u64 now_boot_ns,
						       __u64 stale_threshold_ms)
{
	__u32 zero = 0;
	struct gpu_meta *meta = bpf_map_lookup_elem(&gpu_meta, &zero);

	if (!meta)
		return NULL;
	if (now_boot_ns - meta->last_update_boottime_ns >
	    stale_threshold_ms * 1000000ULL)
		return NULL;
	return meta;
}
#endif

#ifdef GPU_BRIDGE_WANT_DEVICE
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GPU_MAX_DEVICES);
	__type(key, __u32);
	__type(value, struct gpu_device_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_device SEC(".maps");

#endif

#ifdef GPU_BRIDGE_WANT_PER_PID
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct gpu_pid_metrics_aggregated);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_per_pid SEC(".maps");

/* The record of process tgid when it holds at least min_gpu_mem_bytes of
 * GPU memory, otherwise NULL. */
static __always_inline struct gpu_pid_metrics_aggregated *
gpu_pid_holder(__u32 tgid, __u64 min_gpu_mem_bytes)
{
	struct gpu_pid_metrics_aggregated *m =
		bpf_map_lookup_elem(&gpu_per_pid, &tgid);

	if (!m || m->used_gpu_memory_total < min_gpu_mem_bytes)
		return NULL;
	return m;
}
#endif

#ifdef GPU_BRIDGE_WANT_PER_PID_PER_DEVICE
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct gpu_pid_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} gpu_per_pid_per_device SEC(".maps");
#endif

#endif /* __GPU_BRIDGE_MAPS_H */

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/gpu_types.h - record layouts of the GPU bridge maps.
 *
 * A GPU bridge daemon (upstream: gpu-ebpf-bridge, fed by NVML) publishes GPU
 * telemetry in four maps pinned under /sys/fs/bpf (declared by
 * gpu_bridge_maps.h):
 *
 *   gpu_meta                ARRAY[1]                  struct gpu_meta
 *   gpu_device              ARRAY[GPU_MAX_DEVICES]    struct gpu_device_metrics
 *   gpu_per_pid             LRU_HASH, key host tgid   struct gpu_pid_metrics_aggregated
 *   gpu_per_pid_per_device  LRU_HASH, key pid<<32|dev struct gpu_pid_metrics
 *
 * These layouts are shared with the bridge: keep sizes and order. Read
 * fields through CO-RE (BPF_CORE_READ, bpf_core_field_exists) to stay
 * compatible with other bridge versions. Fields the telemetry source cannot
 * provide are 0.
 */

#ifndef __GPU_TYPES_H
#define __GPU_TYPES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bumped when a layout below changes incompatibly. */
#define GPU_SCHEMA_VERSION 1
#define GPU_MAX_DEVICES 16
/* gpu_device_primary of a process using several devices. */
#define GPU_DEVICE_PRIMARY_MULTI 0xFF

/* Bridge state, key 0, rewritten every poll. Data older than about twice
 * the poll interval (last_update_boottime_ns vs bpf_ktime_get_boot_ns()) is
 * stale. */
struct gpu_meta {
	__u32 schema_version;
	__u32 n_devices;
	__u64 last_update_boottime_ns;
	__u32 helper_pid;
	__u32 _reserved;
	/* CLOCK_REALTIME - CLOCK_BOOTTIME in ns: boottime = realtime - offset */
	__s64 clock_offset_ns;
};

/* Per device, indexed 0 .. n_devices-1. */
struct gpu_device_metrics {
	__u64 timestamp_ns;
	__u32 sm_util_pct; /* 0-100 */
	__u32 mem_util_pct; /* 0-100 */
	__u64 mem_total; /* bytes */
	__u64 mem_used; /* bytes, excluding mem_reserved */
	__u64 mem_reserved; /* bytes used by driver and firmware */
	__u32 temp_c;
	__u32 power_mw;
	__u32 sm_clock_mhz;
	__u32 mem_clock_mhz;
	__u64 throttle_reasons; /* NVML clocks event reasons bitmask */
	__u64 pcie_tx_kbps;
	__u64 pcie_rx_kbps;
	__u32 enc_util_pct;
	__u32 dec_util_pct;
	__u64 nvlink_tx_kbps;
	__u64 nvlink_rx_kbps;
	__u64 ecc_corrected_total;
	__u64 ecc_uncorrected_total;
	__u32 fan_speed_pct;
	__u32 compute_mode; /* NVML_COMPUTEMODE_* */
};

/* Per (process, device): key ((__u64)pid << 32) | device index. */
struct gpu_pid_metrics {
	__u64 timestamp_ns;
	__u64 used_gpu_memory;
	__u32 sm_util_pct;
	__u32 mem_util_pct;
	__u32 enc_util_pct;
	__u32 dec_util_pct;
	__u8 gpu_device;
	__u8 mig_instance;
	__u16 _pad;
};

/* Per process, over all its devices: memory summed, utilisation maxed. */
struct gpu_pid_metrics_aggregated {
	__u64 timestamp_ns;
	__u64 used_gpu_memory_total;
	__u32 sm_util_pct_max;
	__u32 mem_util_pct_max;
	__u8 gpu_device_primary;
	__u8 device_count;
	__u16 _pad;
};

#endif /* __GPU_TYPES_H */

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/cgroup_filter.h - filtering events by cgroup.
 *
 * Like mntns_filter.h, but keyed by cgroup id: the runtime sets
 * gadget_filter_by_cgroup and fills gadget_cgroup_filter_map (key: cgroup id
 * as returned by bpf_get_current_cgroup_id(), value: unused u8) with the
 * cgroups of the selected containers.
 *
 * API:
 *   CGROUP_ENTRIES (2048)
 *   const volatile bool gadget_filter_by_cgroup
 *   gadget_cgroup_filter_map
 *   bool gadget_should_discard_cgroup_id(__u64 cgroup_id)
 */

#ifndef CGROUP_FILTER_H
#define CGROUP_FILTER_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define CGROUP_ENTRIES 2048

const volatile bool gadget_filter_by_cgroup = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CGROUP_ENTRIES);
	__type(key, __u64);
	__type(value, __u8);
} gadget_cgroup_filter_map SEC(".maps");

static __always_inline bool gadget_should_discard_cgroup_id(__u64 cgroup_id)
{
	return gadget_filter_by_cgroup &&
	       !bpf_map_lookup_elem(&gadget_cgroup_filter_map, &cgroup_id);
}

#endif /* CGROUP_FILTER_H */

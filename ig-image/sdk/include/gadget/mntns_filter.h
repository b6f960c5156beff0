/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/mntns_filter.h - filtering events by mount namespace.
 *
 * The runtime sets gadget_filter_by_mntns at load time when the user selects
 * containers, and fills gadget_mntns_filter_map with the mount namespace ids
 * of the selected containers (key: mount namespace id, value: unused u32).
 * Gadgets call gadget_should_discard_mntns_id() and drop the event when it
 * returns true.
 */

#ifndef MNTNS_FILTER_H
#define MNTNS_FILTER_H

#include <gadget/types.h>
/* Tracing gadgets also get gadget_get_current_mntns_id() (it needs the
 * kernel's task_struct, so only with vmlinux.h and not for networking). */
#if defined(__VMLINUX_H__) && !defined(GADGET_TYPE_NETWORKING)
#include <gadget/mntns.h>
#endif

#include <bpf/bpf_helpers.h>

const volatile bool gadget_filter_by_mntns = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, gadget_mntns_id);
	__type(value, __u32);
} gadget_mntns_filter_map SEC(".maps");

/* True when filtering by mount namespace is on and `mntns_id` is not one of
 * the selected namespaces. */
static __always_inline bool
gadget_should_discard_mntns_id(gadget_mntns_id mntns_id)
{
	if (!gadget_filter_by_mntns)
		return false;

	return bpf_map_lookup_elem(&gadget_mntns_filter_map, &mntns_id) == NULL;
}

#endif /* MNTNS_FILTER_H */

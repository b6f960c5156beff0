/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/maps.bpf.h - map helpers.
 *
 * bpf_map_lookup_or_try_init(map, key, init) returns the value stored under
 * `key`; when there is none yet it first inserts `init` (without overwriting
 * an entry another CPU may have added meanwhile) and returns the stored
 * value. It returns NULL only when the insert failed for another reason
 * (typically: the map is full).
 */

#ifndef __MAPS_BPF_H
#define __MAPS_BPF_H

#include <bpf/bpf_helpers.h>

#ifndef EEXIST
#define EEXIST 17
#endif

static __always_inline void *
bpf_map_lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);
	long err;

	if (val)
		return val;

	err = bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	/* -EEXIST: another CPU inserted it first, which is fine */
	if (err && err != -EEXIST)
		return NULL;

	return bpf_map_lookup_elem(map, key);
}

#endif /* __MAPS_BPF_H */

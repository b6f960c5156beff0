/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/kernel_stack_map.h - kernel stacks, symbolized by the runtime.
 *
 * The runtime reads the stack trace map `ig_kstack` by name: a field of type
 * gadget_kernel_stack in an event holds an id returned by
 * gadget_get_kernel_stack(), and the runtime turns it into the list of
 * kernel symbols (the `kstack` column) using that map.
 *
 * API:
 *   KERNEL_MAX_STACK_DEPTH        frames kept per stack (127)
 *   KERNEL_STACK_MAP_MAX_ENTRIES  distinct stacks kept (10000)
 *   ig_kstack                     BPF_MAP_TYPE_STACK_TRACE map
 *   long gadget_get_kernel_stack(ctx)  stack id (>= 0) or a negative error
 */

#ifndef __STACK_MAP_H
#define __STACK_MAP_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define KERNEL_MAX_STACK_DEPTH 127
#define KERNEL_STACK_MAP_MAX_ENTRIES 10000

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, KERNEL_MAX_STACK_DEPTH * sizeof(__u64));
	__uint(max_entries, KERNEL_STACK_MAP_MAX_ENTRIES);
} ig_kstack SEC(".maps");

/* Saves the current kernel stack in ig_kstack. Identical stacks share an id
 * (BPF_F_FAST_STACK_CMP compares by hash). */
static __always_inline long gadget_get_kernel_stack(void *ctx)
{
	return bpf_get_stackid(ctx, &ig_kstack, BPF_F_FAST_STACK_CMP);
}

#endif /* __STACK_MAP_H */

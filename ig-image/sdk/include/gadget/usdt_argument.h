/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/usdt_argument.h - reading USDT probe arguments in `usdt/` programs.
 *
 * __usdt_get_argument() is a global placeholder function: the runtime
 * replaces it at load time (a BPF extension program attached with
 * BPF_F_REPLACE) with code that knows where the probe keeps argument
 * arg_idx, and that code stores the value in __usdt_args_buffer. Keep its
 * name and signature.
 *
 * API:
 *   __u64 *usdt_get_argument(ctx, arg_idx)   pointer to the value (reused by
 *                                            the next call), NULL on failure
 */

#ifndef __USDT_ARGUMENT_H
#define __USDT_ARGUMENT_H

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
	__uint(max_entries, 1);
} __usdt_args_buffer SEC(".maps");

/* Global, not inlined and not optimised, so that it stays a replaceable
 * function. Returns true when the value was stored. */
__attribute__((optnone)) bool __usdt_get_argument(struct pt_regs *ctx,
						  __u64 arg_idx)
{
	return !ctx;
}

static __always_inline __u64 *usdt_get_argument(struct pt_regs *ctx,
						__u64 arg_idx)
{
	__u32 zero = 0;

	if (!__usdt_get_argument(ctx, arg_idx))
		return NULL;
	return bpf_map_lookup_elem(&__usdt_args_buffer, &zero);
}

#endif /* __USDT_ARGUMENT_H */

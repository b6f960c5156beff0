/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/bits.bpf.h - integer logarithms for log2 histograms.
 *
 *   log2(v)          floor(log2(v)) of a 32-bit value, 0 for 0 and 1
 *   log2l(v)         the same for a 64-bit value
 *   get_slot_idx(v)  histogram slot of v: 0 for 0, else floor(log2(v)) + 1,
 *                    so slot n (n >= 1) holds values in [2^(n-1), 2^n)
 *
 * All are branch-light and loop-free, so the verifier accepts them anywhere.
 */

#ifndef __BITS_BPF_H
#define __BITS_BPF_H

static __always_inline __u64 log2(__u32 v)
{
	__u32 r = 0;

	if (v >= (1U << 16)) {
		v >>= 16;
		r += 16;
	}
	if (v >= (1U << 8)) {
		v >>= 8;
		r += 8;
	}
	if (v >= (1U << 4)) {
		v >>= 4;
		r += 4;
	}
	if (v >= (1U << 2)) {
		v >>= 2;
		r += 2;
	}
	if (v >= (1U << 1))
		r += 1;

	return r;
}

static __always_inline __u64 log2l(__u64 v)
{
	__u32 high = v >> 32;

	if (high)
		return log2(high) + 32;
	return log2((__u32)v);
}

static __always_inline __u64 get_slot_idx(__u64 v)
{
	if (v == 0)
		return 0;
	return log2l(v) + 1;
}

#endif /* __BITS_BPF_H */

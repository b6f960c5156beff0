/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/fnv1a.h - the FNV-1a hash (32 and 64 bit) for eBPF programs.
 *
 * Integers are fed to the hash byte by byte, least significant byte first,
 * so a hash computed here equals one computed in user space over the
 * little-endian encoding of the same integers.
 *
 * API:
 *   FNV1_32_INIT, FNV1_32_PRIME, FNV1_64_INIT, FNV1_64_PRIME
 *   u32 fnv_32a_init(void)                 u64 fnv_64a_init(void)
 *   fnv_32a_update_u8/u16/u32/u64(u32 *hash, value)
 *   fnv_64a_update_u8/u16/u32/u64(u64 *hash, value)
 */

#ifndef __FNV1A_H
#define __FNV1A_H

#include <bpf/bpf_helpers.h>

#define FNV1_32_INIT ((__u32)0x811c9dc5)
#define FNV1_32_PRIME ((__u32)0x01000193)
#define FNV1_64_INIT ((__u64)0xcbf29ce484222325ULL)
#define FNV1_64_PRIME ((__u64)0x00000100000001b3ULL)

static __always_inline __u32 fnv_32a_init(void)
{
	return FNV1_32_INIT;
}

static __always_inline __u64 fnv_64a_init(void)
{
	return FNV1_64_INIT;
}

/* One update function per (hash width, input width): xor in a byte, then
 * multiply by the prime, for each byte of the value. */
#define __GADGET_FNV1A_UPDATE(fn, hash_t, value_t, prime)                      \
	static __always_inline void fn(hash_t *hash, value_t value)            \
	{                                                                      \
		for (unsigned int byte = 0; byte < sizeof(value_t); byte++) {  \
			*hash ^= (hash_t)((value >> (byte * 8)) & 0xff);       \
			*hash *= prime;                                        \
		}                                                              \
	}

__GADGET_FNV1A_UPDATE(fnv_32a_update_u8, __u32, __u8, FNV1_32_PRIME)
__GADGET_FNV1A_UPDATE(fnv_32a_update_u16, __u32, __u16, FNV1_32_PRIME)
__GADGET_FNV1A_UPDATE(fnv_32a_update_u32, __u32, __u32, FNV1_32_PRIME)
__GADGET_FNV1A_UPDATE(fnv_32a_update_u64, __u32, __u64, FNV1_32_PRIME)
__GADGET_FNV1A_UPDATE(fnv_64a_update_u8, __u64, __u8, FNV1_64_PRIME)
__GADGET_FNV1A_UPDATE(fnv_64a_update_u16, __u64, __u16, FNV1_64_PRIME)
__GADGET_FNV1A_UPDATE(fnv_64a_update_u32, __u64, __u32, FNV1_64_PRIME)
__GADGET_FNV1A_UPDATE(fnv_64a_update_u64, __u64, __u64, FNV1_64_PRIME)

#undef __GADGET_FNV1A_UPDATE

#endif /* __FNV1A_H */

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/sockets.h - filling gadget_l4endpoint_t from a kernel socket.
 *
 * API (each returns 0, or -1 for a family other than AF_INET/AF_INET6):
 *   gadget_l4endpoints_from_sock(&src, &dst, sk)   either pointer may be NULL
 *   gadget_l4endpoint_src_from_sock(&src, sk)      local address and port
 *   gadget_l4endpoint_dst_from_sock(&dst, sk)      remote address and port
 *
 * Addresses keep network byte order, ports are converted to host order,
 * proto_raw is the socket's IP protocol and version is 4 or 6.
 */

#ifndef __GADGET_SOCKETS_H
#define __GADGET_SOCKETS_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <gadget/types.h>

#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

static __always_inline int
gadget_l4endpoints_from_sock(struct gadget_l4endpoint_t *src,
			     struct gadget_l4endpoint_t *dst,
			     const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	__u8 version;

	if (family == AF_INET) {
		version = 4;
		if (src)
			BPF_CORE_READ_INTO(&src->addr_raw.v4, sk,
					   __sk_common.skc_rcv_saddr);
		if (dst)
			BPF_CORE_READ_INTO(&dst->addr_raw.v4, sk,
					   __sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		version = 6;
		if (src)
			BPF_CORE_READ_INTO(
				&src->addr_raw.v6, sk,
				__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		if (dst)
			BPF_CORE_READ_INTO(
				&dst->addr_raw.v6, sk,
				__sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		return -1;
	}

	if (src) {
		src->version = version;
		src->proto_raw = proto;
		/* skc_num is the bound port in host order; fall back to the
		 * inet source port for sockets that have none yet. */
		src->port = BPF_CORE_READ(sk, __sk_common.skc_num);
		if (src->port == 0)
			src->port = bpf_ntohs(
				BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	}
	if (dst) {
		dst->version = version;
		dst->proto_raw = proto;
		dst->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
	return 0;
}

static __always_inline int
gadget_l4endpoint_src_from_sock(struct gadget_l4endpoint_t *src,
				const struct sock *sk)
{
	return gadget_l4endpoints_from_sock(src, NULL, sk);
}

static __always_inline int
gadget_l4endpoint_dst_from_sock(struct gadget_l4endpoint_t *dst,
				const struct sock *sk)
{
	return gadget_l4endpoints_from_sock(NULL, dst, sk);
}

#endif /* __GADGET_SOCKETS_H */

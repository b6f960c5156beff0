/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/sockets-map.h - the socket enricher: which process owns a socket.
 *
 * The runtime keeps the hash map `gadget_sockets` up to date (key: struct
 * gadget_socket_key, value: struct gadget_socket_value, see types.h) and
 * shares it with every gadget that declares it: a gadget's own copy is
 * replaced by the runtime's map at load time. Networking programs (socket
 * filters, tc classifiers) use it to attribute a packet to a process.
 *
 * Include <vmlinux.h> or <linux/types.h> first. Define GADGET_TYPE_NETWORKING
 * (skb-based lookups) or GADGET_TYPE_TRACING (struct sock based lookups)
 * before including to get the matching gadget_socket_lookup().
 *
 * API:
 *   GADGET_SE_* constants (packet offsets, protocol numbers)
 *   GADGET_MAX_SOCKETS (16384)
 *   struct gadget_socket_key { netns, family, proto, port }
 *   gadget_sockets                                   the shared map
 *   GADGET_TYPE_NETWORKING:
 *     gadget_socket_lookup_with_direction(skb, is_ingress)
 *     gadget_socket_lookup(skb)       direction from skb->pkt_type
 *   GADGET_TYPE_TRACING:
 *     gadget_socket_lookup(sk, netns)
 *   gadget_process_populate_from_socket(value, &proc)  fill a gadget_process
 */

#ifndef SOCKETS_MAP_H
#define SOCKETS_MAP_H

#if !defined(__VMLINUX_H__) && !defined(_LINUX_TYPES_H)
#error "Include <vmlinux.h> or <linux/types.h> before <gadget/sockets-map.h>."
#endif

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include <gadget/types.h>

/* Namespaced copies of the kernel constants we need, so that this header
 * works with either vmlinux.h or the uapi headers and defines nothing a
 * gadget might define itself. */
#define GADGET_SE_PACKET_HOST 0
#define GADGET_SE_ETH_HLEN 14
#define GADGET_SE_ETH_P_IP 0x0800
#define GADGET_SE_ETH_P_IPV6 0x86DD
#define GADGET_SE_AF_INET 2
#define GADGET_SE_AF_INET6 10
#define GADGET_SE_IPV6_HLEN 40
#define GADGET_SE_IPV6_NEXTHDR_OFFSET 6 /* offsetof(struct ipv6hdr, nexthdr) */
#define GADGET_SE_IPV4_PROTOCOL_OFFSET 9 /* offsetof(struct iphdr, protocol) */
#define GADGET_SE_TCPHDR_SOURCE_OFFSET 0
#define GADGET_SE_TCPHDR_DEST_OFFSET 2
#define GADGET_SE_UDPHDR_SOURCE_OFFSET 0
#define GADGET_SE_UDPHDR_DEST_OFFSET 2
#define GADGET_SE_IPPROTO_TCP 6
#define GADGET_SE_IPPROTO_UDP 17
/* IPv6 extension headers (include/net/ipv6.h). */
#define GADGET_SE_NEXTHDR_HOP 0
#define GADGET_SE_NEXTHDR_TCP 6
#define GADGET_SE_NEXTHDR_UDP 17
#define GADGET_SE_NEXTHDR_ROUTING 43
#define GADGET_SE_NEXTHDR_FRAGMENT 44
#define GADGET_SE_NEXTHDR_AUTH 51
#define GADGET_SE_NEXTHDR_NONE 59
#define GADGET_SE_NEXTHDR_DEST 60

struct gadget_socket_key {
	__u32 netns;
	__u16 family;
	/* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8 proto;
	/* local port, host byte order */
	__u16 port;
};

#define GADGET_MAX_SOCKETS 16384

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GADGET_MAX_SOCKETS);
	__type(key, struct gadget_socket_key);
	__type(value, struct gadget_socket_value);
} gadget_sockets SEC(".maps");

/* An IPv4 lookup that finds nothing is retried as IPv6: a dual-stack socket
 * (IPV6_V6ONLY off) also receives IPv4 traffic. */
static __always_inline struct gadget_socket_value *
__gadget_socket_lookup_key(struct gadget_socket_key *key)
{
	struct gadget_socket_value *value;

	value = bpf_map_lookup_elem(&gadget_sockets, key);
	if (value || key->family != GADGET_SE_AF_INET)
		return value;

	key->family = GADGET_SE_AF_INET6;
	value = bpf_map_lookup_elem(&gadget_sockets, key);
	if (value && value->ipv6only == 0)
		return value;
	return 0;
}

#ifdef GADGET_TYPE_NETWORKING
/* Looks up the socket a packet belongs to. is_ingress selects the local port:
 * the destination port for received packets, the source port for sent ones.
 * tc programs must say the direction themselves: skb->pkt_type is not
 * reliable there. Expects skb->cb[0] to hold the network namespace inode,
 * as set by the runtime's dispatcher. */
static __always_inline struct gadget_socket_value *
gadget_socket_lookup_with_direction(const struct __sk_buff *skb,
				    __u8 is_ingress)
{
	struct gadget_socket_key key = {};
	__u16 eth_proto;
	__u32 l4_off;
	__u32 port_off;

	key.netns = skb->cb[0];
	if (bpf_skb_load_bytes(skb, 12, &eth_proto, sizeof(eth_proto)) < 0)
		return 0;

	if (eth_proto == bpf_htons(GADGET_SE_ETH_P_IP)) {
		__u8 version_ihl;

		key.family = GADGET_SE_AF_INET;
		if (bpf_skb_load_bytes(skb,
				       GADGET_SE_ETH_HLEN +
					       GADGET_SE_IPV4_PROTOCOL_OFFSET,
				       &key.proto, sizeof(key.proto)) < 0)
			return 0;
		if (bpf_skb_load_bytes(skb, GADGET_SE_ETH_HLEN, &version_ihl,
				       sizeof(version_ihl)) < 0)
			return 0;
		/* IHL counts 32-bit words. */
		l4_off = GADGET_SE_ETH_HLEN + (version_ihl & 0x0f) * 4;
	} else if (eth_proto == bpf_htons(GADGET_SE_ETH_P_IPV6)) {
		key.family = GADGET_SE_AF_INET6;
		if (bpf_skb_load_bytes(skb,
				       GADGET_SE_ETH_HLEN +
					       GADGET_SE_IPV6_NEXTHDR_OFFSET,
				       &key.proto, sizeof(key.proto)) < 0)
			return 0;
		l4_off = GADGET_SE_ETH_HLEN + GADGET_SE_IPV6_HLEN;

		/* Skip up to 6 chained extension headers (ipv6_ext_hdr()). */
#pragma unroll
		for (int i = 0; i < 6; i++) {
			__u8 next, len;

			if (key.proto == GADGET_SE_NEXTHDR_TCP ||
			    key.proto == GADGET_SE_NEXTHDR_UDP)
				break;
			if (bpf_skb_load_bytes(skb, l4_off, &next,
					       sizeof(next)) < 0)
				return 0;
			switch (key.proto) {
			case GADGET_SE_NEXTHDR_FRAGMENT:
				l4_off += 8;
				break;
			case GADGET_SE_NEXTHDR_AUTH:
				if (bpf_skb_load_bytes(skb, l4_off + 1, &len,
						       sizeof(len)) < 0)
					return 0;
				l4_off += 4 * (len + 2);
				break;
			case GADGET_SE_NEXTHDR_HOP:
			case GADGET_SE_NEXTHDR_ROUTING:
			case GADGET_SE_NEXTHDR_DEST:
				if (bpf_skb_load_bytes(skb, l4_off + 1, &len,
						       sizeof(len)) < 0)
					return 0;
				l4_off += 8 * (len + 1);
				break;
			default:
				/* NEXTHDR_NONE or unknown: no TCP/UDP here. */
				return 0;
			}
			key.proto = next;
		}
	} else {
		return 0;
	}

	if (key.proto == GADGET_SE_IPPROTO_TCP)
		port_off = is_ingress ? GADGET_SE_TCPHDR_DEST_OFFSET :
					GADGET_SE_TCPHDR_SOURCE_OFFSET;
	else if (key.proto == GADGET_SE_IPPROTO_UDP)
		port_off = is_ingress ? GADGET_SE_UDPHDR_DEST_OFFSET :
					GADGET_SE_UDPHDR_SOURCE_OFFSET;
	else
		return 0;

	if (bpf_skb_load_bytes(skb, l4_off + port_off, &key.port,
			       sizeof(key.port)) < 0)
		return 0;
	key.port = bpf_ntohs(key.port);

	return __gadget_socket_lookup_key(&key);
}

/* Socket filters: received packets have pkt_type PACKET_HOST. Do not use in
 * tc programs (see gadget_socket_lookup_with_direction()). */
static __always_inline struct gadget_socket_value *
gadget_socket_lookup(const struct __sk_buff *skb)
{
	return gadget_socket_lookup_with_direction(
		skb, skb->pkt_type == GADGET_SE_PACKET_HOST);
}
#endif /* GADGET_TYPE_NETWORKING */

#ifdef GADGET_TYPE_TRACING
/* Looks up a kernel socket, netns being the inode of its network namespace.
 * No dual-stack retry: the socket's own family is the key. */
static __always_inline struct gadget_socket_value *
gadget_socket_lookup(const struct sock *sk, __u32 netns)
{
	struct gadget_socket_key key = {};
	struct inet_sock *inet = (struct inet_sock *)sk;
	__u16 sport = 0;

	key.netns = netns;
	key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	key.proto = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (key.proto != GADGET_SE_IPPROTO_TCP &&
	    key.proto != GADGET_SE_IPPROTO_UDP)
		return 0;
	BPF_CORE_READ_INTO(&sport, inet, inet_sport);
	key.port = bpf_ntohs(sport);

	return bpf_map_lookup_elem(&gadget_sockets, &key);
}
#endif /* GADGET_TYPE_TRACING */

/* Copies the owner recorded by the socket enricher into a gadget_process.
 * Leaves p untouched when value is NULL (socket unknown). */
static __always_inline void
gadget_process_populate_from_socket(const struct gadget_socket_value *value,
				    struct gadget_process *p)
{
	if (!value)
		return;

	__builtin_memcpy(p->comm, value->task, sizeof(p->comm));
	p->pid = value->pid_tgid >> 32;
	p->tid = (__u32)value->pid_tgid;
	p->mntns_id = value->mntns;
	p->creds.uid = (__u32)value->uid_gid;
	p->creds.gid = value->uid_gid >> 32;
	__builtin_memcpy(p->parent.comm, value->ptask, sizeof(p->parent.comm));
	p->parent.pid = value->ppid;
	p->parent.tid = value->ptid;
}

#endif /* SOCKETS_MAP_H */

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/tcp_stream.h - plumbing for gadgets that read application protocols
 * carried over TCP (DNS over TCP, HTTP, ...), with sock_ops + sk_skb + sk_msg.
 *
 * Including this header adds two programs to the gadget:
 *   gadget_tcp_stream_sockops  SEC("sockops"): on connect and on
 *       establishment, records the connection (4-tuple) keyed by socket
 *       cookie and by tuple, and puts established sockets into
 *       gadget_sockhash. The runtime attaches it to the cgroup v2 root.
 *   gadget_tcp_stream_connect  SEC("fexit/tcp_connect"): records the process
 *       that called connect() (client side only) into the connection.
 * The gadget adds its own SEC("sk_skb/stream_verdict") program (received
 * data; optionally "sk_skb/stream_parser" to get whole messages) and/or
 * SEC("sk_msg") program (sent data); the runtime attaches them to
 * gadget_sockhash.
 *
 * Define gadget_tcp_stream_should_track(skops) before including to track
 * only some sockets (e.g. by port); the default tracks every TCP socket.
 *
 * API:
 *   struct gadget_tcp_stream_conn { version, sport, dport, saddr/daddr
 *       (v4 or v6, network order), proc }   ports in host order
 *   struct gadget_tcp_stream_tuple
 *   maps: gadget_sockhash (SOCKHASH), gadget_tcp_stream_conns (LRU cookie ->
 *       conn), gadget_tcp_stream_tuples (LRU tuple -> conn), 65536 each
 *   GADGET_TCP_STREAM_BUILD_TUPLE(ctx, tuple)   from bpf_sock_ops or sk_msg_md
 *   gadget_tcp_stream_lookup(skb)       connection of an sk_skb packet
 *   gadget_tcp_stream_msg_lookup(msg)   connection of an sk_msg message
 */

#ifndef __GADGET_TCP_STREAM_H
#define __GADGET_TCP_STREAM_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include <gadget/types.h>
#include <gadget/common.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

struct gadget_tcp_stream_conn {
	__u8 version; /* 4 or 6 */
	__u8 pad[3];
	__u16 sport; /* local, host order */
	__u16 dport; /* remote, host order */
	union {
		__u32 saddr_v4;
		__u8 saddr_v6[16];
	};
	union {
		__u32 daddr_v4;
		__u8 daddr_v6[16];
	};
	struct gadget_process proc; /* zero on the passive (server) side */
};

struct gadget_tcp_stream_tuple {
	__u8 version;
	__u8 pad[3];
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} gadget_sockhash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct gadget_tcp_stream_conn);
} gadget_tcp_stream_conns SEC(".maps");

/* A full copy of the connection, not a cookie: the send path then needs one
 * lookup in one LRU map, which cannot disagree with another map's eviction. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct gadget_tcp_stream_tuple);
	__type(value, struct gadget_tcp_stream_conn);
} gadget_tcp_stream_tuples SEC(".maps");

/* bpf_sock_ops and sk_msg_md name these fields alike: local_port in host
 * order, remote_port network order in the high half of a u32, addresses in
 * network order. Using the same code on both sides makes the keys match. */
#define GADGET_TCP_STREAM_BUILD_TUPLE(ctx, t)                                  \
	do {                                                                   \
		__builtin_memset(&(t), 0, sizeof(t));                          \
		(t).sport = (__u16)(ctx)->local_port;                          \
		(t).dport = (__u16)bpf_ntohl((ctx)->remote_port);              \
		if ((ctx)->family == AF_INET6) {                               \
			__u32 *__s = (__u32 *)(t).saddr;                       \
			__u32 *__d = (__u32 *)(t).daddr;                       \
			(t).version = 6;                                       \
			__s[0] = (ctx)->local_ip6[0];                          \
			__s[1] = (ctx)->local_ip6[1];                          \
			__s[2] = (ctx)->local_ip6[2];                          \
			__s[3] = (ctx)->local_ip6[3];                          \
			__d[0] = (ctx)->remote_ip6[0];                         \
			__d[1] = (ctx)->remote_ip6[1];                         \
			__d[2] = (ctx)->remote_ip6[2];                         \
			__d[3] = (ctx)->remote_ip6[3];                         \
		} else {                                                       \
			(t).version = 4;                                       \
			*(__u32 *)(t).saddr = (ctx)->local_ip4;                \
			*(__u32 *)(t).daddr = (ctx)->remote_ip4;               \
		}                                                              \
	} while (0)

#ifndef gadget_tcp_stream_should_track
#define gadget_tcp_stream_should_track(skops) (1)
#endif

static __always_inline void
gadget_tcp_stream_fill_conn(struct bpf_sock_ops *skops,
			    struct gadget_tcp_stream_conn *conn)
{
	conn->sport = (__u16)skops->local_port;
	conn->dport = (__u16)bpf_ntohl(skops->remote_port);
	if (skops->family == AF_INET6) {
		__u32 *s = (__u32 *)conn->saddr_v6;
		__u32 *d = (__u32 *)conn->daddr_v6;

		conn->version = 6;
		/* Word by word: the verifier allows only fixed-offset scalar
		 * loads from a sock_ops context. */
		s[0] = skops->local_ip6[0];
		s[1] = skops->local_ip6[1];
		s[2] = skops->local_ip6[2];
		s[3] = skops->local_ip6[3];
		d[0] = skops->remote_ip6[0];
		d[1] = skops->remote_ip6[1];
		d[2] = skops->remote_ip6[2];
		d[3] = skops->remote_ip6[3];
	} else {
		conn->version = 4;
		conn->saddr_v4 = skops->local_ip4;
		conn->daddr_v4 = skops->remote_ip4;
	}
}

/* The tuple key of a connection, exactly as GADGET_TCP_STREAM_BUILD_TUPLE
 * would build it (the address unions are zero beyond an IPv4 address). */
static __always_inline void
gadget_tcp_stream_conn_to_tuple(const struct gadget_tcp_stream_conn *conn,
				struct gadget_tcp_stream_tuple *t)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->version = conn->version;
	t->sport = conn->sport;
	t->dport = conn->dport;
	__builtin_memcpy(t->saddr, conn->saddr_v6, sizeof(t->saddr));
	__builtin_memcpy(t->daddr, conn->daddr_v6, sizeof(t->daddr));
}

static __always_inline void gadget_tcp_stream_record(struct bpf_sock_ops *skops,
						     __u64 cookie)
{
	struct gadget_tcp_stream_conn conn = {};
	struct gadget_tcp_stream_tuple t;

	gadget_tcp_stream_fill_conn(skops, &conn);
	bpf_map_update_elem(&gadget_tcp_stream_conns, &cookie, &conn, BPF_ANY);
	GADGET_TCP_STREAM_BUILD_TUPLE(skops, t);
	bpf_map_update_elem(&gadget_tcp_stream_tuples, &t, &conn, BPF_ANY);
}

SEC("sockops")
int gadget_tcp_stream_sockops(struct bpf_sock_ops *skops)
{
	__u64 cookie;

	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 0;
	if (!gadget_tcp_stream_should_track(skops))
		return 0;

	cookie = bpf_get_socket_cookie(skops);
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* Client side: record now; fexit/tcp_connect adds the process
		 * (sock_ops may not call bpf_get_current_*()). */
		gadget_tcp_stream_record(skops, cookie);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* Server side has no connect callback: record here. */
		if (!bpf_map_lookup_elem(&gadget_tcp_stream_conns, &cookie))
			gadget_tcp_stream_record(skops, cookie);
		bpf_sock_hash_update(skops, &gadget_sockhash, &cookie,
				     BPF_NOEXIST);
		break;
	default:
		break;
	}
	return 0;
}

SEC("fexit/tcp_connect")
int BPF_PROG(gadget_tcp_stream_connect, struct sock *sk, int ret)
{
	struct gadget_tcp_stream_conn *conn;
	struct gadget_tcp_stream_tuple t;
	__u64 cookie;

	if (ret != 0)
		return 0;
	cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (cookie == 0)
		return 0;
	conn = bpf_map_lookup_elem(&gadget_tcp_stream_conns, &cookie);
	if (!conn)
		return 0; /* not tracked */

	gadget_process_populate(&conn->proc);
	/* Keep the tuple-indexed copy in step. */
	gadget_tcp_stream_conn_to_tuple(conn, &t);
	bpf_map_update_elem(&gadget_tcp_stream_tuples, &t, conn, BPF_ANY);
	return 0;
}

static __always_inline struct gadget_tcp_stream_conn *
gadget_tcp_stream_lookup(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);

	return bpf_map_lookup_elem(&gadget_tcp_stream_conns, &cookie);
}

/* sk_msg programs cannot read the socket cookie: look up by tuple. */
static __always_inline struct gadget_tcp_stream_conn *
gadget_tcp_stream_msg_lookup(struct sk_msg_md *msg)
{
	struct gadget_tcp_stream_tuple t;

	GADGET_TCP_STREAM_BUILD_TUPLE(msg, t);
	return bpf_map_lookup_elem(&gadget_tcp_stream_tuples, &t);
}

#endif /* __GADGET_TCP_STREAM_H */

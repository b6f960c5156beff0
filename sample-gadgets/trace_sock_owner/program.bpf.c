// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * trace_sock_owner - TCP state changes, attributed to the socket's owner.
 *
 * sock/inet_sock_set_state often fires in softirq context (an incoming
 * SYN-ACK, FIN or RST), where the current task is whoever happened to run.
 * So the event's process does not come from the current task: it comes from
 * the socket enricher, the map `gadget_sockets` that the runtime fills with
 * the process that created or bound each socket (<gadget/sockets-map.h>,
 * GADGET_TYPE_TRACING lookups by struct sock).
 *
 * A socket the enricher does not know leaves `owner` empty; with a filter set
 * (pid, comm, container, ...) such events are dropped, as their owner cannot
 * be checked.
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define GADGET_TYPE_TRACING
#include <gadget/buffer.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/sockets-map.h>
#include <gadget/sockets.h>
#include <gadget/types.h>

#define IPPROTO_TCP_NUM 6

/* Shown by name; the values of include/net/tcp_states.h (lower case, so as
 * not to clash with vmlinux.h's TCP_ESTABLISHED, ...). */
enum tcp_state_name {
	tcp_established = 1,
	tcp_syn_sent,
	tcp_syn_recv,
	tcp_fin_wait1,
	tcp_fin_wait2,
	tcp_time_wait,
	tcp_close,
	tcp_close_wait,
	tcp_last_ack,
	tcp_listen,
	tcp_closing,
	tcp_new_syn_recv,
};

struct event {
	gadget_timestamp timestamp_raw;
	/* The socket's owner, from the socket enricher. */
	struct gadget_process owner;
	gadget_netns_id netns_id;
	struct gadget_l4endpoint_t src;
	struct gadget_l4endpoint_t dst;
	enum tcp_state_name oldstate_raw;
	enum tcp_state_name newstate_raw;
	/* 1 when the enricher knew the socket. */
	__u8 enriched;
};

GADGET_TRACER_MAP(events, 1024 * 256);

GADGET_TRACER(tcpstate, events, event);

SEC("tracepoint/sock/inet_sock_set_state")
int ig_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct gadget_socket_value *owner;
	const struct sock *sk;
	struct event *event;
	__u32 netns;

	if (ctx->protocol != IPPROTO_TCP_NUM)
		return 0;

	sk = (const struct sock *)ctx->skaddr;
	netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	owner = gadget_socket_lookup(sk, netns);
	if (gadget_should_discard_data_by_skb(owner))
		return 0;

	event = gadget_reserve_buf(&events, sizeof(*event));
	if (!event)
		return 0;

	__builtin_memset(event, 0, sizeof(*event));
	event->timestamp_raw = bpf_ktime_get_boot_ns();
	event->netns_id = netns;
	event->oldstate_raw = ctx->oldstate;
	event->newstate_raw = ctx->newstate;
	event->enriched = owner != NULL;
	gadget_process_populate_from_socket(owner, &event->owner);
	gadget_l4endpoints_from_sock(&event->src, &event->dst, sk);

	gadget_submit_buf(ctx, &events, event, sizeof(*event));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

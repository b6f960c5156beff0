/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/packetfilter.h - a pcap-style packet filter the runtime fills in.
 *
 * GADGET_PF(name) defines a non-inlined function gadget_pf_<name> that
 * accepts every packet. At load time the runtime replaces its body with the
 * user's filter expression (tcpdump syntax) compiled from classic BPF to
 * eBPF. Its three leading skb arguments reserve registers R1-R3 for the
 * compiled filter; keep the signature.
 *
 * API:
 *   GADGET_PF(name)   define a filter (name may be empty: GADGET_PF())
 *   gadget_pf_matches(skb, data, data_end)         the unnamed filter
 *   gadget_pf_matches(name, skb, data, data_end)   a named one
 */

#ifndef PACKETFILTER_H
#define PACKETFILTER_H

#define GADGET_PF(name)                                                        \
	static __noinline bool gadget_pf_##name(void *_skb, void *__skb,       \
						void *___skb, void *data,      \
						void *data_end)                \
	{                                                                      \
		return data != data_end && _skb == __skb && __skb == ___skb;   \
	}

/* Pick the implementation by argument count: 3 = unnamed, 4 = named. */
#define __GADGET_PF_NARGS(_1, _2, _3, _4, n, ...) n
#define __GADGET_PF_COUNT(...) __GADGET_PF_NARGS(__VA_ARGS__, 4, 3, 2, 1)
#define __GADGET_PF_MATCHES_1(a)                                               \
	_Static_assert(0, "gadget_pf_matches: takes 3 or 4 arguments")
#define __GADGET_PF_MATCHES_2(a, b)                                            \
	_Static_assert(0, "gadget_pf_matches: takes 3 or 4 arguments")
#define __GADGET_PF_MATCHES_3(skb, data, data_end)                             \
	gadget_pf_matches_impl(, skb, data, data_end)
#define __GADGET_PF_MATCHES_4(name, skb, data, data_end)                       \
	gadget_pf_matches_impl(name, skb, data, data_end)
#define __GADGET_PF_PICK2(n) __GADGET_PF_MATCHES_##n
#define __GADGET_PF_PICK(n) __GADGET_PF_PICK2(n)

#define gadget_pf_matches(...)                                                 \
	__GADGET_PF_PICK(__GADGET_PF_COUNT(__VA_ARGS__))(__VA_ARGS__)

#define gadget_pf_matches_impl(name, skb, data, data_end)                      \
	gadget_pf_##name(skb, skb, skb, data, data_end)

#endif /* PACKETFILTER_H */

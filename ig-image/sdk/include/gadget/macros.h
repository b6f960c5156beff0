/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/macros.h - discovery macros of the gadget C SDK.
 *
 * Tools never look at ELF section names to learn what a gadget offers.
 * Instead every feature is announced by an unused global variable whose BTF
 * type is "pointer -> const -> void" and whose name encodes the feature:
 *
 *     <prefix><part1>___<part2>___...
 *
 * (parts are separated by three underscores). A loader or build tool walks the
 * BTF VARs of the object and parses these names. The variables carry no data
 * and are never referenced by the program.
 */

#ifndef __MACROS_H
#define __MACROS_H

/* Declares one marker variable. Kept global (not static) so that it survives
 * in the object's BTF with global linkage. */
#define __GADGET_MARKER(ident) const void *ident __attribute__((unused));

/*
 * GADGET_TRACER(name, map, event_struct) - a streaming data source <name>.
 * Records of type `struct event_struct` are read from ring buffer (or perf
 * event array) <map>. The second declaration makes sure the struct is emitted
 * into BTF even when the program only uses it through casts.
 */
#define GADGET_TRACER(name, map, event_struct)                                 \
	__GADGET_MARKER(gadget_tracer_##name##___##map##___##event_struct)     \
	const struct event_struct *__gadget_tracer_type_##name                 \
		__attribute__((unused));

/*
 * GADGET_PARAM(var) - exposes the `const volatile` global <var> (which must
 * live in .rodata) as a user parameter. The parameter key defaults to the
 * variable name and can be changed under params.ebpf.<var> in gadget.yaml.
 */
#define GADGET_PARAM(var) __GADGET_MARKER(gadget_param_##var)

/*
 * GADGET_ITER(name, struct, prog1[, prog2[, prog3]]) - a snapshot data source
 * <name> whose rows (`struct <struct>`) are written by one to three
 * `iter/...` programs with bpf_seq_write().
 */
#define __GADGET_ITER_1(base, p1) __GADGET_MARKER(base##___##p1)
#define __GADGET_ITER_2(base, p1, p2) __GADGET_MARKER(base##___##p1##___##p2)
#define __GADGET_ITER_3(base, p1, p2, p3)                                      \
	__GADGET_MARKER(base##___##p1##___##p2##___##p3)
#define __GADGET_ITER_PICK(_1, _2, _3, which, ...) which

#define GADGET_ITER(name, type, ...)                                           \
	__GADGET_ITER_PICK(__VA_ARGS__, __GADGET_ITER_3, __GADGET_ITER_2,      \
			   __GADGET_ITER_1, __gadget_unused)                   \
	(gadget_iter_##name##___##type, __VA_ARGS__)                           \
	const struct type *unusedevent_##name##___##type                       \
		__attribute__((unused));

/* GADGET_SNAPSHOTTER - deprecated spelling of GADGET_ITER. */
#define GADGET_SNAPSHOTTER(name, type, ...) GADGET_ITER(name, type, __VA_ARGS__)

/*
 * GADGET_MAPITER(name, map) - a periodic data source <name> that reads every
 * entry of hash map <map>. The map's key and value must be structs (their
 * fields, key first, become the data source fields) whose sizes equal the
 * map's key and value sizes.
 */
#define GADGET_MAPITER(name, map) __GADGET_MARKER(gadget_mapiter_##name##___##map)

/*
 * GADGET_ITER_TARGET_MAP(prog, map) - the `iter/bpf_map_elem` program <prog>
 * iterates over map <map>.
 */
#define GADGET_ITER_TARGET_MAP(prog, map)                                      \
	__GADGET_MARKER(gadget_mapelem_iter_target_##prog##___##map)

/*
 * GADGET_SK_TARGET_MAP(prog, map) - the sk_skb / sk_msg program <prog> is
 * attached to the sockmap or sockhash <map>.
 */
#define GADGET_SK_TARGET_MAP(prog, map)                                        \
	__GADGET_MARKER(gadget_sk_prog_target_##prog##___##map)

#endif /* __MACROS_H */

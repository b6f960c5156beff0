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

/* GADGET_ITER(name, type) without programs: the newer spelling, where each
 * program says it belongs to the iterator with GADGET_ITER_MEMBER(name). The
 * element struct is announced by a decl tag "ig:iter_type:<name>___<type>". */
#define __GADGET_ITER_TYPE_TAG(name, type)                                     \
	const struct type *__ig_iter_type_##name __attribute__((               \
		unused, btf_decl_tag("ig:iter_type:" #name "___" #type)));
#define __GADGET_ITER_ARGS2(name, type) __GADGET_ITER_TYPE_TAG(name, type)
#define __GADGET_ITER_WITH(which, name, type, ...)                             \
	which(gadget_iter_##name##___##type, __VA_ARGS__)                      \
	const struct type *unusedevent_##name##___##type                       \
		__attribute__((unused));
#define __GADGET_ITER_ARGS3(name, type, p1)                                    \
	__GADGET_ITER_WITH(__GADGET_ITER_1, name, type, p1)
#define __GADGET_ITER_ARGS4(name, type, p1, p2)                                \
	__GADGET_ITER_WITH(__GADGET_ITER_2, name, type, p1, p2)
#define __GADGET_ITER_ARGS5(name, type, p1, p2, p3)                            \
	__GADGET_ITER_WITH(__GADGET_ITER_3, name, type, p1, p2, p3)
#define __GADGET_ITER_NARGS(_1, _2, _3, _4, _5, n, ...) n
#define __GADGET_ITER_CAT2(a, b) a##b
#define __GADGET_ITER_CAT(a, b) __GADGET_ITER_CAT2(a, b)

#define GADGET_ITER(...)                                                       \
	__GADGET_ITER_CAT(__GADGET_ITER_ARGS,                                  \
			  __GADGET_ITER_NARGS(__VA_ARGS__, 5, 4, 3, 2, 1))     \
	(__VA_ARGS__)

/* GADGET_ITER_MEMBER(name) - put on an `iter/` program's definition, right
 * before its return type: the program feeds iterator <name> (decl tag
 * "ig:iter:<name>" on the function). */
#define GADGET_ITER_MEMBER(name) __attribute__((btf_decl_tag("ig:iter:" #name)))

/* GADGET_SNAPSHOTTER - deprecated spelling of GADGET_ITER. */
#define GADGET_SNAPSHOTTER(...) GADGET_ITER(__VA_ARGS__)

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

/*
 * Load-time expressions of newer upstream runtimes. Each attaches a BTF decl
 * tag "ig:<kind>:..." holding an expression (expr-lang, over params.*,
 * kallsyms.* and earlier defines) that upstream's runtime evaluates when it
 * loads the gadget. The object builds and loads without them being
 * evaluated; ig-image's minimal runtime ignores them (docs/authoring.md).
 *
 *   GADGET_ASSERT(name, "expr")       file scope: refuse to load when false
 *   GADGET_EXPR_DEFINE(name, "expr")  file scope: a named value for later
 *                                     expressions
 *   GADGET_MAP_ONLY_IF("expr")        on a map: create it only when true
 *   GADGET_PROG_ATTACH_TO("expr")     on a program, before its return type:
 *                                     the kernel symbol to attach to
 */
#define __ig_tag(s) __attribute__((btf_decl_tag("ig:" s)))
#define GADGET_MAP_ONLY_IF(expr) __ig_tag("only_if:" expr)
#define GADGET_PROG_ATTACH_TO(expr) __ig_tag("attach_to:" expr)
#define GADGET_ASSERT(name, expr)                                              \
	const int __ig_assert_##name __attribute__((                           \
		unused, btf_decl_tag("ig:assert:" #name ":" expr))) = 0;
#define GADGET_EXPR_DEFINE(name, expr)                                         \
	const int __ig_define_##name __attribute__((                           \
		unused, btf_decl_tag("ig:define:" #name ":" expr))) = 0;

#endif /* __MACROS_H */

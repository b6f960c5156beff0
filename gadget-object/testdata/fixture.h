/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal, self-contained declarations for the gadget-object test fixtures.
 * No vmlinux.h, no libbpf headers and no gadget SDK headers: the fixtures must
 * build on any machine with clang, and must not change when those headers do.
 * The macros spell the same BTF shapes as libbpf's and the gadget SDK's.
 */
#ifndef FIXTURE_H
#define FIXTURE_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERF_EVENT_ARRAY 4
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_RINGBUF 27

#define TASK_COMM_LEN 16

/* gadget types (names matter, see gadget-sdk.md section 2) */
typedef __u32 gadget_pid;
typedef __u32 gadget_tid;
typedef __u32 gadget_ppid;
typedef __u32 gadget_uid;
typedef __u32 gadget_gid;
typedef __u64 gadget_mntns_id;
typedef __u64 gadget_timestamp;
typedef char gadget_comm;
typedef char gadget_pcomm;

struct gadget_creds {
	gadget_uid uid;
	gadget_gid gid;
};

struct gadget_parent {
	gadget_pcomm comm[TASK_COMM_LEN];
	gadget_ppid pid;
};

struct gadget_process {
	gadget_comm comm[TASK_COMM_LEN];
	gadget_pid pid;
	gadget_tid tid;
	gadget_mntns_id mntns_id;
	struct gadget_creds creds;
	struct gadget_parent parent;
};

/* discovery macros (gadget-sdk.md section 1) */
#define GADGET_TRACER(name, map, type)                                        \
	const void *gadget_tracer_##name##___##map##___##type                 \
		__attribute__((unused));                                      \
	const struct type *__gadget_tracer_type_##name __attribute__((unused))
#define GADGET_PARAM(var) const void *gadget_param_##var __attribute__((unused))
#define GADGET_MAPITER(name, map)                                              \
	const void *gadget_mapiter_##name##___##map __attribute__((unused))
#define GADGET_ITER1(name, type, p1)                                           \
	const struct type *unusedevent_##name##___##type                      \
		__attribute__((unused));                                      \
	const void *gadget_iter_##name##___##type##___##p1 __attribute__((unused))
#define GADGET_ITER2(name, type, p1, p2)                                       \
	const struct type *unusedevent_##name##___##type                      \
		__attribute__((unused));                                      \
	const void *gadget_iter_##name##___##type##___##p1##___##p2           \
		__attribute__((unused))
#define GADGET_SNAPSHOTTER1(name, type, p1)                                    \
	const struct type *unusedevent_##name##___##type                      \
		__attribute__((unused));                                      \
	const void *gadget_snapshotter_##name##___##type##___##p1             \
		__attribute__((unused))

static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size,
				  __u64 flags) = (void *)130;

#endif

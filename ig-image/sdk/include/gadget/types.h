/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/types.h - types whose names tell the runtime how to show a field.
 *
 * A field declared with one of the gadget_* typedefs below is formatted and
 * enriched by the runtime according to the template of the same name without
 * the `gadget_` prefix (a gadget_uid gets a user name, a gadget_errno its
 * symbolic name, a gadget_timestamp a wall-clock time, ...). The C types are
 * part of the contract: keep their sizes.
 *
 * Everything here only needs the fixed-width __u8..__u64 types. When vmlinux.h
 * was included first they come from there; otherwise this header pulls in
 * <linux/types.h> and <stdbool.h> so it also works for programs that do not
 * use vmlinux.h (kernel-specific helpers live in common.h and friends, not
 * here).
 */

#ifndef __TYPES_H
#define __TYPES_H

#if !defined(__VMLINUX_H__)
#include <linux/types.h>
#include <stdbool.h>
#endif

/* vmlinux.h of recent kernels has TASK_COMM_LEN as an enum constant; the
 * macro below has the same value. */
#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

/* Namespaces: inode numbers, resolved to containers by the runtime. */
typedef __u64 gadget_mntns_id;
typedef __u32 gadget_netns_id;

/* Nanoseconds since boot, as returned by bpf_ktime_get_boot_ns(). */
typedef __u64 gadget_timestamp;

/* Processes and threads, in user-space terms (pid = kernel tgid). */
typedef __u32 gadget_pid;
typedef __u32 gadget_ppid;
typedef __u32 gadget_tid;
typedef __u32 gadget_ptid;
/* Used as char name[TASK_COMM_LEN]. */
typedef char gadget_comm;
typedef char gadget_pcomm;

/* Credentials: a user / group name is added next to the number. */
typedef __u32 gadget_uid;
typedef __u32 gadget_gid;

/* Shown by name: signal, errno (positive value) and syscall number. */
typedef __u32 gadget_signal;
typedef __u32 gadget_errno;
typedef __u64 gadget_syscall;

/* open(2)-style mode and flags, decoded to symbolic names. */
typedef __u32 gadget_file_mode;
typedef __u32 gadget_file_flags;

/* Quantities. */
typedef __u64 gadget_bytes;
typedef __u64 gadget_duration;

/* Id of a kernel stack saved in the kernel stack map. */
typedef __u32 gadget_kernel_stack;

/* Metrics: counters, gauges and histogram slots. */
typedef __u32 gadget_counter__u32;
typedef __u64 gadget_counter__u64;
typedef __u32 gadget_gauge__u32;
typedef __u64 gadget_gauge__u64;
typedef __u32 gadget_histogram_slot__u32;
typedef __u64 gadget_histogram_slot__u64;

/* An IPv4 or IPv6 address (network byte order). */
union gadget_ip_addr_t {
	__u8 v6[16];
	unsigned __int128 v6_raw;
	__u32 v4;
};

/* An L3 endpoint: address plus IP version (4 or 6). */
struct gadget_l3endpoint_t {
	union gadget_ip_addr_t addr_raw;
	__u8 version;
};

/* An L4 endpoint: address, port in host byte order, IP protocol number and
 * IP version (4 or 6). */
struct gadget_l4endpoint_t {
	union gadget_ip_addr_t addr_raw;
	__u16 port;
	__u16 proto_raw;
	__u8 version;
};

struct gadget_creds {
	gadget_uid uid;
	gadget_gid gid;
};

/* The real parent: pid is its thread-group id, tid its thread id. */
struct gadget_parent {
	gadget_pcomm comm[TASK_COMM_LEN];
	gadget_ppid pid;
	gadget_ptid tid;
};

/* The process an event belongs to; filled by gadget_process_populate(). */
struct gadget_process {
	gadget_comm comm[TASK_COMM_LEN];
	gadget_pid pid;
	gadget_tid tid;
	gadget_mntns_id mntns_id;
	struct gadget_creds creds;
	struct gadget_parent parent;
};

/*
 * A user-space stack, symbolized later by the runtime. Set inode to 0 when no
 * stack was collected.
 */
struct gadget_user_stack {
	/* Identity of the executable the stack belongs to. */
	__u64 inode;
	__u32 major;
	__u32 minor;
	__u64 mtime_sec;
	__u32 mtime_nsec;
	/* Hash of the address-space layout (mm, start of code and stack), so
	 * that the runtime can tell processes of one executable apart. */
	__u32 base_addr_hash;
	/* Id returned by bpf_get_stackid() for the user stack map. */
	__u32 stack_id;
	/* Thread and process ids as seen from the initial pid namespace
	 * (level 0) and from the pid namespace one level below (level 1),
	 * with the inode numbers of those namespaces. */
	__u32 pid_level0;
	__u32 tgid_level0;
	__u32 pidns_level0;
	__u32 pid_level1;
	__u32 pidns_level1;
	/* Correlation id of an OpenTelemetry profiler stack, 0 if none. */
	__u64 otel_correlation_id;
	/* When the stack was taken (bpf_ktime_get_boot_ns()). */
	__u64 boot_timestamp;
};

/*
 * The socket enricher's record about a socket: which process owns it. The
 * runtime maintains the map `gadget_sockets` (see sockets-map.h) and gives
 * this type in its own BTF; the layout there may differ (optional fields are
 * sized at run time), so every access is a CO-RE relocation
 * (preserve_access_index) resolved against the runtime's definition, and
 * the layout below is only what the compiler sees.
 */
#ifndef GADGET_SOCKET_PATH_MAX
#define GADGET_SOCKET_PATH_MAX 512
#endif

struct gadget_socket_value {
	__u64 mntns;
	__u64 pid_tgid;
	__u64 uid_gid;
	char task[TASK_COMM_LEN];
	char ptask[TASK_COMM_LEN];
	__u64 sock;
	__u64 deletion_timestamp;
	char cwd[GADGET_SOCKET_PATH_MAX];
	char exepath[GADGET_SOCKET_PATH_MAX];
	__u32 ppid;
	__u32 ptid;
	char ipv6only;
} __attribute__((preserve_access_index));

/* The name this struct had in earlier upstream SDKs. */
#define sockets_value gadget_socket_value

#endif /* __TYPES_H */

// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * Fixture for runtime-min's decoder unit tests: one tracer whose event struct
 * uses every kind of field the decoder handles, and one map iterator.
 * Never loaded; only its BTF is read. Rebuild with:
 *   runtime-min/testdata/build-fixture
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

#include <gadget/buffer.h>
#include <gadget/macros.h>
#include <gadget/types.h>

enum fix_op {
	FIX_READ = 1,
	FIX_WRITE = 2,
};

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	gadget_errno error_raw;
	gadget_errno err;
	gadget_file_flags flags_raw;
	gadget_file_mode mode_raw;
	gadget_signal sig;
	gadget_syscall syscall_raw;
	struct gadget_l4endpoint_t dst;
	struct gadget_l3endpoint_t src;
	enum fix_op op;
	bool ok;
	char name[8];
	__u8 bytes[3];
	__s16 neg;
	unsigned int bf1 : 3, bf2 : 5;
	int sbf : 4;
	__u32 __secret;
	struct {
		int x;
	} __private;
	union {
		__u32 a;
		__u16 b;
	} u;
	__u64 skipme;
};

GADGET_TRACER_MAP(events, 4096);
GADGET_TRACER(ev, events, event);

struct fix_key {
	gadget_pid pid;
};

struct fix_val {
	gadget_bytes bytes;
	gadget_comm comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct fix_key);
	__type(value, struct fix_val);
} stats SEC(".maps");

GADGET_MAPITER(stats, stats);

SEC("tracepoint/syscalls/sys_enter_getpid")
int fixture(void *ctx)
{
	struct event *e = gadget_reserve_buf(&events, sizeof(*e));

	if (!e)
		return 0;
	gadget_submit_buf(ctx, &events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: Apache-2.0 */
/* A well-formed gadget exercising every discovery macro and many BTF kinds. */
#include "fixture.h"

enum op_kind { OP_READ = 0, OP_WRITE = 1, OP_NEG = -1 };
enum big_kind { BIG_SMALL = 1, BIG_HUGE = 0xfffffffff0ULL };

union addr {
	__u8 v6[16];
	__u32 v4;
};

struct event {
	gadget_timestamp timestamp_raw;
	struct gadget_process proc;
	__u32 flags_raw;
	int error;
	enum op_kind op;
	unsigned int a : 3, b : 5;
	signed int c : 4;
	union addr addr_raw;
	union {
		__u32 anon_u32;
		__u16 anon_u16;
	};
	char fname[64];
	__u8 __pad[3];
	__u32 matrix[2][3];
	_Bool flag;
	double ratio;
	const volatile __u64 cv;
	void *ptr;
	enum big_kind big;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost_samples SEC(".maps");

GADGET_TRACER(exec, events, event);

/* map iterator */
struct counts_key {
	gadget_pid pid;
	__u32 cpu;
};
struct counts_value {
	__u64 count;
	__u64 bytes;
};
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct counts_key);
	__type(value, struct counts_value);
} counts SEC(".maps");
GADGET_MAPITER(counters, counts);

/* iterators */
struct proc_entry {
	gadget_comm comm[TASK_COMM_LEN];
	gadget_pid pid;
};
GADGET_ITER2(procs, proc_entry, dump_tasks, dump_files);
GADGET_SNAPSHOTTER1(socks, proc_entry, dump_socks);

/* params */
struct cfg {
	unsigned int a : 3, b : 5;
	signed int c : 4;
	__u16 port;
	__s8 neg;
};
const volatile gadget_pid targ_pid = 42;
const volatile char targ_comm[TASK_COMM_LEN] = "bash";
const volatile _Bool targ_flag = 0;
const volatile struct cfg cfg = { .a = 5, .b = 17, .c = -3, .port = 0x1234, .neg = -7 };
const volatile __u32 events_max_entries = 0;
GADGET_PARAM(targ_pid);
GADGET_PARAM(targ_comm);
GADGET_PARAM(targ_flag);
GADGET_PARAM(cfg);

SEC("tracepoint/syscalls/sys_enter_execve")
int trace_exec(void *ctx)
{
	struct event e = {};
	e.error = targ_pid + cfg.port;
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	return 0;
}

SEC("raw_tp/sched_switch") int raw_prog(void *ctx) { return 0; }
SEC("tp_btf/sched_process_fork") int btf_prog(void *ctx) { return 0; }
SEC("kprobe/do_sys_openat2") int kprobe_prog(void *ctx) { return 0; }
SEC("kretprobe/do_sys_openat2") int kretprobe_prog(void *ctx) { return 0; }
SEC("kprobe/gadget_program_disabled") int disabled_prog(void *ctx) { return 0; }
SEC("fentry/vfs_read") int fentry_prog(void *ctx) { return 0; }
SEC("fexit/vfs_read") int fexit_prog(void *ctx) { return 0; }
SEC("lsm/file_open") int lsm_prog(void *ctx) { return 0; }
SEC("iter/task") int dump_tasks(void *ctx) { return 0; }
SEC("iter/task_file") int dump_files(void *ctx) { return 0; }
SEC("iter/tcp") int dump_socks(void *ctx) { return 0; }
SEC("perf_event") int perf_prog(void *ctx) { return 0; }
SEC("uprobe//bin/bash:readline") int uprobe_prog(void *ctx) { return 0; }
SEC("uretprobe//bin/bash:readline") int uretprobe_prog(void *ctx) { return 0; }
SEC("usdt/libc:setjmp") int usdt_prog(void *ctx) { return 0; }
SEC("socket1") int socket_prog(void *ctx) { return 0; }
SEC("classifier/ingress/drop") int tc_prog(void *ctx) { return 0; }
SEC("sk_skb/stream_verdict") int skskb_prog(void *ctx) { return 0; }
SEC("sk_msg") int skmsg_prog(void *ctx) { return 0; }
SEC("sockops") int sockops_prog(void *ctx) { return 0; }
SEC("xdp") int xdp_prog(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";

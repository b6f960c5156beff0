/* SPDX-License-Identifier: Apache-2.0 */
/* The smallest valid gadget; also built big-endian, unstripped and without BTF. */
#include "fixture.h"

struct event {
	gadget_pid pid;
	gadget_comm comm[TASK_COMM_LEN];
	unsigned int a : 3, b : 5;
	signed int c : 4;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

GADGET_TRACER(exec, events, event);

const volatile struct event defaults = { .pid = 0x01020304, .comm = "hi", .a = 5, .b = 17, .c = -3 };
GADGET_PARAM(defaults);

SEC("tracepoint/sched/sched_process_exec")
int trace_exec(void *ctx)
{
	return defaults.pid;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

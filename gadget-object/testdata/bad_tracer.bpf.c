/* SPDX-License-Identifier: Apache-2.0 */
/* Broken tracers: one fed by a hash map, one whose struct is not in BTF, one whose map is missing. */
#include "fixture.h"

struct event {
	gadget_pid pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct event);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

GADGET_TRACER(exec, events, event);
/* No __gadget_tracer_type_ghost: struct ghost never reaches BTF. */
const void *gadget_tracer_ghostly___rb___ghost __attribute__((unused));
const void *gadget_tracer_nomap___missing___event __attribute__((unused));
const void *gadget_tracer_broken __attribute__((unused));

SEC("tracepoint/sched/sched_process_exec")
int trace_exec(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

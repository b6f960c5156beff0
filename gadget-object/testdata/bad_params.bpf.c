/* SPDX-License-Identifier: Apache-2.0 */
/* Broken params: not const, not in .rodata, missing, static. */
#include "fixture.h"

const volatile __u32 good = 7;
volatile __u32 nonconst = 1;                         /* .data, not const */
const volatile __u32 in_data SEC(".data") = 5;       /* const volatile, but in .data */
const __u32 only_const = 3;                          /* .rodata, but not volatile */
static const volatile __u32 hidden_static = 9;       /* not a global */
GADGET_PARAM(good);
GADGET_PARAM(nonconst);
GADGET_PARAM(in_data);
GADGET_PARAM(only_const);
GADGET_PARAM(hidden_static);
GADGET_PARAM(missing);

SEC("kprobe/do_sys_openat2")
int prog(void *ctx)
{
	return good + nonconst + in_data + only_const + hidden_static;
}

char LICENSE[] SEC("license") = "GPL";

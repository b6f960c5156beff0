/* SPDX-License-Identifier: Apache-2.0 */
/* Broken iterator: one program in a kprobe section, one program missing. */
#include "fixture.h"

struct entry {
	gadget_pid pid;
};
GADGET_ITER2(tasks, entry, dump_tasks, not_an_iter);
GADGET_ITER1(files, entry, no_such_prog);

SEC("iter/task") int dump_tasks(void *ctx) { return 0; }
SEC("kprobe/vfs_read") int not_an_iter(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: Apache-2.0 */
/* Broken map iterators: key size mismatch, not a hash map, value not a struct. */
#include "fixture.h"

struct k4 {
	__u32 id;
};
struct val {
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct k4);
	__uint(key_size, 8); /* disagrees with sizeof(struct k4) */
	__type(value, struct val);
} sizes SEC(".maps");
GADGET_MAPITER(mismatch, sizes);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct val);
} arr SEC(".maps");
GADGET_MAPITER(notahash, arr);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, struct k4);
	__type(value, __u64);
} scalar SEC(".maps");
GADGET_MAPITER(scalarvalue, scalar);

GADGET_MAPITER(nomap, nowhere);

SEC("kprobe/do_sys_openat2")
int prog(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Compile/load check for the SDK headers, run by scripts/sdk/selftest. Not a gadget.
 *
 * Build: clang -target bpf -Wall -g -O2 -D__TARGET_ARCH_{x86,arm64}
 *          -I ig-image/sdk/include -I ig-image/sdk/include/gadget/{amd64,arm64} ...
 *
 * The kprobe reads its arguments through the arch's pt_regs layout (struct pt_regs on
 * x86, struct user_pt_regs on arm64), so an arm64 object's kprobe can never load on an
 * x86 kernel (libbpf: "failed to resolve CO-RE relocation ... struct user_pt_regs").
 * For the cross-arch load check the selftest builds with -DSELFTEST_NO_KPROBE, which
 * leaves the kprobe out; the tracepoint program, which does the same CO-RE read, then
 * proves that an object built against the arm64 vmlinux.h relocates against the running
 * kernel's BTF.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

volatile __u64 last_mntns_inum;
volatile __u32 last_dfd;

static __always_inline __u64 current_mntns_inum(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	/* CO-RE read through three pointers and a nested member. */
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

#ifndef SELFTEST_NO_KPROBE
SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(p, int dfd, const char *name)
{
	char buf[16];

	bpf_probe_read_user_str(buf, sizeof(buf), name);
	last_dfd = dfd;
	last_mntns_inum = current_mntns_inum();
	return 0;
}
#endif

SEC("tracepoint/syscalls/sys_enter_openat")
int tp(void *ctx)
{
	last_mntns_inum = current_mntns_inum() + bpf_ntohs(0);
	return 0;
}

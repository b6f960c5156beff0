/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/common.h - the usual starting point of a gadget.
 *
 * Pulls in vmlinux.h (the arch's kernel types), gadget/types.h, gadget/mntns.h
 * and libbpf's helpers, and offers gadget_process_populate() to fill the
 * `struct gadget_process` that most events embed.
 */

#ifndef __COMMON_H
#define __COMMON_H

#include <vmlinux.h>
#include <gadget/types.h>
#include <gadget/mntns.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/*
 * gadget_process_populate fills `p` from the current task:
 *   pid, tid       thread-group id and thread id (bpf_get_current_pid_tgid)
 *   comm           bpf_get_current_comm
 *   creds          uid and gid (bpf_get_current_uid_gid)
 *   mntns_id       task->nsproxy->mnt_ns->ns.inum
 *   parent         comm, thread-group id (pid) and thread id (tid) of
 *                  task->real_parent
 */
static __always_inline void gadget_process_populate(struct gadget_process *p)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct task_struct *task, *parent;

	p->pid = pid_tgid >> 32;
	p->tid = (__u32)pid_tgid;
	bpf_get_current_comm(p->comm, sizeof(p->comm));

	p->creds.uid = (__u32)uid_gid;
	p->creds.gid = uid_gid >> 32;

	task = (struct task_struct *)bpf_get_current_task();
	p->mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);

	parent = BPF_CORE_READ(task, real_parent);
	if (!parent) {
		p->parent.comm[0] = '\0';
		p->parent.pid = 0;
		p->parent.tid = 0;
		return;
	}
	BPF_CORE_READ_STR_INTO(&p->parent.comm, parent, comm);
	p->parent.pid = BPF_CORE_READ(parent, tgid);
	p->parent.tid = BPF_CORE_READ(parent, pid);
}

/* The name gadget_process_populate() had in earlier upstream SDKs. */
static __always_inline void
gadget_fill_current_process(struct gadget_process *p)
{
	gadget_process_populate(p);
}

#endif /* __COMMON_H */

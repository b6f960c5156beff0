/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/mntns.h - mount namespace of the current task.
 *
 * The runtime maps mount namespace ids (inode numbers of the namespace) to
 * containers, so most events carry one. Include vmlinux.h first: the id is
 * read from task_struct with CO-RE.
 */

#ifndef MNTNS_H
#define MNTNS_H

#include <gadget/types.h>

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* gadget_get_current_mntns_id returns the inode number of the current task's
 * mount namespace (task->nsproxy->mnt_ns->ns.inum), or 0 for a task that is
 * exiting and has no nsproxy any more. */
static __always_inline gadget_mntns_id gadget_get_current_mntns_id(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* Deprecated: use gadget_get_current_mntns_id(). */
__attribute__((deprecated("use gadget_get_current_mntns_id()")))
static __always_inline gadget_mntns_id gadget_get_mntns_id(void)
{
	return gadget_get_current_mntns_id();
}

#endif /* MNTNS_H */

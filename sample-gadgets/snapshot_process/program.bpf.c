// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * snapshot_process - the processes running right now.
 *
 * An `iter/task` program visits every task (thread) on the system; it writes
 * one record per thread-group leader, i.e. one per process, with
 * bpf_seq_write(). User space reads the records by creating an iterator from
 * the program's link and reading it to the end.
 *
 * Filters: the common ones of gadget/filter.h (pid, tid, uid, gid, comm and
 * the mount namespace filter), applied to each process.
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/mntns_filter.h>
#include <gadget/types.h>

struct process_entry {
	gadget_pid pid;
	gadget_ppid ppid;
	gadget_comm comm[TASK_COMM_LEN];
	gadget_uid uid;
	gadget_gid gid;
	gadget_mntns_id mntns_id;
};

GADGET_ITER(processes, process_entry, ig_snap_proc);

SEC("iter/task")
int ig_snap_proc(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct process_entry entry = {};

	/* NULL once at the end of the walk */
	if (!task)
		return 0;

	/* threads other than the leader would repeat the process */
	if (BPF_CORE_READ(task, tgid) != BPF_CORE_READ(task, pid))
		return 0;

	entry.pid = BPF_CORE_READ(task, tgid);
	entry.ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_STR_INTO(&entry.comm, task, comm);
	entry.uid = BPF_CORE_READ(task, cred, uid.val);
	entry.gid = BPF_CORE_READ(task, cred, gid.val);
	entry.mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);

	if (gadget_should_discard_data(entry.mntns_id, entry.pid, entry.pid,
				       entry.comm, entry.uid, entry.gid))
		return 0;

	bpf_seq_write(seq, &entry, sizeof(entry));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

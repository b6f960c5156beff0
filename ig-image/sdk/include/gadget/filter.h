/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/filter.h - the common filter parameters and the checks using them.
 *
 * Declares five user parameters (GADGET_PARAM), which the runtime shows under
 * the well-known keys in brackets:
 *
 *   targ_pid  [pid]   process (thread-group) id, 0 = any
 *   targ_tid  [tid]   thread id, 0 = any
 *   targ_uid  [uid]   user id, GADGET_INVALID_ID = any
 *   targ_gid  [gid]   group id, GADGET_INVALID_ID = any
 *   targ_comm [comm]  exact command name, empty = any
 *
 * The ids use user-space terms: "pid" is the kernel's tgid, "tid" the kernel's
 * pid. gadget_should_discard_data_current() checks the current task against
 * all of them and against the mount namespace filter of mntns_filter.h.
 *
 * Networking gadgets, whose programs do not run in the context of the task
 * that caused the event, define GADGET_TYPE_NETWORKING before including this
 * header; gadget_should_discard_data_current() is then left out. They filter
 * on the socket's owner instead: gadget_should_discard_data_by_skb(value)
 * with the struct gadget_socket_value found by sockets-map.h.
 */

#ifndef FILTER_H
#define FILTER_H

#include <bpf/bpf_helpers.h>
#include <gadget/macros.h>
#include <gadget/types.h>
#include <gadget/mntns_filter.h>
#ifndef GADGET_TYPE_NETWORKING
#include <gadget/mntns.h>
#endif

/* "Any" value of the uid and gid filters. */
#define GADGET_INVALID_ID ((gadget_uid)-1)

const volatile gadget_pid targ_pid = 0;
GADGET_PARAM(targ_pid);

const volatile gadget_tid targ_tid = 0;
GADGET_PARAM(targ_tid);

const volatile gadget_uid targ_uid = GADGET_INVALID_ID;
GADGET_PARAM(targ_uid);

const volatile gadget_gid targ_gid = GADGET_INVALID_ID;
GADGET_PARAM(targ_gid);

const volatile gadget_comm targ_comm[TASK_COMM_LEN] = {};
GADGET_PARAM(targ_comm);

static __always_inline bool gadget_should_discard_pid(gadget_pid pid)
{
	return targ_pid != 0 && pid != targ_pid;
}

static __always_inline bool gadget_should_discard_tid(gadget_tid tid)
{
	return targ_tid != 0 && tid != targ_tid;
}

static __always_inline bool gadget_should_discard_uid(gadget_uid uid)
{
	return targ_uid != GADGET_INVALID_ID && uid != targ_uid;
}

static __always_inline bool gadget_should_discard_gid(gadget_gid gid)
{
	return targ_gid != GADGET_INVALID_ID && gid != targ_gid;
}

/* True when a comm filter is set and `comm` differs from it. Both are
 * compared up to the first NUL (at most TASK_COMM_LEN bytes). */
static __always_inline bool
gadget_should_discard_comm(const gadget_comm comm[TASK_COMM_LEN])
{
	if (targ_comm[0] == '\0')
		return false;

#pragma unroll
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		char want = targ_comm[i];

		if (comm[i] != want)
			return true;
		if (want == '\0')
			break;
	}
	return false;
}

/* True when an event with these properties must be dropped. */
static __always_inline bool
gadget_should_discard_data(gadget_mntns_id mntns_id, gadget_pid pid,
			   gadget_tid tid, const gadget_comm comm[TASK_COMM_LEN],
			   gadget_uid uid, gadget_gid gid)
{
	return gadget_should_discard_mntns_id(mntns_id) ||
	       gadget_should_discard_pid(pid) ||
	       gadget_should_discard_tid(tid) ||
	       gadget_should_discard_uid(uid) ||
	       gadget_should_discard_gid(gid) ||
	       gadget_should_discard_comm(comm);
}

#ifndef GADGET_TYPE_NETWORKING
/* True when an event caused by the current task must be dropped. Each check
 * only fetches what it needs, and the cheapest checks come first. */
static __always_inline bool gadget_should_discard_data_current(void)
{
	if (gadget_should_discard_mntns_id(gadget_get_current_mntns_id()))
		return true;

	if (targ_pid != 0 || targ_tid != 0) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		if (gadget_should_discard_pid(pid_tgid >> 32) ||
		    gadget_should_discard_tid((__u32)pid_tgid))
			return true;
	}

	if (targ_uid != GADGET_INVALID_ID || targ_gid != GADGET_INVALID_ID) {
		__u64 uid_gid = bpf_get_current_uid_gid();

		if (gadget_should_discard_uid((__u32)uid_gid) ||
		    gadget_should_discard_gid(uid_gid >> 32))
			return true;
	}

	if (targ_comm[0] != '\0') {
		char comm[TASK_COMM_LEN] = {};

		bpf_get_current_comm(comm, sizeof(comm));
		if (gadget_should_discard_comm(comm))
			return true;
	}

	return false;
}
#endif /* GADGET_TYPE_NETWORKING */

/* For events attributed through the socket enricher (sockets-map.h): the
 * filters apply to the socket's owner. An unknown socket (NULL) is dropped
 * as soon as any filter is set, since its owner cannot be checked. */
static __always_inline bool
gadget_should_discard_data_by_skb(const struct gadget_socket_value *owner)
{
	if (!owner)
		return gadget_filter_by_mntns || targ_pid != 0 ||
		       targ_tid != 0 || targ_uid != GADGET_INVALID_ID ||
		       targ_gid != GADGET_INVALID_ID || targ_comm[0] != '\0';

	return gadget_should_discard_data(owner->mntns, owner->pid_tgid >> 32,
					  (__u32)owner->pid_tgid, owner->task,
					  (__u32)owner->uid_gid,
					  owner->uid_gid >> 32);
}

#endif /* FILTER_H */

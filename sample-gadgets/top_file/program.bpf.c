// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Copyright (c) The ig-image authors */

/*
 * top_file - reads and writes per process and file.
 *
 * For each (process, file) pair, the hash map `stats` counts read and write
 * calls and the bytes they transferred. The runtime reads the map
 * periodically (GADGET_MAPITER): every entry is one row made of the key
 * struct `file_id` followed by the value struct `file_stat`.
 *
 * Two ways to see the I/O, chosen at build time:
 *
 *  - default: the syscall tracepoints of read, write, pread64, pwrite64,
 *    readv and writev. The entry tracepoint resolves the fd to its struct
 *    file and parks it in `inflight`; the exit tracepoint accounts the bytes
 *    the call returned. Tracepoints need neither kprobes nor BPF trampolines,
 *    so this works on kernels built without CONFIG_KPROBES. I/O done by the
 *    kernel on behalf of other syscalls (sendfile, splice, io_uring, mmap) is
 *    not seen.
 *
 *  - -DTOP_FILE_KPROBES: kprobes on vfs_read() and vfs_write(), which see
 *    every read and write through the VFS, including those of the kernel
 *    itself; they run at function entry, so they count the bytes requested.
 *
 * Parameters: `all_files` (count every kind of file, not only regular files)
 * and the common filters of gadget/filter.h.
 */

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include <gadget/common.h>
#include <gadget/filter.h>
#include <gadget/macros.h>
#include <gadget/types.h>

#define FILE_NAME_LEN 256

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000

/* Count all kinds of files (sockets, pipes, devices, ...) too. */
const volatile bool all_files = false;
GADGET_PARAM(all_files);

/* One row per process and file. */
struct file_id {
	__u64 inode;
	__u32 dev; /* encoded like st_dev of stat(2): major << 8 | minor, ... */
	gadget_pid pid;
};

struct file_stat {
	__u64 reads;
	__u64 writes;
	gadget_bytes rbytes;
	gadget_bytes wbytes;
	gadget_mntns_id mntns_id;
	gadget_tid tid; /* the thread that first touched the file */
	gadget_comm comm[TASK_COMM_LEN];
	/* last component of the path (the dentry name) */
	char file[FILE_NAME_LEN];
	/* 'R' regular file, 'S' socket, 'O' other */
	char type;
	__u8 __pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct file_id);
	__type(value, struct file_stat);
} stats SEC(".maps");

GADGET_MAPITER(files, stats);

static const struct file_stat zero_stat;

static __always_inline char file_type(umode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return 'R';
	case S_IFSOCK:
		return 'S';
	default:
		return 'O';
	}
}

/* The kernel's dev_t (major << 20 | minor) in the encoding user space sees
 * in st_dev (the kernel's new_encode_dev()). */
static __always_inline __u32 user_dev(dev_t dev)
{
	__u32 major = dev >> 20, minor = dev & 0xfffff;

	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

/* Whether I/O on `file` by the current task is to be counted. */
static __always_inline bool wanted(struct file *file)
{
	umode_t mode;

	if (!file)
		return false;

	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if (!all_files && (mode & S_IFMT) != S_IFREG)
		return false;

	return !gadget_should_discard_data_current();
}

/* Adds one call moving `bytes` bytes on `file` to the current process's
 * entry, creating and describing the entry on first use. */
static __always_inline void account(struct file *file, __u64 bytes,
				    bool is_write)
{
	struct file_id key = {};
	struct file_stat *stat;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.inode = BPF_CORE_READ(file, f_inode, i_ino);
	key.dev = user_dev(BPF_CORE_READ(file, f_inode, i_sb, s_dev));

	stat = bpf_map_lookup_elem(&stats, &key);
	if (!stat) {
		bpf_map_update_elem(&stats, &key, &zero_stat, BPF_NOEXIST);
		stat = bpf_map_lookup_elem(&stats, &key);
		if (!stat)
			return; /* map full */

		stat->tid = (__u32)bpf_get_current_pid_tgid();
		stat->mntns_id = gadget_get_current_mntns_id();
		stat->type = file_type(BPF_CORE_READ(file, f_inode, i_mode));
		bpf_get_current_comm(stat->comm, sizeof(stat->comm));
		bpf_probe_read_kernel_str(
			stat->file, sizeof(stat->file),
			BPF_CORE_READ(file, f_path.dentry, d_name.name));
	}

	if (is_write) {
		__sync_fetch_and_add(&stat->writes, 1);
		__sync_fetch_and_add(&stat->wbytes, bytes);
	} else {
		__sync_fetch_and_add(&stat->reads, 1);
		__sync_fetch_and_add(&stat->rbytes, bytes);
	}
}

#ifndef TOP_FILE_KPROBES

/* A read/write syscall between its entry and exit tracepoints. */
struct io_call {
	struct file *file;
	__u32 is_write;
	__u32 __unused;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct io_call);
} inflight SEC(".maps");

/* The struct file behind `fd` in the current task's fd table, or NULL. */
static __always_inline struct file *current_fd_file(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

static __always_inline int io_enter(__u64 fd, bool is_write)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_call call = {};

	call.file = current_fd_file(fd);
	if (!wanted(call.file))
		return 0;
	call.is_write = is_write;
	bpf_map_update_elem(&inflight, &pid_tgid, &call, BPF_ANY);
	return 0;
}

static __always_inline int io_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_call *callp, call;

	callp = bpf_map_lookup_elem(&inflight, &pid_tgid);
	if (!callp)
		return 0;
	call = *callp;
	bpf_map_delete_elem(&inflight, &pid_tgid);

	if (ret >= 0)
		account(call.file, ret, call.is_write);
	return 0;
}

/* All six syscalls take the fd as their first argument. */
#define TOP_FILE_SYSCALL(name, is_write)                                       \
	SEC("tracepoint/syscalls/sys_enter_" #name)                            \
	int ig_topfile_e_##name(struct trace_event_raw_sys_enter *ctx)         \
	{                                                                      \
		return io_enter(ctx->args[0], is_write);                       \
	}                                                                      \
	SEC("tracepoint/syscalls/sys_exit_" #name)                             \
	int ig_topfile_x_##name(struct trace_event_raw_sys_exit *ctx)          \
	{                                                                      \
		return io_exit(ctx->ret);                                      \
	}

TOP_FILE_SYSCALL(read, false)
TOP_FILE_SYSCALL(write, true)
TOP_FILE_SYSCALL(pread64, false)
TOP_FILE_SYSCALL(pwrite64, true)
TOP_FILE_SYSCALL(readv, false)
TOP_FILE_SYSCALL(writev, true)

#else /* TOP_FILE_KPROBES */

/* ssize_t vfs_read(struct file *file, char __user *buf, size_t count, loff_t *pos) */
SEC("kprobe/vfs_read")
int BPF_KPROBE(ig_topfile_rd, struct file *file, char *buf, size_t count)
{
	if (wanted(file))
		account(file, count, false);
	return 0;
}

/* ssize_t vfs_write(struct file *file, const char __user *buf, size_t count, loff_t *pos) */
SEC("kprobe/vfs_write")
int BPF_KPROBE(ig_topfile_wr, struct file *file, const char *buf, size_t count)
{
	if (wanted(file))
		account(file, count, true);
	return 0;
}

#endif /* TOP_FILE_KPROBES */

char LICENSE[] SEC("license") = "GPL";

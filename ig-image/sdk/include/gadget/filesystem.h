/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gadget/filesystem.h - turning a struct path (or a file descriptor) into the
 * path string user space would see.
 *
 * The path is assembled right to left in one half of a per-CPU scratch
 * buffer, walking dentries up to each mount's root and crossing into the
 * parent mount until the global root. At most MAX_PATH_COMPONENTS components
 * are walked; a longer path comes out truncated at the front. Files without
 * a name in any mounted filesystem (memfd, anonymous inodes) come out as
 * their dentry name.
 *
 * The walk uses bpf_probe_read()/bpf_probe_read_str(), which every kernel
 * with BPF tracing has. Include vmlinux.h, bpf_helpers.h and
 * bpf_core_read.h first.
 *
 * API:
 *   GADGET_PATH_MAX (512), MAX_PERCPU_BUFSIZE (32768), MAX_PATH_COMPONENTS (80),
 *   MAX_STRING_SIZE (4096, the older name for a path buffer size)
 *   buf_t, bufs (per-CPU array of buf_t), get_buf(idx), STRING_BUF_IDX
 *   void *get_path_str(struct path *)             NUL-terminated, in bufs
 *   void *get_path_str_with_size(path, size)      size: a power of two
 *   struct file *get_struct_file_for_fd(fd)       current task's fd table
 *   long read_full_path_of_open_file_fd(fd, buf, len)
 *                                                 bpf_probe_read_kernel_str result
 *   helpers: get_mnt_root_ptr_from_vfsmnt, get_d_parent_ptr_from_dentry,
 *            real_mount, get_d_name_from_dentry, is_pow_of_two
 */

#ifndef __COMMON_FILESYSTEM_H__
#define __COMMON_FILESYSTEM_H__

#define MAX_PERCPU_BUFSIZE (1 << 15)
#define GADGET_PATH_MAX 512
#define MAX_PATH_COMPONENTS 80
/* Buffer size earlier upstream SDKs offered for path strings (PATH_MAX). */
#ifndef MAX_STRING_SIZE
#define MAX_STRING_SIZE 4096
#endif

enum buf_idx_e {
	STRING_BUF_IDX,
	MAX_BUFFERS
};

typedef struct simple_buf {
	__u8 buf[MAX_PERCPU_BUFSIZE];
} buf_t;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BUFFERS);
	__type(key, __u32);
	__type(value, buf_t);
} bufs SEC(".maps");

static __always_inline buf_t *get_buf(int idx)
{
	return bpf_map_lookup_elem(&bufs, &idx);
}

static __always_inline struct dentry *
get_mnt_root_ptr_from_vfsmnt(struct vfsmount *vfsmnt)
{
	return BPF_CORE_READ(vfsmnt, mnt_root);
}

static __always_inline struct dentry *
get_d_parent_ptr_from_dentry(struct dentry *dentry)
{
	return BPF_CORE_READ(dentry, d_parent);
}

/* struct vfsmount is embedded in struct mount as member `mnt`. */
static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return container_of(mnt, struct mount, mnt);
}

static __always_inline struct qstr get_d_name_from_dentry(struct dentry *dentry)
{
	return BPF_CORE_READ(dentry, d_name);
}

static __always_inline int is_pow_of_two(__u32 size)
{
	return size != 0 && (size & (size - 1)) == 0;
}

/* Returns a pointer into the per-CPU buffer, valid until the next call on
 * this CPU, or NULL when size is not a power of two or the buffer is
 * unavailable. Each component is read with at most `size` bytes. */
static __always_inline void *get_path_str_with_size(struct path *path,
						    __u32 size)
{
	const __u32 half = MAX_PERCPU_BUFSIZE >> 1;
	struct path p;
	struct dentry *dentry, *mnt_root, *d_parent;
	struct vfsmount *vfsmnt;
	struct mount *mnt, *mnt_parent;
	struct qstr d_name;
	__u32 end = half; /* the string grows leftwards from here */
	char slash = '/';
	char nul = 0;
	buf_t *out;

	if (!is_pow_of_two(size))
		return NULL;
	out = get_buf(STRING_BUF_IDX);
	if (!out)
		return NULL;

	bpf_probe_read(&p, sizeof(p), path);
	dentry = p.dentry;
	vfsmnt = p.mnt;
	mnt = real_mount(vfsmnt);
	bpf_probe_read(&mnt_parent, sizeof(mnt_parent), &mnt->mnt_parent);

#pragma unroll
	for (int i = 0; i < MAX_PATH_COMPONENTS; i++) {
		__u32 len, start;
		long copied;

		mnt_root = get_mnt_root_ptr_from_vfsmnt(vfsmnt);
		d_parent = get_d_parent_ptr_from_dentry(dentry);
		if (dentry == mnt_root || dentry == d_parent) {
			if (dentry != mnt_root)
				break; /* a root that is no mount root: detached */
			if (mnt == mnt_parent)
				break; /* the global root: done */
			/* Continue from the mount point in the parent mount. */
			bpf_probe_read(&dentry, sizeof(dentry),
					      &mnt->mnt_mountpoint);
			bpf_probe_read(&mnt, sizeof(mnt),
					      &mnt->mnt_parent);
			bpf_probe_read(&mnt_parent, sizeof(mnt_parent),
					      &mnt->mnt_parent);
			vfsmnt = &mnt->mnt;
			continue;
		}

		d_name = get_d_name_from_dentry(dentry);
		len = (d_name.len + 1) & (size - 1);
		start = end - len;
		if (start > end)
			break; /* would wrap: out of room */
		copied = bpf_probe_read_str(
			&out->buf[start & (half - 1)], len & (half - 1),
			(const void *)d_name.name);
		if (copied <= 1)
			break; /* an empty or unreadable name */
		/* Replace the copied NUL with the separator. */
		end -= 1;
		bpf_probe_read(&out->buf[end & (MAX_PERCPU_BUFSIZE - 1)],
				      1, &slash);
		end -= copied - 1;
		dentry = d_parent;
	}

	if (end == half) {
		/* Nothing was walked: not in any mounted tree. Use the name. */
		d_name = get_d_name_from_dentry(dentry);
		bpf_probe_read_str(&out->buf[0], GADGET_PATH_MAX,
					  (const void *)d_name.name);
		return &out->buf[0];
	}

	end -= 1;
	bpf_probe_read(&out->buf[end & (MAX_PERCPU_BUFSIZE - 1)], 1,
			      &slash);
	bpf_probe_read(&out->buf[half - 1], 1, &nul);
	return &out->buf[end & (MAX_PERCPU_BUFSIZE - 1)];
}

static __always_inline void *get_path_str(struct path *path)
{
	return get_path_str_with_size(path, GADGET_PATH_MAX);
}

/* The struct file behind one of the current task's file descriptors, or
 * NULL. */
static __always_inline struct file *get_struct_file_for_fd(int fd)
{
	struct task_struct *task;
	struct file **fds;
	struct file *f = NULL;
	unsigned int max_fds;

	if (fd < 0)
		return NULL;
	task = (struct task_struct *)bpf_get_current_task();
	if (!task)
		return NULL;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned int)fd < max_fds)
		bpf_core_read(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Writes the full path of the current task's `fd` into buf (buf_len must be
 * a power of two). Returns what bpf_probe_read_kernel_str() returns, or -1. */
static __always_inline long read_full_path_of_open_file_fd(int fd, char *buf,
							   __u64 buf_len)
{
	struct file *file = get_struct_file_for_fd(fd);
	struct path f_path;
	char *path;

	if (!file)
		return -1;
	f_path = BPF_CORE_READ(file, f_path);
	path = get_path_str_with_size(&f_path, buf_len);
	if (!path)
		return -1;
	return bpf_probe_read_kernel_str(buf, buf_len, path);
}

#endif /* __COMMON_FILESYSTEM_H__ */

/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Copyright (c) The ig-image authors */

/*
 * gnu/stubs-32.h - intentionally empty.
 *
 * clang -target bpf defines neither __x86_64__ nor __aarch64__, so glibc's
 * <gnu/stubs.h> (reached from <sys/socket.h> and other libc headers) asks
 * for the 32-bit list of unimplemented functions, which only the i386 libc
 * development package installs. eBPF programs call no libc functions, so an
 * empty list is correct. This lets gadgets include libc headers for their
 * constants, as upstream gadgets such as tcpdump do.
 */

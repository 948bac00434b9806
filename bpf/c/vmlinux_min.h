/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * Minimal kernel types for CO-RE. Only the fields governor.bpf.c touches are
 * declared; preserve_access_index makes every access a CO-RE relocation, so
 * offsets come from the running kernel's BTF at load time, not from here.
 * This replaces a full vmlinux.h (megabytes, one per architecture).
 */
#ifndef GOVERNOR_VMLINUX_MIN_H
#define GOVERNOR_VMLINUX_MIN_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

/* UAPI constants (include/uapi/linux/bpf.h). */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_QUEUE = 22,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};
#define BPF_F_NO_PREALLOC (1U << 0)
#define BPF_LOCAL_STORAGE_GET_F_CREATE (1ULL << 0)

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

/* Opaque to programs (include/uapi/linux/bpf.h); 5.15+. */
struct bpf_timer {
	__u64 __opaque[2];
} __attribute__((aligned(8)));
#define CLOCK_MONOTONIC 1

/* Kernel types, relocated by CO-RE. */
struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
	int level;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

/* CONFIG_SCHED_INFO: the scheduler's own run-queue accounting. run_delay
 * sums the time the task waited on a run queue (enqueue or preemption to
 * switch-in, migrations included); pcount counts the waits that ended in a
 * switch-in. Both are updated after the sched_switch tracepoint fires. */
struct sched_info {
	unsigned long pcount;
	unsigned long long run_delay;
	unsigned long long last_arrival; /* rq clock when last switched in */
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int __state; /* 5.14+; "long state" before, see task_struct___pre514 */
	int pid;
	int tgid;
	char comm[16];
	struct css_set *cgroups;
	struct sched_info sched_info;
} __attribute__((preserve_access_index));

/* Kernels before 5.14 name the state field "state" (and make it a long). */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

#endif

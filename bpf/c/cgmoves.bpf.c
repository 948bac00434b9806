// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * cgmoves: one read of a cgroup iterator (iter/cgroup, 6.1+) walks a whole
 * cgroup v2 subtree and stores, per cgroup, what tells user space whether
 * its pressure files and cpu.stat usage can have changed since its
 * previous read (cgroup.Source then reads only the files of the cgroups
 * that moved; see cgroup/moves.go).
 *
 * The records go to an array map that user space maps into its memory,
 * not to the read's output: a cgroup iterator cannot resume a walk across
 * read() calls (it fails with EOPNOTSUPP), and one read returns at most
 * the seq_file buffer, 8 pages, which 48-byte records would fill at ~680
 * cgroups. The read's output is the number of cgroups walked and the
 * number of records left standing (two u64, written at the walk's end).
 *
 * The kernel's pressure accounting keeps, per cgroup and per CPU
 * (struct psi_group_cpu), the time spent in each pressure state
 * (times[], folded in at every state change of a task of the cgroup or
 * below it on that CPU) and the states in effect now (state_mask). A
 * pressure file's total is the sum of the first plus the time since the
 * current state began. So if the sums over the CPUs of a resource's
 * "some" and "full" times are the same at two reads and the states are
 * not in effect at the second, the file's totals were the same all the
 * while. PSI_NONIDLE (a task of the subtree running, runnable or
 * stalled) does the same for cpu.stat's usage: no task ran without it.
 *
 * Per-CPU data is reached as the kernel does, pointer + the CPU's per-CPU
 * offset. bpf_per_cpu_ptr cannot take psi_group.pcpu itself: Debian's
 * kernels are built with GCC, whose BTF has no __percpu tags on struct
 * fields; and __per_cpu_offset, a data symbol, is in kallsyms only with
 * CONFIG_KALLSYMS_ALL (not on every kernel we run on). The offsets come
 * from a per-CPU array map of our own instead: its value on CPU i
 * (bpf_map_lookup_percpu_elem, 5.19+) is its per-CPU pointer
 * (bpf_array.pptrs[0]) plus CPU i's offset.
 */

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define MAX_CPUS 1024

/* Possible CPUs (0 .. nr_cpus-1), set by the loader. */
volatile const __u32 nr_cpus = 1;

enum psi_states {
	PSI_IO_SOME,
	PSI_IO_FULL,
	PSI_MEM_SOME,
	PSI_MEM_FULL,
	PSI_CPU_SOME,
	PSI_CPU_FULL,
	PSI_NONIDLE,
};

struct psi_group_cpu {
	__u32 state_mask;
	__u32 times[8];
} __attribute__((preserve_access_index));

struct psi_group {
	struct psi_group_cpu *pcpu; /* __percpu */
	bool enabled;               /* 6.1+: cgroup.pressure */
} __attribute__((preserve_access_index));

struct cgroup___psi {
	struct psi_group *psi; /* a pointer since 6.1; embedded before */
} __attribute__((preserve_access_index));

struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__cgroup {
	struct bpf_iter_meta *meta;
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

/* One record per cgroup, in the walk's order; bpf/moves.go reads them. */
struct cg_move {
	__u64 id;
	__u64 psi[3];  /* io, memory, cpu: sum over CPUs of the some + full times, ns (mod 2^32 per CPU) */
	__u64 nonidle; /* sum over CPUs of the non-idle time */
	__u32 active;  /* bit r: resource r stalled now on some CPU; bit 3: non-idle now */
	__u32 flags;   /* MOVE_UNKNOWN: no pressure data, take it as moved */
};

#define MOVE_UNKNOWN 1

/* BPF_F_MMAPABLE; max_entries set by the loader. A walk of more cgroups
 * stores the first max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, 1U << 10);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cg_move);
} moves SEC(".maps");

/* Cgroups visited by the walk under way (seq_num + 1 of the last). */
__u64 walked;

/* Per-CPU offsets, filled on the first run. */
__u64 cpu_off[MAX_CPUS];
__u32 cpu_off_ready;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_probe SEC(".maps");

struct bpf_array {
	void *pptrs[1]; /* a flexible array in an anonymous union */
} __attribute__((preserve_access_index));

/* addr returns p's value as a number: the verifier forbids arithmetic
 * between a map pointer, or a map value's, and a number; a copy through
 * bpf_probe_read_kernel is just bytes. */
static __always_inline __u64 addr(void *p)
{
	__u64 a = 0;

	bpf_probe_read_kernel(&a, sizeof(a), &p);
	return a;
}

/* fill_offsets fills cpu_off; false if it cannot. */
static __always_inline bool fill_offsets(void)
{
	__u64 base = 0;
	__u32 zero = 0, i;

	if (bpf_probe_read_kernel(&base, sizeof(base),
				  (void *)(addr(&pcpu_probe) + bpf_core_field_offset(struct bpf_array, pptrs))) || !base)
		return false;
	for (i = 0; i < MAX_CPUS && i < nr_cpus; i++) {
		void *v = bpf_map_lookup_percpu_elem(&pcpu_probe, &zero, i);

		if (!v)
			return false;
		cpu_off[i] = addr(v) - base;
	}
	cpu_off_ready = 1;
	return true;
}

/* measure fills r with cg's pressure-state sums and states in effect (or
 * MOVE_UNKNOWN). */
static __always_inline void measure(struct cgroup *cg, struct cg_move *r)
{
	struct psi_group *g;
	unsigned long pcpu;
	__u32 nonidle = bpf_core_enum_value(enum psi_states, PSI_NONIDLE);
	__u32 tsz = bpf_core_field_size(((struct psi_group_cpu *)0)->times);
	__u32 moff = bpf_core_field_offset(((struct psi_group_cpu *)0)->state_mask);
	__u32 toff = bpf_core_field_offset(((struct psi_group_cpu *)0)->times);
	bool adjacent = toff == moff + sizeof(__u32);
	__u32 i;

	if (bpf_core_field_size(((struct cgroup___psi *)0)->psi) != sizeof(void *)) {
		r->flags = MOVE_UNKNOWN;
		return;
	}
	/* Direct loads: cg is the iterator's (BTF) pointer, and so is g;
	 * the verifier makes them fault-safe loads, far cheaper than
	 * bpf_probe_read_kernel calls. */
	g = ((struct cgroup___psi *)cg)->psi;
	if (!g || (bpf_core_field_exists(g->enabled) && !g->enabled)) {
		r->flags = MOVE_UNKNOWN;
		return;
	}
	pcpu = (unsigned long)BPF_CORE_READ(g, pcpu);
	if (!pcpu || nonidle >= 8 || tsz > 8 * sizeof(__u32) || tsz <= nonidle * sizeof(__u32) ||
	    (!cpu_off_ready && !fill_offsets())) {
		r->flags = MOVE_UNKNOWN;
		return;
	}
	for (i = 0; i < MAX_CPUS && i < nr_cpus; i++) {
		struct psi_group_cpu *gc;
		__u32 span[9] = {}; /* state_mask and times[], adjacent in every kernel so far */
		__u32 *times = &span[1];
		__u32 mask;

		gc = (struct psi_group_cpu *)(pcpu + cpu_off[i]);
		if (adjacent) {
			/* One copy per CPU: the 8 words after state_mask are
			 * times[] and, with 7 states, part of state_start. */
			if (bpf_probe_read_kernel(span, sizeof(span), (void *)gc + moff)) {
				r->flags = MOVE_UNKNOWN;
				return;
			}
		} else if (bpf_probe_read_kernel(&span[0], sizeof(span[0]), (void *)gc + moff) ||
			   bpf_probe_read_kernel(&span[1], tsz & 63, (void *)gc + toff)) {
			r->flags = MOVE_UNKNOWN;
			return;
		}
		mask = span[0];
		r->psi[0] += (__u64)times[PSI_IO_SOME] + times[PSI_IO_FULL];
		r->psi[1] += (__u64)times[PSI_MEM_SOME] + times[PSI_MEM_FULL];
		r->psi[2] += (__u64)times[PSI_CPU_SOME] + times[PSI_CPU_FULL];
		r->nonidle += times[nonidle & 7];
		if (mask & (1 << PSI_IO_SOME | 1 << PSI_IO_FULL))
			r->active |= 1;
		if (mask & (1 << PSI_MEM_SOME | 1 << PSI_MEM_FULL))
			r->active |= 2;
		if (mask & (1 << PSI_CPU_SOME | 1 << PSI_CPU_FULL))
			r->active |= 4;
		if (mask & (1 << nonidle))
			r->active |= 8;
	}
}

/*
 * A still cgroup vouches for its subtree. Every task state change is
 * accounted in the pressure groups of the task's cgroup and of each of its
 * ancestors, on the same CPU, so when a cgroup's sums are those of the
 * previous walk and no state was in effect at either walk, no task below
 * it changed state in between: the records of its descendants stand. The
 * walk is pre-order, so they are the cgroups that follow it at a deeper
 * level; each is left as the previous walk wrote it where that record is
 * of the same cgroup (else the tree changed there: it is measured).
 * A cgroup whose pressure accounting is off (MOVE_UNKNOWN) vouches for
 * nothing.
 */
__s32 skip_below = -1; /* level of the still cgroup whose subtree is being passed, -1 none */
__u64 skipped;         /* records left standing in the walk under way */

SEC("iter/cgroup")
int dump_moves(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cg = ctx->cgroup;
	__u64 seq = ctx->meta->seq_num;
	struct cg_move *m, r = {};
	__u64 id;
	__s32 level;
	__u32 k;

	if (!cg) {
		/* The walk's end: how many cgroups it visited, and how many
		 * records it left standing. */
		__u64 out[2] = {walked, skipped};

		bpf_seq_write(ctx->meta->seq, out, sizeof(out));
		walked = 0;
		skipped = 0;
		skip_below = -1;
		return 0;
	}
	if (seq == 0) { /* a walk cut short leaves these behind */
		skipped = 0;
		skip_below = -1;
	}
	walked = seq + 1;
	if (seq >= 0xffffffff)
		return 0;
	k = seq;
	m = bpf_map_lookup_elem(&moves, &k);
	if (!m)
		return 0; /* more cgroups than slots: user space sees the count */
	id = cg->kn->id; /* direct loads, as in measure */
	level = cg->level;
	if (skip_below >= 0 && level > skip_below && m->id == id) {
		skipped++;
		return 0;
	}
	skip_below = -1;
	r.id = id;
	measure(cg, &r);
	if (!r.flags && !r.active && m->id == id && !m->flags && !m->active &&
	    r.psi[0] == m->psi[0] && r.psi[1] == m->psi[1] && r.psi[2] == m->psi[2] &&
	    r.nonidle == m->nonidle)
		skip_below = level;
	*m = r;
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

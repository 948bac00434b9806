// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * governor's in-kernel sensors:
 *
 *  - run-queue latency per cgroup, two ways (the loader loads one):
 *    stamps: sched_wakeup / sched_wakeup_new stamp the woken task,
 *    sched_switch turns now - stamp of `next` into a histogram sample of
 *    next's own cgroup (CO-RE task->cgroups->dfl_cgrp->kn->id; never the
 *    current task's cgroup, which at sched_switch is prev's and at wakeup the
 *    waker's). A task switched out while still runnable (involuntary
 *    preemption, or __state still TASK_RUNNING) is re-stamped.
 *    sched_info (btf_sched_switch_si): the scheduler's own per-task wait
 *    accounting, read when the task is switched out; see that program.
 *  - preemptions: a task switched out while runnable counts against its
 *    cgroup, and the (victim cgroup, next task's cgroup) pair is counted so
 *    user space can name the noisy neighbour. Offender 0 means the CPU went
 *    idle: the task was throttled (own cpu.max) or migrated.
 *  - reclaim stalls: time between vmscan direct/memcg reclaim begin and end,
 *    charged to the cgroup of the task that stalled (current).
 *  - OOM kills: one ring buffer record per oom:mark_victim.
 *  - the fast path: for the cgroups user space watches, thresholds on one
 *    run-queue wait and on waits and memory stalls adding up within a
 *    short window; crossing one puts an alert on a ring buffer, at most
 *    one per cgroup and kind (run-queue, memory) per alert_gap_ns, and
 *    the loop runs a Step at once
 *    instead of waiting for its tick. Memory stalls are timed between
 *    psi_memstall_enter and psi_memstall_leave (fentry, tp_btf set, where
 *    kernel BTF has them): every stall PSI counts as memory pressure,
 *    reclaim, throttling above memory.high and swap-in alike; elsewhere
 *    reclaim episodes stand in.
 *
 * Everything is aggregated in maps keyed by cgroup id; user space reads
 * deltas once per tick. Two program sets exist: tp_btf (typed arguments,
 * task local storage for stamps) and raw_tp (fallback: CO-RE probe reads and a
 * pid-keyed hash for stamps). The loader loads one of them.
 */

#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_RUNNING 0
#define EEXIST 17

/*
 * Histogram: values in ns. With s = hist_subbits (0..2) each power of two is
 * split into 2^s linear sub-buckets: v < 2^s is bucket v, otherwise with
 * l = floor(log2 v): bucket ((l - s + 1) << s) + the s bits below the leading
 * one. Values of 2^(MAX_LOG2+1) ns (~18 min) and more share the last bucket.
 * bpf/hist.go mirrors this.
 */
#define MAX_LOG2 39
#define MAX_SUBBITS 2
#define NBUCKETS ((MAX_LOG2 - MAX_SUBBITS + 2) << MAX_SUBBITS) /* 156 */

/* Settings, set by the loader before load (spec.Variables). */
volatile const __u32 hist_subbits = 2;
/* oom:mark_victim arguments: 0 = (struct task_struct *, uid_t) (6.8+),
 * 1 = (int pid) (older kernels). Probed from kernel BTF by the loader. */
volatile const __u32 oom_layout = 0;
/* The fast path: the window waits and memory stalls add up in, and the
 * least time between two alerts of one cgroup (per kind: run-queue alerts
 * are limited in the slot, memory ones in the watch). */
volatile const __u64 alert_window_ns = 100000000;
volatile const __u64 alert_gap_ns = 50000000;
/* 1: the memstall programs are loaded and time memory stalls for the fast
 * path; 0: reclaim episodes stand in. */
volatile const __u32 memstall_fentry = 0;

struct cg_stats {
	__u64 cgid;             /* owner of the slot; 0: free */
	__u64 wait_ns;          /* total run-queue wait */
	__u64 reclaim_ns;       /* direct + memcg reclaim */
	__u64 reclaims;         /* reclaim episodes ended */
	/* The fast path's run-queue thresholds (0: off), copied from the
	 * cgroup's watch (see watches) so that the wait path needs no other
	 * lookup, and their window: its start, wait_ns then, the last alert. */
	__u64 watch_wait_ns;
	__u64 watch_wait_sum_ns;
	__u64 watch_win_start;
	__u64 watch_win_wait;
	__u64 watch_last_alert;
	__u32 hist[NBUCKETS];   /* run-queue wait histogram */
};

struct pair_key {
	__u64 victim;   /* cgroup of the task switched out while runnable */
	__u64 offender; /* cgroup of the task switched in; 0: idle */
};

struct oom_event {
	__u64 cgid;
	__u32 pid;
	__u32 layout;
	char comm[16];
};

/* A watched cgroup's thresholds (user space sets them; 0: off) and the
 * state the programs keep for it. Races between CPUs on the state can
 * merge or split a window: an alert is a hint, not a measurement. */
struct watch {
	/* Run-queue thresholds, copied into the cgroup's cg_stats slot,
	 * where the wait path reads them. */
	__u64 wait_ns;        /* one run-queue wait this long */
	__u64 wait_sum_ns;    /* run-queue waits adding up to this in a window */
	__u64 mem_sum_ns;     /* memory stalls adding up to this in a window */
	__u64 gen;            /* user space's, new with each Watch */
	__u64 win_start;
	__u64 acc_mem;
	__u64 last_alert;
	/* memstall programs: the cgroup's tasks in a memory stall now, and
	 * since when one has been (a stall is added to acc_mem when it ends;
	 * a timer alerts on one that goes on). */
	__s64 stalling;
	__u64 stall_since;
	/* The end of the last stall added to acc_mem: what is added later
	 * starts no earlier, so no stretch of time counts twice. */
	__u64 covered_until;
};

/* The timer that looks at a watched cgroup's stall in progress
 * (memstall programs; bpf_timer needs 5.15). */
struct wtimer {
	struct bpf_timer t;
};

enum alert_kind {
	ALERT_WAIT = 1,    /* value: the wait */
	ALERT_WAIT_SUM,    /* value: waits in the window so far */
	ALERT_MEM_SUM,     /* value: reclaim time in the window so far */
	ALERT_MEM_SOME,    /* value: time some task stalled in the window so far */
};

struct alert {
	__u64 cgid;
	__u64 value_ns;
	__u32 kind;
	__u32 pad;
};

/* A task's memory stall in progress (memstall programs): when the
 * outermost psi_memstall_enter ran, and how deep the nesting is. */
struct mstall {
	__u64 ts;
	__u32 depth;
	__u32 counted; /* the outermost enter counted in the watch of gen */
	__u64 gen;
	__u64 cgid;    /* whose watch counted it (the task may move meanwhile) */
};

/* Task local storage: the wakeup stamp (stamp programs) or the task's
 * sched_info as of its last switch-out (sched_info program), and the task's
 * cgroup and its slot as last seen, which saves the cg_index lookup while
 * the task stays put. */
struct stamp {
	__u64 ts;     /* stamps: wakeup time; sched_info: run_delay */
	__u64 cgid;
	__u32 slot;
	__u32 pcount; /* sched_info: low 32 bits of pcount; 0: not seen yet */
};

enum drop_kind {
	DROP_CGROUP_FULL = 0, /* cg_stats full: a sample was lost */
	DROP_PAIR_FULL,       /* preempt_pairs full */
	DROP_STAMP,           /* no stamp storage for a task */
	DROP_RECLAIM_FULL,    /* reclaim_stamps full */
	DROP_OOM_RINGBUF,     /* oom_events ring buffer full */
	DROP_ALERT_RINGBUF,   /* alerts ring buffer full */
	DROP_NR,
};

/* Force BTF for the types user space decodes (bpf2go -type). */
const struct oom_event *unused_oom_event __attribute__((unused));
const struct watch *unused_watch __attribute__((unused));
const struct alert *unused_alert __attribute__((unused));

/*
 * Per-cgroup counters live in an array of slots (array lookups are inlined
 * by the verifier); cg_index maps a cgroup id to its slot. free_slots holds
 * the unused slot numbers: the loader fills it, BPF pops a slot for a new
 * cgroup, user space zeroes and pushes back the slots of removed cgroups.
 * max_entries of all three: Options.MaxCgroups. cg_slots is
 * BPF_F_MMAPABLE (5.5+): user space reads the slots of a tick from its
 * mapping of the array, not with a lookup syscall per cgroup.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, 1U << 10);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct cg_stats);
} cg_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} cg_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, __u32);
} free_slots SEC(".maps");


/* Preemption counts per (victim, offender) cgroup pair. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pair_key);
	__type(value, __u64);
} preempt_pairs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DROP_NR);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* tp_btf set: wakeup stamps in task local storage. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stamp);
} task_stamps SEC(".maps");

/* memstall programs: the task's stall in progress; created only for tasks
 * of watched cgroups. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mstall);
} memstall_stamps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, struct wtimer);
} watch_timers SEC(".maps");

/* raw_tp set: wakeup stamps keyed by task_struct pointer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);
	__type(value, __u64);
} raw_stamps SEC(".maps");

/* Reclaim begin stamps keyed by thread id | kind << 32. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} reclaim_stamps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} oom_events SEC(".maps");

/* The fast path's watched cgroups; watching[0] is how many there are, so
 * that while none is, a memory stall costs one array load, not a hash
 * lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, struct watch);
} watches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} watching SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} alerts SEC(".maps");

static __always_inline void drop(__u32 kind)
{
	__u64 *c = bpf_map_lookup_elem(&drops, &kind);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xFFFFFFFFULL) << 5;
	v >>= r;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

/* __u64, not __u32: a 32-bit copy of a small v, bounds-checked on the
 * 64-bit register, left the verifier without a bound on the copy. */
static __always_inline __u64 bucket(__u64 v)
{
	__u32 s = hist_subbits, l, idx;

	if (v < (1ULL << s))
		return v;
	l = log2_u64(v);
	if (l > MAX_LOG2)
		return ((MAX_LOG2 - s + 2) << s) - 1;
	idx = ((l - s + 1) << s) + ((v >> (l - s)) & ((1U << s) - 1));
	if (idx >= NBUCKETS)
		idx = NBUCKETS - 1;
	return idx;
}

/* A new slot takes the run-queue thresholds of its cgroup's watch. */
static __always_inline void slot_watch_init(struct cg_stats *s, __u64 cgid)
{
	struct watch *w = bpf_map_lookup_elem(&watches, &cgid);

	if (!w)
		return;
	s->watch_wait_ns = w->wait_ns;
	s->watch_wait_sum_ns = w->wait_sum_ns;
}

/* A run-queue wait of the slot's cgroup, for the fast path: an alert on
 * one wait of watch_wait_ns or more, or on waits (wait_ns since the window
 * opened, this one included) adding up to watch_wait_sum_ns; at most one per
 * alert_gap_ns. now: the caller's clock (the sched_info program passes the
 * task's last switch-in, the rq clock, to spare a clock read per wait: a
 * run's length late, which only shifts windows). Differences are signed:
 * a late clock is not a wrapped one. */
static __always_inline void slot_watch(struct cg_stats *s, __u64 delta, __u64 now)
{
	__u64 sum = s->watch_wait_sum_ns, acc;
	struct alert *a;
	__u32 kind;

	if (!s->watch_wait_ns && !sum)
		return;
	if ((__s64)(now - s->watch_win_start) > (__s64)alert_window_ns) {
		s->watch_win_start = now;
		s->watch_win_wait = s->wait_ns - delta;
	}
	acc = s->wait_ns - s->watch_win_wait;
	if (s->watch_wait_ns && delta >= s->watch_wait_ns) {
		kind = ALERT_WAIT;
		acc = delta;
	} else if (sum && (__s64)acc >= (__s64)sum) {
		/* Signed: CPUs racing on the window can make acc "negative". */
		kind = ALERT_WAIT_SUM;
	} else {
		return;
	}
	if ((__s64)(now - s->watch_last_alert) < (__s64)alert_gap_ns)
		return;
	s->watch_last_alert = now;
	s->watch_win_start = now;
	s->watch_win_wait = s->wait_ns;
	a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);
	if (!a) {
		drop(DROP_ALERT_RINGBUF);
		return;
	}
	a->cgid = s->cgid;
	a->value_ns = acc;
	a->kind = kind;
	a->pad = 0;
	bpf_ringbuf_submit(a, 0);
}

static __always_inline struct cg_stats *cg_get_indexed(__u64 cgid, __u32 *slotp)
{
	__u32 slot, *idx = bpf_map_lookup_elem(&cg_index, &cgid);
	struct cg_stats *s;

	if (!idx)
		return 0;
	slot = *idx;
	s = bpf_map_lookup_elem(&cg_slots, &slot);
	if (s && slotp)
		*slotp = slot;
	return s;
}

/* The counters of cgroup cgid, allocating a slot for a new cgroup. */
static __always_inline struct cg_stats *cg_get(__u64 cgid, __u32 *slotp)
{
	struct cg_stats *s;
	__u32 slot, *idx;
	long err;

	idx = bpf_map_lookup_elem(&cg_index, &cgid);
	if (idx) {
		slot = *idx;
		s = bpf_map_lookup_elem(&cg_slots, &slot);
		if (s && slotp)
			*slotp = slot;
		return s;
	}
	if (bpf_map_pop_elem(&free_slots, &slot)) {
		drop(DROP_CGROUP_FULL);
		return 0;
	}
	s = bpf_map_lookup_elem(&cg_slots, &slot);
	if (!s)
		return 0;
	s->cgid = cgid;
	err = bpf_map_update_elem(&cg_index, &cgid, &slot, BPF_NOEXIST);
	if (err) {
		/* Lost a race for the same cgroup, or the index is full. */
		s->cgid = 0;
		bpf_map_push_elem(&free_slots, &slot, 0);
		if (err != -EEXIST) {
			drop(DROP_CGROUP_FULL);
			return 0;
		}
		return cg_get_indexed(cgid, slotp);
	}
	/* After the index: user space's Watch writes into the slot of an
	 * indexed cgroup, or else leaves the thresholds here to be copied. */
	slot_watch_init(s, cgid);
	if (slotp)
		*slotp = slot;
	return s;
}

/* The counters of the cgroup of a task with storage st: the cached slot
 * while it is still the cgroup's, else through cg_get. */
static __always_inline struct cg_stats *cg_get_cached(struct stamp *st, __u64 cgid)
{
	struct cg_stats *s;
	__u32 slot = st->slot;

	if (st->cgid == cgid) {
		s = bpf_map_lookup_elem(&cg_slots, &slot);
		if (s && s->cgid == cgid)
			return s;
	}
	s = cg_get(cgid, &slot);
	if (s) {
		st->cgid = cgid;
		st->slot = slot;
	}
	return s;
}

static __always_inline void cg_add_wait(struct cg_stats *s, __u64 delta)
{
	__u64 idx = bucket(delta);

	__sync_fetch_and_add(&s->wait_ns, delta);
	if (idx < NBUCKETS)
		__sync_fetch_and_add(&s->hist[idx], 1);
}

static __always_inline void runq_record(__u64 cgid, __u64 delta, __u64 now)
{
	struct cg_stats *s = cg_get(cgid, 0);

	if (s) {
		cg_add_wait(s, delta);
		slot_watch(s, delta, now);
	}
}

/* Preemptions are counted only per (victim, offender) pair, self and idle
 * included: one map lookup per preemption. */
static __always_inline void preempt_record(__u64 victim, __u64 offender)
{
	struct pair_key k = { .victim = victim, .offender = offender };
	__u64 *c, one = 1;
	long err;

	c = bpf_map_lookup_elem(&preempt_pairs, &k);
	if (c) {
		__sync_fetch_and_add(c, 1);
		return;
	}
	err = bpf_map_update_elem(&preempt_pairs, &k, &one, BPF_NOEXIST);
	if (err == -EEXIST) {
		c = bpf_map_lookup_elem(&preempt_pairs, &k);
		if (c)
			__sync_fetch_and_add(c, 1);
	} else if (err) {
		drop(DROP_PAIR_FULL);
	}
}

/* ---- the fast path ---- */

/* The watch of cgroup cgid, or 0: one array load while nothing is watched. */
static __always_inline struct watch *watched(__u64 cgid)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&watching, &zero);

	if (!n || !*n)
		return 0;
	return bpf_map_lookup_elem(&watches, &cgid);
}

static __always_inline void alert(struct watch *w, __u64 cgid, __u32 kind, __u64 value, __u64 now)
{
	struct alert *a;

	if (now - w->last_alert < alert_gap_ns)
		return;
	w->last_alert = now;
	w->win_start = now;
	w->acc_mem = 0;
	a = bpf_ringbuf_reserve(&alerts, sizeof(*a), 0);
	if (!a) {
		drop(DROP_ALERT_RINGBUF);
		return;
	}
	a->cgid = cgid;
	a->value_ns = value;
	a->kind = kind;
	a->pad = 0;
	bpf_ringbuf_submit(a, 0);
}

/* Opens a new window in w when the current one is over. */
static __always_inline void window(struct watch *w, __u64 now)
{
	if (now - w->win_start > alert_window_ns) {
		w->win_start = now;
		w->acc_mem = 0;
	}
}

static __always_inline void watch_mem(__u64 cgid, __u64 delta, __u64 now)
{
	struct watch *w = watched(cgid);

	if (!w)
		return;
	window(w, now);
	w->acc_mem += delta;
	if (w->mem_sum_ns && w->acc_mem >= w->mem_sum_ns)
		alert(w, cgid, ALERT_MEM_SUM, w->acc_mem, now);
}

/* ---- tp_btf set: arguments are typed kernel pointers, direct loads. ---- */

static __always_inline __u64 btf_task_cgid(struct task_struct *t)
{
	return t->cgroups->dfl_cgrp->kn->id;
}

static __always_inline long btf_task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___pre514 *)t)->state;
}

static __always_inline int btf_stamp(struct task_struct *p)
{
	struct stamp *st;

	if (p->pid == 0)
		return 0;
	st = bpf_task_storage_get(&task_stamps, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		drop(DROP_STAMP);
		return 0;
	}
	st->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(btf_sched_wakeup, struct task_struct *p)
{
	return btf_stamp(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(btf_sched_wakeup_new, struct task_struct *p)
{
	return btf_stamp(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(btf_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = 0, ts = 0, next_cg = 0;
	struct stamp *st, *nst = 0;
	struct cg_stats *s;
	int next_pid = next->pid;
	bool preempted = prev->pid != 0 && (preempt || btf_task_state(prev) == TASK_RUNNING);

	if (next_pid) {
		nst = bpf_task_storage_get(&task_stamps, next, 0, 0);
		if (nst) {
			ts = nst->ts;
			nst->ts = 0;
		}
		/* next's cgroup is needed for its sample or as the offender. */
		if (ts || preempted)
			next_cg = btf_task_cgid(next);
	}
	/* The clock only when a stamp is used or set: a task blocking in
	 * favour of one that was not woken (or of idle) needs neither. */
	if (ts || preempted)
		now = bpf_ktime_get_ns();
	if (preempted) {
		st = bpf_task_storage_get(&task_stamps, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (st)
			st->ts = now;
		else
			drop(DROP_STAMP);
		preempt_record(btf_task_cgid(prev), next_cg);
	}
	if (ts && nst && now >= ts) {
		s = cg_get_cached(nst, next_cg);
		if (s) {
			cg_add_wait(s, now - ts);
			slot_watch(s, now - ts, now);
		}
	}
	return 0;
}

/*
 * The same measurement from the scheduler's own accounting, where the kernel
 * has CONFIG_SCHED_INFO: no wakeup programs and no clock reads. A task's
 * sched_info.run_delay grows by each wait when the task is switched in (after
 * this tracepoint), so at the task's next switch-out run_delay minus its
 * value at the previous switch-out is the wait that preceded this run, and
 * pcount has grown by one. The sample is charged to the task's own cgroup
 * (prev is current here), one run later than the stamp programs charge it.
 * A task first seen with pcount 1 has waited once: run_delay is that wait;
 * one first seen later has an unknown history and gives no sample.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(btf_sched_switch_si, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 delay, prev_cg = 0, next_cg = 0;
	struct cg_stats *s;
	struct stamp *st;
	__u32 n, seen;

	if (prev->pid == 0)
		return 0;
	n = prev->sched_info.pcount;
	delay = prev->sched_info.run_delay;
	st = bpf_task_storage_get(&task_stamps, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		drop(DROP_STAMP);
	} else if ((seen = st->pcount) != n) {
		__u64 wait = delay - st->ts;

		st->ts = delay;
		st->pcount = n;
		if (seen || n == 1) {
			prev_cg = btf_task_cgid(prev);
			s = cg_get_cached(st, prev_cg);
			if (s) {
				__sync_fetch_and_add(&s->wait_ns, wait);
				/* Several waits since the last switch-out (missed
				 * switch-outs) cannot be split into samples. */
				if (n - seen == 1) {
					__u64 idx = bucket(wait);

					if (idx < NBUCKETS)
						__sync_fetch_and_add(&s->hist[idx], 1);
				}
				slot_watch(s, wait, prev->sched_info.last_arrival);
			}
		}
	}
	if (preempt || btf_task_state(prev) == TASK_RUNNING) {
		if (!prev_cg)
			prev_cg = btf_task_cgid(prev);
		if (next->pid)
			next_cg = btf_task_cgid(next);
		preempt_record(prev_cg, next_cg);
	}
	return 0;
}

/* ---- raw_tp set: untyped arguments, CO-RE probe reads. ---- */

static __always_inline __u64 raw_task_cgid(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline long raw_task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/*
 * Stamps are keyed by the task_struct pointer: no probe read is needed for the
 * key. Entries are updated in place (a hash update or delete allocates or
 * frees an element and takes the bucket lock; a lookup does not) and removed
 * when the task is freed (sched_process_free), so a reused pointer never
 * meets a stale stamp. pid 0 (the idle tasks) is never woken and is skipped
 * as prev, so it is never stamped.
 */
static __always_inline void raw_set_stamp(__u64 task, __u64 ts)
{
	__u64 *tsp = bpf_map_lookup_elem(&raw_stamps, &task);
	long err;

	if (tsp) {
		*tsp = ts;
		return;
	}
	err = bpf_map_update_elem(&raw_stamps, &task, &ts, BPF_NOEXIST);
	if (err && err != -EEXIST)
		drop(DROP_STAMP);
}

static __always_inline int raw_stamp(__u64 task)
{
	raw_set_stamp(task, bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/sched_process_free")
int raw_sched_process_free(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 task = ctx->args[0];

	bpf_map_delete_elem(&raw_stamps, &task);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int raw_sched_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
	return raw_stamp(ctx->args[0]);
}

SEC("raw_tp/sched_wakeup_new")
int raw_sched_wakeup_new(struct bpf_raw_tracepoint_args *ctx)
{
	return raw_stamp(ctx->args[0]);
}

SEC("raw_tp/sched_switch")
int raw_sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	/* prev is still current here: its pid and cgroup come from the
	 * (cheaper) current-task helpers; next needs probe reads. */
	struct task_struct *prev = (struct task_struct *)ctx->args[1];
	__u64 next = ctx->args[2], prev_key = ctx->args[1];
	__u32 prev_pid = (__u32)bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns(), *tsp, ts = 0, next_cg = 0;
	bool preempted = prev_pid != 0 && (ctx->args[0] || raw_task_state(prev) == TASK_RUNNING);

	tsp = bpf_map_lookup_elem(&raw_stamps, &next);
	if (tsp) {
		ts = *tsp;
		*tsp = 0;
	}
	if (ts || preempted) {
		/* next's cgroup: for its sample, or as the offender (0: idle). */
		if (BPF_CORE_READ((struct task_struct *)next, pid))
			next_cg = raw_task_cgid((struct task_struct *)next);
	}
	if (preempted) {
		raw_set_stamp(prev_key, now);
		preempt_record(bpf_get_current_cgroup_id(), next_cg);
	}
	if (ts && next_cg && now >= ts)
		runq_record(next_cg, now - ts, now);
	return 0;
}

/* ---- reclaim: charged to current (the stalled task); shared by both sets. ---- */

#define RECLAIM_DIRECT 0ULL
#define RECLAIM_MEMCG 1ULL

static __always_inline int reclaim_begin(__u64 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key = tid | kind << 32, now;

	if (!tid)
		return 0;
	now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&reclaim_stamps, &key, &now, BPF_ANY))
		drop(DROP_RECLAIM_FULL);
	return 0;
}

static __always_inline int reclaim_end(__u64 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 key = tid | kind << 32, *tsp, ts, now, cgid;
	struct cg_stats *s;

	if (!tid)
		return 0;
	tsp = bpf_map_lookup_elem(&reclaim_stamps, &key);
	if (!tsp)
		return 0;
	ts = *tsp;
	bpf_map_delete_elem(&reclaim_stamps, &key);
	now = bpf_ktime_get_ns();
	if (now < ts)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	if (!memstall_fentry)
		watch_mem(cgid, now - ts, now);
	s = cg_get(cgid, 0);
	if (!s)
		return 0;
	__sync_fetch_and_add(&s->reclaim_ns, now - ts);
	__sync_fetch_and_add(&s->reclaims, 1);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(btf_direct_reclaim_begin) { return reclaim_begin(RECLAIM_DIRECT); }
SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(btf_direct_reclaim_end) { return reclaim_end(RECLAIM_DIRECT); }
SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(btf_memcg_reclaim_begin) { return reclaim_begin(RECLAIM_MEMCG); }
SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(btf_memcg_reclaim_end) { return reclaim_end(RECLAIM_MEMCG); }

SEC("raw_tp/mm_vmscan_direct_reclaim_begin")
int raw_direct_reclaim_begin(void *ctx) { return reclaim_begin(RECLAIM_DIRECT); }
SEC("raw_tp/mm_vmscan_direct_reclaim_end")
int raw_direct_reclaim_end(void *ctx) { return reclaim_end(RECLAIM_DIRECT); }
SEC("raw_tp/mm_vmscan_memcg_reclaim_begin")
int raw_memcg_reclaim_begin(void *ctx) { return reclaim_begin(RECLAIM_MEMCG); }
SEC("raw_tp/mm_vmscan_memcg_reclaim_end")
int raw_memcg_reclaim_end(void *ctx) { return reclaim_end(RECLAIM_MEMCG); }

/* ---- memory stalls, for the fast path (tp_btf set; fentry) ---- */

/*
 * psi_memstall_enter/leave bracket each memory stall PSI counts; nested
 * pairs (a stall inside a stall: the kernel ignores the inner one) are
 * counted by depth and only the outermost is timed. A task gets storage
 * when it enters a stall while its cgroup is watched; once it has some,
 * its pairs are followed whatever is watched, so depth stays right.
 *
 * What adds up in the window is PSI's "some" for the cgroup's own tasks:
 * the time at least one of them stalls. The outermost enter counts the task
 * in the watch's `stalling`; the first one in notes when the stall began,
 * and the last one out adds the stall's part inside the window. So an
 * alert's value is stall time within at most one window before it: the
 * loop takes value / window as a lower bound of the cgroup's stall share
 * at that grain (bpf/README.md).
 *
 * A stall is added to the window when it ends, which for a long one (the
 * throttling sleep above memory.high lasts up to 2 s) is too late: the
 * first enter also starts the cgroup's timer for what the window still
 * lacks; the timer alerts if a stall is still going on then.
 */

/* The part of a stall going on since `since` that lies in w's window
 * and after what acc_mem holds already. */
static __always_inline __u64 in_window(struct watch *w, __u64 since, __u64 now)
{
	__u64 from = since > w->win_start ? since : w->win_start;

	if (from < w->covered_until)
		from = w->covered_until;
	return now > from ? now - from : 0;
}

static int stall_timer(void *map, __u64 *key, struct wtimer *wt)
{
	struct watch *w = bpf_map_lookup_elem(&watches, key);
	__u64 now, ongoing;

	if (!w || w->stalling <= 0 || !w->mem_sum_ns)
		return 0;
	now = bpf_ktime_get_ns();
	window(w, now);
	ongoing = in_window(w, w->stall_since, now);
	if (w->acc_mem + ongoing >= w->mem_sum_ns) {
		alert(w, *key, ALERT_MEM_SOME, w->acc_mem + ongoing, now);
		/* Still stalled one gap on: look again then. */
		bpf_timer_start(&wt->t, alert_gap_ns, 0);
	} else {
		bpf_timer_start(&wt->t, w->mem_sum_ns - w->acc_mem - ongoing, 0);
	}
	return 0;
}

static __always_inline void stall_begins(struct watch *w, struct mstall *m, __u64 cgid, __u64 now)
{
	struct wtimer *wt, zero = {};
	__u64 lack;

	m->counted = 1;
	m->gen = w->gen;
	m->cgid = cgid;
	if (__sync_fetch_and_add(&w->stalling, 1) > 0)
		return;
	w->stall_since = now;
	if (!w->mem_sum_ns)
		return;
	wt = bpf_map_lookup_elem(&watch_timers, &cgid);
	if (!wt) {
		/* EEXIST: another CPU made it first; either way, look it up. */
		bpf_map_update_elem(&watch_timers, &cgid, &zero, BPF_NOEXIST);
		wt = bpf_map_lookup_elem(&watch_timers, &cgid);
		if (!wt)
			return;
		bpf_timer_init(&wt->t, &watch_timers, CLOCK_MONOTONIC);
		bpf_timer_set_callback(&wt->t, stall_timer);
	}
	window(w, now);
	lack = w->acc_mem < w->mem_sum_ns ? w->mem_sum_ns - w->acc_mem : 1;
	bpf_timer_start(&wt->t, lack, 0);
}

SEC("fentry/psi_memstall_enter")
int BPF_PROG(memstall_enter)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct mstall *m = bpf_task_storage_get(&memstall_stamps, t, 0, 0);
	__u64 cgid = bpf_get_current_cgroup_id();
	struct watch *w = watched(cgid);

	if (!m) {
		if (!w)
			return 0;
		m = bpf_task_storage_get(&memstall_stamps, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!m)
			return 0;
	}
	if (m->depth++ != 0)
		return 0;
	m->ts = bpf_ktime_get_ns();
	m->counted = 0;
	if (w)
		stall_begins(w, m, cgid, m->ts);
	return 0;
}

SEC("fentry/psi_memstall_leave")
int BPF_PROG(memstall_leave)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct mstall *m = bpf_task_storage_get(&memstall_stamps, t, 0, 0);
	__u64 now, cgid;
	struct watch *w;
	bool counted;

	if (!m || m->depth == 0)
		return 0;
	if (--m->depth)
		return 0;
	now = bpf_ktime_get_ns();
	/* A counted stall ends in the watch that counted it, even if the
	 * task moved to another cgroup meanwhile. */
	cgid = m->counted ? m->cgid : bpf_get_current_cgroup_id();
	w = watched(cgid);
	if (!w) {
		m->counted = 0;
		return 0;
	}
	counted = m->counted && m->gen == w->gen;
	m->counted = 0;
	/* The last task out ends the cgroup's stall. A task not counted (it
	 * entered under an older watch) ends only its own, which counts
	 * unless counted ones are stalling: then it overlaps their stall,
	 * which counts when they end. Uncount first: the window's new total
	 * already holds this stall. */
	if (counted ? __sync_fetch_and_add(&w->stalling, -1) != 1 : w->stalling > 0)
		return 0;
	window(w, now);
	w->acc_mem += in_window(w, counted ? w->stall_since : m->ts, now);
	w->covered_until = now;
	if (w->mem_sum_ns && w->acc_mem >= w->mem_sum_ns)
		alert(w, cgid, ALERT_MEM_SOME, w->acc_mem, now);
	return 0;
}

/* ---- OOM kills: probe reads in both sets (rare event, layout varies). ---- */

static __always_inline int oom_victim(__u64 arg0)
{
	struct oom_event *e;
	struct task_struct *t;

	e = bpf_ringbuf_reserve(&oom_events, sizeof(*e), 0);
	if (!e) {
		drop(DROP_OOM_RINGBUF);
		return 0;
	}
	e->layout = oom_layout;
	e->cgid = 0;
	e->comm[0] = 0;
	if (oom_layout == 0) {
		t = (struct task_struct *)arg0;
		e->pid = BPF_CORE_READ(t, tgid);
		e->cgid = raw_task_cgid(t);
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), &t->comm);
	} else {
		/* Only the victim's pid: if the victim is current (the common case
		 * of a task OOMing itself) take its cgroup here, else user space
		 * resolves the pid. */
		e->pid = (__u32)arg0;
		if ((__u32)(bpf_get_current_pid_tgid() >> 32) == e->pid) {
			e->cgid = bpf_get_current_cgroup_id();
			bpf_get_current_comm(e->comm, sizeof(e->comm));
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/mark_victim")
int btf_mark_victim(__u64 *ctx)
{
	return oom_victim(ctx[0]);
}

SEC("raw_tp/mark_victim")
int raw_mark_victim(struct bpf_raw_tracepoint_args *ctx)
{
	return oom_victim(ctx->args[0]);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

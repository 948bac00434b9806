package governor

import (
	"errors"
	"io/fs"
	"time"
)

// Armer arms PSI triggers on cgroups (cgroup/ implements it over
// cgroup.Triggers). With one configured, the loop arms a trigger on every
// cgroup whose pressure a condition watches, so a Step runs as soon as the
// kernel sees the stall instead of at the next tick.
type Armer interface {
	Arm(cg Ref, resource string, full bool, stall, window time.Duration) error
	Disarm(id CgroupID)
}

// triggerWindow is the PSI trigger window the loop asks for: a multiple of
// 2 s works without CAP_SYS_RESOURCE.
const triggerWindow = 2 * time.Second

// defaultMaxTriggers bounds the file descriptors spent on triggers.
const defaultMaxTriggers = 256

// armSpec is one trigger to arm on each cgroup of a class.
type armSpec struct {
	resource string
	full     bool
	stall    time.Duration
}

var psiResources = [...]string{"cpu", "memory", "io"}

// Watch is what the BPF fast path watches on one cgroup's own tasks (zero
// fields are off): one run-queue wait of at least Wait, run-queue waits
// adding up to WaitSum within FastWindow, or memory stalls adding up to
// MemStall within FastWindow wakes the loop. Memory stalls are what PSI
// counts as such (reclaim, throttling above memory.high, swap-in) where
// the kernel lets BPF time them, else reclaim alone (bpf/README.md).
type Watch struct {
	Wait, WaitSum, MemStall time.Duration
}

// FastWindow is the window the fast path adds waits and stalls up in.
const FastWindow = 100 * time.Millisecond

// Watcher is the BPF fast path (bpf/ implements it): in-kernel thresholds
// on watched cgroups whose crossing wakes the loop through Wake, at most
// once per cgroup and kind (run queue, memory) per alert gap
// (bpf.Options.AlertGap).
type Watcher interface {
	Notifier
	Watch(cg Ref, w Watch) error
	Unwatch(id CgroupID)
}

// risingConds calls fn for each condition of the policy that wakes the
// loop when it rises (Op Above), with the class whose cgroups it reads:
// the condition's class, or the controller's target for conditions on the
// acted-on cgroup itself.
func risingConds(p *Policy, ctrls []controller, fn func(class string, c Condition)) {
	visit := func(target string, conds []Condition) {
		for _, c := range conds {
			if c.Op != Above {
				continue
			}
			switch c.Scope {
			case ScopeClass:
				fn(c.Class, c)
			case ScopeSelf:
				fn(target, c)
			}
		}
	}
	for _, c := range ctrls {
		if tr := c.trigger(); tr != nil {
			visit(c.target(), tr.t.When)
		}
	}
	if p.Admission != nil {
		visit("", p.Admission.Trigger.When)
	}
}

// fastSpecs derives, per class, the fast path's thresholds: a run-queue
// quantile condition (runq.p50/p90/p99 above V) watches for one wait of V;
// a cpu.*.stall or runq.delay condition above P% for waits adding up to
// P% of FastWindow; a memory.*.stall or reclaim.stall condition above P%
// for memory stalls adding up to P% of FastWindow. The lowest threshold wins.
// Values are the cgroup's own tasks' (BPF counts per cgroup, not per
// subtree).
//
// Only conditions a Step woken early can satisfy early are watched: on a
// signal measured over the time since the previous Step (not the kernel's
// avg10/60/300, which move every 2 s whenever the loop looks), with a
// `for` no longer than the tick (a 5 s `for` gains at most a tick).
func fastSpecs(p *Policy, ctrls []controller) map[string]Watch {
	out := make(map[string]Watch)
	lower := func(d *time.Duration, v time.Duration) {
		if *d == 0 || v < *d {
			*d = v
		}
	}
	share := func(pct float64) time.Duration {
		return max(time.Duration(pct/100*float64(FastWindow)), time.Millisecond)
	}
	tick := p.Tick
	if tick <= 0 {
		tick = time.Second
	}
	risingConds(p, ctrls, func(class string, c Condition) {
		if c.For > tick {
			return
		}
		w := out[class]
		switch c.Signal {
		case RunqP50, RunqP90, RunqP99:
			lower(&w.Wait, max(time.Duration(c.Value*float64(time.Second)), 100*time.Microsecond))
		case RunqDelay, CPUSomeStall, CPUFullStall:
			lower(&w.WaitSum, share(c.Value))
		case ReclaimStall, MemorySomeStall, MemoryFullStall:
			lower(&w.MemStall, share(c.Value))
		default:
			return
		}
		out[class] = w
	})
	return out
}

// watchSpecs derives, per class, the PSI triggers that wake the loop: one per
// rising pressure condition (Op Above on a PSI signal) that reads the class,
// or reads the acted-on cgroup of a controller targeting it. The stall is
// the threshold's share of the window (10% → 200 ms per 2 s), the lowest
// threshold per resource and line winning.
func watchSpecs(p *Policy, ctrls []controller) map[string][]armSpec {
	out := make(map[string][]armSpec)
	risingConds(p, ctrls, func(class string, c Condition) {
		if c.Signal > IOFullStall || c.Signal.Unit() != UnitPercent {
			return
		}
		res := psiResources[int(c.Signal)/8]
		full := int(c.Signal)%8 >= 4
		stall := time.Duration(c.Value / 100 * float64(triggerWindow))
		stall = max(stall, 10*time.Millisecond)
		specs := out[class]
		for i := range specs {
			if specs[i].resource == res && specs[i].full == full {
				specs[i].stall = min(specs[i].stall, stall)
				return
			}
		}
		out[class] = append(specs, armSpec{resource: res, full: full, stall: stall})
	})
	return out
}

// arm arms the PSI triggers and the fast-path watch a newly seen cgroup's
// class calls for.
func (l *Loop) arm(cg *cgState) {
	if cg.class < 0 || cg.armTried {
		return
	}
	cg.armTried = true
	l.watchFast(cg)
	if l.cfg.Armer == nil {
		return
	}
	specs := l.watch[l.policy.Classes[cg.class].Name]
	if len(specs) == 0 {
		return
	}
	limit := l.cfg.MaxTriggers
	if limit <= 0 {
		limit = defaultMaxTriggers
	}
	if l.armed+len(specs) > limit {
		l.warnOnce("armer-limit", "PSI trigger limit reached; further cgroups are seen at the tick only", "limit", limit)
		return
	}
	for _, s := range specs {
		if err := l.cfg.Armer.Arm(cg.ref, s.resource, s.full, s.stall, triggerWindow); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrGone) {
				// Removed since the snapshot: the next Step forgets it.
				l.log.Debug("cgroup gone before its PSI trigger was armed", "cgroup", cg.ref.String())
				break
			}
			l.warnOnceCG(cg, "arm:"+s.resource, "cannot arm PSI trigger; relying on the tick", "cgroup", cg.ref.String(), "resource", s.resource, "error", err)
			continue
		}
		l.armed++
		cg.armed = true
		cg.nArmed++
	}
}

// maxWatches bounds the cgroups the fast path watches (the BPF map's size,
// bpf.DefaultMaxWatches).
const maxWatches = 256

// watchFast gives cg to the fast path if its class calls for it.
func (l *Loop) watchFast(cg *cgState) {
	if l.cfg.Watcher == nil {
		return
	}
	w, ok := l.fast[l.policy.Classes[cg.class].Name]
	if !ok {
		return
	}
	if l.watched >= maxWatches {
		l.warnOnce("watch-limit", "BPF fast path limit reached; further cgroups are seen at the tick only", "limit", maxWatches)
		return
	}
	if err := l.cfg.Watcher.Watch(cg.ref, w); err != nil {
		l.warnOnceCG(cg, "watch", "cannot watch cgroup on the BPF fast path; relying on the tick", "cgroup", cg.ref.String(), "error", err)
		return
	}
	l.watched++
	cg.watched = true
}

// disarm removes a cgroup's triggers and fast-path watch.
func (l *Loop) disarm(cg *cgState) {
	if cg.watched {
		l.cfg.Watcher.Unwatch(cg.ref.ID)
		l.watched--
		cg.watched = false
	}
	if l.cfg.Armer == nil || !cg.armed {
		cg.armTried = false
		return
	}
	l.cfg.Armer.Disarm(cg.ref.ID)
	l.armed -= cg.nArmed
	cg.armed, cg.armTried, cg.nArmed = false, false, 0
}

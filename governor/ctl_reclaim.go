package governor

import (
	"fmt"
)

// reclaimCtl: proactive reclaim (senpai/TMO style).

type reclaimCtl struct {
	c  *ReclaimController
	st map[CgroupID]*reclaimState
}

func (r *reclaimCtl) name() string { return r.c.Name }

func (r *reclaimCtl) target() string { return r.c.Target }

func (r *reclaimCtl) forget(id CgroupID) { delete(r.st, id) }

func (r *reclaimCtl) needs() needs {
	return needs{controllers: []string{"memory"}, reclaim: true}
}

func (r *reclaimCtl) kind() string { return "reclaim" }

func (r *reclaimCtl) trigger() *triggers { return nil }

func (r *reclaimCtl) reads(string) bool { return false }

func (r *reclaimCtl) next(l *Loop, cg *cgState) string {
	if why := r.backingOff(cg.ref.ID); why != "" {
		return why
	}
	p, ok := cg.sample.Get(r.c.Signal)
	if !ok {
		return "nothing: " + r.c.Signal.Name() + " is not available for this cgroup"
	}
	if p >= r.c.Goal {
		return fmt.Sprintf("back off: %s=%s is at or above the goal %s", r.c.Signal.Name(), formatSignal(r.c.Signal, p), formatSignal(r.c.Signal, r.c.Goal))
	}
	return fmt.Sprintf("reclaim a step every %s: %s=%s is below the goal %s", r.c.Interval, r.c.Signal.Name(), formatSignal(r.c.Signal, p), formatSignal(r.c.Signal, r.c.Goal))
}

func (r *reclaimCtl) observe(*Loop, *View) {}

// wants: the memory accounting of each cgroup due a look, if the
// actuator can read it.
func (r *reclaimCtl) wants(l *Loop, v *View, w *wants) {
	if l.memReader() == nil {
		return // nothing to read (or dry-run: nothing to measure)
	}
	for _, s := range v.Members[r.c.Target] {
		if cg := l.cgs[s.ID]; r.due(s, v.Now) && l.allowed(cg) {
			w.memory(cg)
		}
	}
}

func (r *reclaimCtl) decide(l *Loop, v *View) []Intent {
	var out []Intent
	for _, s := range v.Members[r.c.Target] {
		cg := l.cgs[s.ID]
		if !l.allowed(cg) {
			continue
		}
		p := r.plan(l, cg, s, v.Now) // reclaim.go: step size, backoff
		// A write that outlived its deadline is reported at the next look
		// (plan read the cgroup's accounting then), with or without a
		// new write.
		var earlier *EarlierReclaim
		if st := r.st[s.ID]; st != nil && st.slow != nil && st.last.Equal(v.Now) {
			earlier, st.slow = st.slow, nil
		}
		if p.amount == 0 && earlier == nil {
			continue
		}
		out = append(out, Intent{Kind: IntentReclaim, Controller: r.c.Name, Rule: "reclaim", Cgroup: cg.ref, Value: p.amount, Reason: p.why,
			Reclaim: &ReclaimBasis{Usage: p.usage, Pressure: p.pressure, Before: p.before, Measured: p.measured, Earlier: earlier}})
	}
	return out
}

// planOf is the plan an intent of this controller carries.
func planOf(in *Intent) reclaimPlan {
	p := reclaimPlan{amount: in.Value, why: in.Reason}
	if b := in.Reclaim; b != nil {
		p.usage, p.pressure, p.before, p.measured = b.Usage, b.Pressure, b.Before, b.Measured
	}
	return p
}

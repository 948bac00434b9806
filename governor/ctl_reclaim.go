package governor

import (
	"context"
	"errors"
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

func (r *reclaimCtl) step(ctx context.Context, l *Loop, v *view) {
	for _, s := range v.members[r.c.Target] {
		cg := l.cgs[s.ID]
		if !l.allowed(cg) {
			continue
		}
		p := r.plan(ctx, l, cg, s, v.now) // reclaim.go: step size, backoff
		if p.amount == 0 {
			continue
		}
		amount := p.amount
		err := l.exec(ctx, effect{kind: effReclaim, cg: cg, value: amount, owner: r.c.Name})
		if errors.Is(err, errRefused) {
			continue
		}
		l.result.Actions++
		res := r.measure(ctx, l, cg, p, err) // reclaim.go: what it achieved
		if err != nil {
			l.result.Errors++
			l.emit(Action{Controller: r.c.Name, Cgroup: cg.ref, Kind: "reclaim", Knob: "memory.reclaim", New: FormatBytes(amount), Err: err, Reclaim: res})
			continue
		}
		l.emit(Action{Controller: r.c.Name, Cgroup: cg.ref, Kind: "reclaim", Knob: "memory.reclaim", Old: FormatBytes(p.usage), New: FormatBytes(amount), Reason: p.why, Reclaim: res})
	}
}

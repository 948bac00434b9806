package governor

import (
	"context"
	"fmt"
)

// memHighCtl: adaptive memory.high.

type memHighCtl struct {
	c     *MemoryHighController
	trig  *triggers
	relax map[CgroupID][]condState
	rate  *rateLimit
}

func (m *memHighCtl) name() string { return m.c.Name }

func (m *memHighCtl) target() string { return m.c.Target }

func (m *memHighCtl) forget(id CgroupID) {
	m.trig.forget(id)
	delete(m.relax, id)
}

func (m *memHighCtl) needs() needs { return needs{controllers: []string{"memory"}} }

func (m *memHighCtl) kind() string { return "memory_high" }

func (m *memHighCtl) trigger() *triggers { return m.trig }

func (m *memHighCtl) reads(class string) bool {
	return condsRead(class, m.c.Trigger.When, m.c.Trigger.Recover, m.c.Relax)
}

func (m *memHighCtl) next(l *Loop, cg *cgState) string {
	if m.trig.state(cg.ref.ID).active {
		return fmt.Sprintf("raise memory.high by %s per %s", describeStep(m.c.Step), m.c.Limits.Cooldown)
	}
	return "lower memory.high toward usage plus headroom once relax holds: " + describeConds(m.c.Relax, m.relax[cg.ref.ID])
}

func (m *memHighCtl) step(ctx context.Context, l *Loop, v *view) {
	if !m.trig.perCG {
		m.trig.global.update(v, m.trig.t, nil)
	}
	hi := m.c.Limits.Max
	if hi <= 0 {
		hi = Unlimited
	}
	for _, s := range v.members[m.c.Target] {
		cg := l.cgs[s.ID]
		ts := m.trig.state(s.ID)
		if m.trig.perCG {
			ts.update(v, m.trig.t, s)
		}
		rs := m.relax[s.ID]
		if rs == nil {
			rs = make([]condState, len(m.c.Relax))
			m.relax[s.ID] = rs
		}
		relaxed := len(m.c.Relax) > 0
		for i := range m.c.Relax {
			if !rs[i].update(v, &m.c.Relax[i], s) {
				relaxed = false
			}
		}
		usage, ok := s.Get(MemoryCurrent)
		if !ok || !l.mayTouch(cg, MemoryHigh) {
			continue
		}
		mk := l.managedBy(cg, MemoryHigh)
		if mk != nil && (mk.owner != m.c.Name || (m.c.Limits.Cooldown > 0 && v.now.Sub(mk.changed) < m.c.Limits.Cooldown)) {
			continue
		}
		cur, ok := l.current(ctx, cg, MemoryHigh)
		if !ok {
			continue
		}
		switch {
		case ts.active:
			if cur == Unlimited {
				continue
			}
			next := cur + stepSize(m.c.Step, cur)
			if hi != Unlimited {
				next = min(next, hi)
			}
			if next <= cur || !m.rate.allow(v.now) {
				continue
			}
			why := "pressure high: " + ts.describe(m.trig.t, false)
			// Raised back up to an original we had lowered from: stop
			// managing and restore it exactly. (An original below the
			// current value, a tight limit being raised, is no reason.)
			if mk != nil && mk.orig.Value > cur && next >= mk.orig.Value {
				l.release(cg, MemoryHigh, m.c.Name, why)
				continue
			}
			l.set(cg, MemoryHigh, next, m.c.Name, why)
		case relaxed:
			u := int64(usage)
			goal := u + stepSize(m.c.Headroom, u)
			goal = max(goal, m.c.Limits.Min)
			if hi != Unlimited {
				goal = min(goal, hi)
			}
			if cur != Unlimited && cur <= goal {
				continue
			}
			next := goal
			if cur != Unlimited {
				next = max(goal, cur-stepSize(m.c.Step, cur))
			}
			if m.c.MaxBelowCurrent > 0 {
				next = max(next, u-m.c.MaxBelowCurrent)
			} else {
				next = max(next, u-u/20)
			}
			if next >= cur || !m.rate.allow(v.now) {
				continue
			}
			l.set(cg, MemoryHigh, next, m.c.Name, fmt.Sprintf("pressure low, memory.current=%s: %s", FormatBytes(u), describeConds(m.c.Relax, rs)))
		}
	}
}

package governor

import (
	"fmt"
	"time"
)

// memHighCtl: adaptive memory.high.

type memHighCtl struct {
	c     *MemoryHighController
	trig  *triggers
	relax map[CgroupID]*relaxState
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
	return "lower memory.high toward usage plus headroom once relax holds: " + describeConds(m.c.Relax, m.relaxConds(cg.ref.ID))
}

func (m *memHighCtl) observe(_ *Loop, v *View) {
	if !m.trig.perCG {
		m.trig.global.update(v, m.trig.t, nil)
	}
	for _, s := range v.Members[m.c.Target] {
		if m.trig.perCG {
			m.trig.state(s.ID).update(v, m.trig.t, s)
		}
		rs := m.relax[s.ID]
		if rs == nil {
			rs = &relaxState{conds: make([]condState, len(m.c.Relax))}
			m.relax[s.ID] = rs
		}
		rs.holds = len(m.c.Relax) > 0
		for i := range m.c.Relax {
			if !rs.conds[i].update(v, &m.c.Relax[i], s) {
				rs.holds = false
			}
		}
	}
}

// relaxState is a cgroup's relax conditions and whether all of them hold.
type relaxState struct {
	conds []condState
	holds bool
}

// acts reports whether memory.high of s may move this tick, and the
// governor's record of it (nil if it does not hold it).
func (m *memHighCtl) acts(l *Loop, now time.Time, s *Sample) (mk *managedKnob, ok bool) {
	cg := l.cgs[s.ID]
	if _, has := s.Get(MemoryCurrent); !has || !l.mayTouch(cg, MemoryHigh) {
		return nil, false
	}
	mk = l.managedBy(cg, MemoryHigh)
	if mk != nil && (mk.owner != m.c.Name || (m.c.Limits.Cooldown > 0 && now.Sub(mk.changed) < m.c.Limits.Cooldown)) {
		return nil, false
	}
	return mk, true
}

func (m *memHighCtl) wants(l *Loop, v *View, w *wants) {
	for _, s := range v.Members[m.c.Target] {
		if mk, ok := m.acts(l, v.Now, s); ok && mk == nil {
			w.knob(l.cgs[s.ID], MemoryHigh)
		}
	}
}

func (m *memHighCtl) decide(l *Loop, v *View) []Intent {
	var out []Intent
	for _, s := range v.Members[m.c.Target] {
		mk, ok := m.acts(l, v.Now, s)
		if !ok {
			continue
		}
		cg := l.cgs[s.ID]
		cur, ok := l.current(cg, MemoryHigh)
		if !ok {
			continue
		}
		in := Intent{Kind: IntentWrite, Controller: m.c.Name, Rule: "memory_high", Cgroup: cg.ref, Knob: MemoryHigh}
		switch {
		case m.trig.state(s.ID).active:
			ok = m.raise(v.Now, s.ID, cur, mk, &in)
		case m.relax[s.ID].holds:
			usage, _ := s.Get(MemoryCurrent)
			ok = m.lower(v.Now, s.ID, int64(usage), cur, &in)
		default:
			ok = false
		}
		if ok {
			out = append(out, in)
		}
	}
	return out
}

// ceiling is limits.max, Unlimited if none.
func (m *memHighCtl) ceiling() int64 {
	if m.c.Limits.Max <= 0 {
		return Unlimited
	}
	return m.c.Limits.Max
}

// raise fills in one step up from cur under pressure; false: no move.
func (m *memHighCtl) raise(now time.Time, id CgroupID, cur int64, mk *managedKnob, in *Intent) bool {
	if cur == Unlimited {
		return false
	}
	next := min(cur+stepSize(m.c.Step, cur), m.ceiling())
	if next <= cur || !m.rate.allow(now) {
		return false
	}
	in.Value, in.Reason = next, "pressure high: "+m.trig.state(id).describe(m.trig.t, false)
	// Raised back up to an original we had lowered from: stop managing
	// and restore it exactly. (An original below the current value, a
	// tight limit being raised, is no reason.)
	if mk != nil && mk.orig.Value > cur && next >= mk.orig.Value {
		in.Kind, in.Value = IntentRestore, 0
	}
	return true
}

// lower fills in one step down from cur toward usage plus headroom while
// the relax conditions hold; false: no move.
func (m *memHighCtl) lower(now time.Time, id CgroupID, u, cur int64, in *Intent) bool {
	hi := m.ceiling()
	goal := min(max(u+stepSize(m.c.Headroom, u), m.c.Limits.Min), hi)
	if cur != Unlimited && cur <= goal {
		return false
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
	if next >= cur || !m.rate.allow(now) {
		return false
	}
	in.Value = next
	in.Reason = fmt.Sprintf("pressure low, memory.current=%s: %s", FormatBytes(u), describeConds(m.c.Relax, m.relax[id].conds))
	return true
}

func (m *memHighCtl) relaxConds(id CgroupID) []condState {
	if rs := m.relax[id]; rs != nil {
		return rs.conds
	}
	return nil
}

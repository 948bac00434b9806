package governor

import (
	"fmt"
	"time"
)

// controller is one compiled policy controller.
type controller interface {
	name() string
	kind() string // the policy block: "rule", "suppress", "protect", ...
	target() string
	needs() needs
	// observe updates the controller's own state (triggers, conditions)
	// from the tick's signals.
	observe(l *Loop, v *View)
	// wants names what decide will read of the kernel this tick; the loop
	// reads it first (prepare).
	wants(l *Loop, v *View, w *wants)
	// decide returns what should happen, reading only the view, the
	// loop's ledger and what prepare read. It does no I/O.
	decide(l *Loop, v *View) []Intent
	forget(id CgroupID)
	trigger() *triggers      // nil for controllers without one
	reads(class string) bool // whether its conditions read that class
	next(l *Loop, cg *cgState) string
}

// condsRead reports whether any condition reads class.
func condsRead(class string, lists ...[]Condition) bool {
	for _, cs := range lists {
		for _, c := range cs {
			if c.Scope == ScopeClass && c.Class == class {
				return true
			}
		}
	}
	return false
}

type needs struct {
	controllers []string
	reclaim     bool
	freeze      bool
}

func buildControllers(p *Policy) []controller {
	var out []controller
	for i := range p.Protect {
		out = append(out, &protectCtl{c: &p.Protect[i]})
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		out = append(out, &knobCtl{
			ctlName: r.Name, ctlKind: "rule", tgt: r.Target, trig: newGuardedTriggers(&r.Trigger, r.Target),
			knobs: []knobMove{{knob: r.Knob, down: r.Down, step: r.Step, lim: r.Limits}},
			rate:  newRateLimit(r.Limits.MaxPerMinute),
			blame: newBlameState(r.Blame, r.BlameMinShare),
		})
	}
	for i := range p.Suppress {
		s := &p.Suppress[i]
		kc := &knobCtl{ctlName: s.Name, ctlKind: "suppress", tgt: s.Target, trig: newGuardedTriggers(&s.Trigger, s.Target),
			blame: newBlameState(s.Blame, s.BlameMinShare)}
		for _, k := range s.Knobs {
			kc.knobs = append(kc.knobs, knobMove{knob: k.Knob, down: true, step: k.Step, lim: k.Limits})
			if kc.rate == nil && k.Limits.MaxPerMinute > 0 {
				kc.rate = newRateLimit(k.Limits.MaxPerMinute)
			}
		}
		out = append(out, kc)
	}
	for i := range p.MemHigh {
		m := &p.MemHigh[i]
		out = append(out, &memHighCtl{c: m, trig: newTriggers(&m.Trigger), relax: make(map[CgroupID]*relaxState), rate: newRateLimit(m.Limits.MaxPerMinute)})
	}
	for i := range p.Reclaim {
		out = append(out, &reclaimCtl{c: &p.Reclaim[i], st: make(map[CgroupID]*reclaimState)})
	}
	for i := range p.LastResort {
		lr := &p.LastResort[i]
		out = append(out, &lastResortCtl{c: lr, trig: newTriggers(&lr.Trigger)})
	}
	return out
}

// rateLimit caps actions per minute (sliding window).
type rateLimit struct {
	max   int
	times []time.Time
}

func newRateLimit(perMinute int) *rateLimit {
	if perMinute <= 0 {
		return nil
	}
	return &rateLimit{max: perMinute}
}

// allow reports whether one more action fits and records it.
func (r *rateLimit) allow(now time.Time) bool {
	if r == nil {
		return true
	}
	cut := 0
	for cut < len(r.times) && now.Sub(r.times[cut]) >= time.Minute {
		cut++
	}
	r.times = r.times[cut:]
	if len(r.times) >= r.max {
		return false
	}
	r.times = append(r.times, now)
	return true
}

// hardFloor is the smallest value the kernel accepts for a knob.
func hardFloor(k Knob) int64 {
	switch k {
	case CPUWeight, IOWeight:
		return 1
	case CPUMax:
		return 10_000 // 1% of a CPU: 1 ms of quota per 100 ms period
	}
	return 0
}

// hardCeil is the largest finite value the kernel accepts for a knob.
func hardCeil(k Knob) int64 {
	switch k {
	case CPUWeight, IOWeight:
		return 10_000
	case CPUIdle:
		return 1
	}
	return Unlimited
}

// base is what a percent step of an unlimited knob is a percentage of.
func (l *Loop) base(cg *cgState, k Knob) int64 {
	switch k {
	case CPUMax:
		return int64(l.cfg.NumCPU) * 1_000_000
	case MemoryHigh, MemoryMax, MemoryLow, MemoryMin:
		if cg.sample != nil {
			if v, ok := cg.sample.Get(MemoryCurrent); ok {
				return int64(v)
			}
		}
	}
	return 0
}

// stepSize is the magnitude of one step from value from.
func stepSize(st Step, from int64) int64 {
	if st.Percent != 0 {
		d := int64(float64(from) * st.Percent / 100)
		if d < 1 {
			d = 1
		}
		return d
	}
	return st.Amount
}

func clamp(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func describeStep(st Step) string {
	if st.Percent != 0 {
		return fmt.Sprintf("%g%%", st.Percent)
	}
	return fmt.Sprint(st.Amount)
}

func describeConds(cs []Condition, st []condState) string {
	if len(st) < len(cs) {
		st = make([]condState, len(cs))
	}
	ts := &triggerState{when: st}
	return ts.describe(&Trigger{When: cs}, false)
}

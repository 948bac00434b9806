package governor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// controller is one compiled policy controller.
type controller interface {
	name() string
	kind() string // the policy block: "rule", "suppress", "protect", ...
	target() string
	needs() needs
	step(ctx context.Context, l *Loop, v *view)
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
			ctlName: r.Name, ctlKind: "rule", tgt: r.Target, trig: newTriggers(&r.Trigger),
			knobs: []knobMove{{knob: r.Knob, down: r.Down, step: r.Step, lim: r.Limits}},
			rate:  newRateLimit(r.Limits.MaxPerMinute),
		})
	}
	for i := range p.Suppress {
		s := &p.Suppress[i]
		kc := &knobCtl{ctlName: s.Name, ctlKind: "suppress", tgt: s.Target, trig: newTriggers(&s.Trigger)}
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
		out = append(out, &memHighCtl{c: m, trig: newTriggers(&m.Trigger), relax: make(map[CgroupID][]condState), rate: newRateLimit(m.Limits.MaxPerMinute)})
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

// ---------------------------------------------------------------------------
// knobCtl: generic rules and batch suppression. While the trigger is active
// each knob moves one step per cooldown toward its bound; once recovered it
// moves back one step per cooldown and is restored when it reaches its
// original value.

type knobMove struct {
	knob Knob
	down bool
	step Step
	lim  Limits
}

type knobCtl struct {
	ctlName string
	ctlKind string
	tgt     string
	trig    *triggers
	knobs   []knobMove
	rate    *rateLimit
}

func (c *knobCtl) kind() string       { return c.ctlKind }
func (c *knobCtl) trigger() *triggers { return c.trig }
func (c *knobCtl) reads(class string) bool {
	return condsRead(class, c.trig.t.When, c.trig.t.Recover)
}

func (c *knobCtl) next(l *Loop, cg *cgState) string {
	ts := c.trig.state(cg.ref.ID)
	var out []string
	for i := range c.knobs {
		km := &c.knobs[i]
		next, release, ok := c.proposal(context.Background(), l, cg, ts, km)
		switch {
		case !ok && ts.active:
			out = append(out, km.knob.String()+": nothing (at its bound, or not available)")
		case !ok:
			out = append(out, km.knob.String()+": nothing while the trigger is inactive")
		case release:
			out = append(out, km.knob.String()+": restore the original value")
		default:
			out = append(out, fmt.Sprintf("%s: set to %s", km.knob, km.knob.FormatValue(next)))
		}
	}
	return strings.Join(out, "; ")
}

func (c *knobCtl) name() string   { return c.ctlName }
func (c *knobCtl) target() string { return c.tgt }
func (c *knobCtl) forget(id CgroupID) {
	c.trig.forget(id)
}
func (c *knobCtl) needs() needs {
	n := needs{}
	seen := map[string]bool{}
	for _, k := range c.knobs {
		if ctl := k.knob.Controller(); !seen[ctl] {
			seen[ctl] = true
			n.controllers = append(n.controllers, ctl)
		}
	}
	return n
}

func (c *knobCtl) step(ctx context.Context, l *Loop, v *view) {
	if !c.trig.perCG {
		if active, changed := c.trig.global.update(v, c.trig.t, nil); changed {
			c.logTransition(l, active, c.trig.global, "")
		}
	}
	for _, s := range v.members[c.tgt] {
		cg := l.cgs[s.ID]
		ts := c.trig.state(s.ID)
		if c.trig.perCG {
			if active, changed := ts.update(v, c.trig.t, s); changed {
				c.logTransition(l, active, ts, cg.ref.String())
			}
		}
		for i := range c.knobs {
			c.move(ctx, l, v.now, cg, ts, &c.knobs[i])
		}
	}
}

func (c *knobCtl) logTransition(l *Loop, active bool, ts *triggerState, cgroup string) {
	args := []interface{}{"controller", c.ctlName, "target", c.tgt}
	if cgroup != "" {
		args = append(args, "cgroup", cgroup)
	}
	if active {
		l.log.Info("trigger active", append(args, "because", ts.describe(c.trig.t, false))...)
	} else {
		l.log.Info("trigger recovered; giving limits back step by step", append(args, "because", ts.describe(c.trig.t, true))...)
	}
}

func (c *knobCtl) move(ctx context.Context, l *Loop, now time.Time, cg *cgState, ts *triggerState, km *knobMove) {
	k := km.knob
	if m := l.managedBy(cg, k); m != nil && (m.owner != c.ctlName || (km.lim.Cooldown > 0 && now.Sub(m.changed) < km.lim.Cooldown)) {
		return
	}
	next, release, ok := c.proposal(ctx, l, cg, ts, km)
	if !ok {
		return
	}
	if release {
		l.release(cg, k, c.ctlName, "recovered: "+ts.describe(c.trig.t, true))
		return
	}
	if ts.active && !c.rate.allow(now) {
		l.warnOnce("rate:"+c.ctlName, "rate cap reached; skipping actions this minute", "controller", c.ctlName, "max_per_minute", km.lim.MaxPerMinute)
		return
	}
	why := ts.describe(c.trig.t, false)
	if !ts.active {
		why = "recovered: " + ts.describe(c.trig.t, true)
	}
	l.set(cg, k, next, c.ctlName, why)
}

// proposal computes the knob's next value: one step toward the bound while
// the trigger is active; once recovered, one step back toward the original
// (a step of the original's size, so a long squeeze is undone in a few
// steps) and finally the original itself (release).
func (c *knobCtl) proposal(ctx context.Context, l *Loop, cg *cgState, ts *triggerState, km *knobMove) (next int64, release, ok bool) {
	k := km.knob
	m := l.managedBy(cg, k)
	if m != nil && m.owner != c.ctlName {
		return 0, false, false
	}
	lo := max(km.lim.Min, hardFloor(k))
	hi := km.lim.Max
	if hi <= 0 {
		hi = Unlimited
	}
	hi = min(hi, hardCeil(k))
	if ts.active {
		if !l.mayTouch(cg, k) {
			return 0, false, false
		}
		cur, ok := l.current(ctx, cg, k)
		if !ok {
			return 0, false, false
		}
		from := cur
		if cur == Unlimited {
			if from = l.base(cg, k); from == 0 {
				return 0, false, false
			}
		}
		if km.down {
			next = clamp(from-stepSize(km.step, from), lo, hi)
			return next, false, next < cur
		}
		if from > Unlimited-stepSize(km.step, from) {
			next = Unlimited
		} else {
			next = clamp(from+stepSize(km.step, from), lo, hi)
		}
		return next, false, next > cur
	}
	if m == nil {
		return 0, false, false
	}
	orig := m.orig.Value
	ref := orig
	if orig == Unlimited {
		ref = l.base(cg, k)
	}
	d := stepSize(km.step, ref)
	if km.down {
		next = m.written + d
		return next, next >= ref || m.written >= orig, true
	}
	next = m.written - d
	return next, next <= orig, true
}

// ---------------------------------------------------------------------------
// protectCtl sets memory.low / memory.min for a class.

type protectCtl struct{ c *ProtectController }

func (p *protectCtl) name() string       { return p.c.Name }
func (p *protectCtl) target() string     { return p.c.Target }
func (p *protectCtl) forget(id CgroupID) {}
func (p *protectCtl) needs() needs       { return needs{controllers: []string{"memory"}} }
func (p *protectCtl) kind() string       { return "protect" }
func (p *protectCtl) trigger() *triggers { return nil }
func (p *protectCtl) reads(string) bool  { return false }
func (p *protectCtl) next(l *Loop, cg *cgState) string {
	var out []string
	if p.c.Low > 0 {
		out = append(out, "keep memory.low at "+FormatBytes(p.c.Low))
	}
	if p.c.Min > 0 {
		out = append(out, "keep memory.min at "+FormatBytes(p.c.Min))
	}
	return strings.Join(out, "; ")
}

func (p *protectCtl) step(ctx context.Context, l *Loop, v *view) {
	for _, s := range v.members[p.c.Target] {
		cg := l.cgs[s.ID]
		for _, kv := range [...]struct {
			k Knob
			v int64
		}{{MemoryLow, p.c.Low}, {MemoryMin, p.c.Min}} {
			if kv.v == 0 || !l.mayProtect(cg, kv.k) {
				continue
			}
			cur, ok := l.current(ctx, cg, kv.k)
			if !ok || cur == kv.v {
				continue
			}
			if m := l.managedBy(cg, kv.k); m == nil && cur > kv.v {
				continue // already protected more than the policy asks
			}
			l.set(cg, kv.k, kv.v, p.c.Name, fmt.Sprintf("protect %s=%s", kv.k, kv.k.FormatValue(kv.v)))
		}
	}
}

// ---------------------------------------------------------------------------
// reclaimCtl: proactive reclaim (senpai/TMO style).

type reclaimCtl struct {
	c  *ReclaimController
	st map[CgroupID]*reclaimState
}

func (r *reclaimCtl) name() string       { return r.c.Name }
func (r *reclaimCtl) target() string     { return r.c.Target }
func (r *reclaimCtl) forget(id CgroupID) { delete(r.st, id) }
func (r *reclaimCtl) needs() needs {
	return needs{controllers: []string{"memory"}, reclaim: true}
}
func (r *reclaimCtl) kind() string       { return "reclaim" }
func (r *reclaimCtl) trigger() *triggers { return nil }
func (r *reclaimCtl) reads(string) bool  { return false }
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

// ---------------------------------------------------------------------------
// memHighCtl: adaptive memory.high.

type memHighCtl struct {
	c     *MemoryHighController
	trig  *triggers
	relax map[CgroupID][]condState
	rate  *rateLimit
}

func (m *memHighCtl) name() string   { return m.c.Name }
func (m *memHighCtl) target() string { return m.c.Target }
func (m *memHighCtl) forget(id CgroupID) {
	m.trig.forget(id)
	delete(m.relax, id)
}
func (m *memHighCtl) needs() needs       { return needs{controllers: []string{"memory"}} }
func (m *memHighCtl) kind() string       { return "memory_high" }
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

// ---------------------------------------------------------------------------
// lastResortCtl: freeze the worst cgroup of a class, kill it after a grace
// period if the trigger still holds, thaw it if the trigger recovers.

type lastResortCtl struct {
	c      *LastResortController
	trig   *triggers
	victim *cgState
	since  time.Time
	quiet  time.Time // no new victim before this
}

func (r *lastResortCtl) name() string   { return r.c.Name }
func (r *lastResortCtl) target() string { return r.c.Target }
func (r *lastResortCtl) forget(id CgroupID) {
	r.trig.forget(id)
	if r.victim != nil && r.victim.ref.ID == id {
		r.victim = nil
	}
}
func (r *lastResortCtl) needs() needs       { return needs{freeze: true} }
func (r *lastResortCtl) kind() string       { return "last_resort" }
func (r *lastResortCtl) trigger() *triggers { return r.trig }
func (r *lastResortCtl) reads(class string) bool {
	return condsRead(class, r.c.Trigger.When, r.c.Trigger.Recover)
}
func (r *lastResortCtl) next(l *Loop, cg *cgState) string {
	if r.victim != nil && r.victim.ref.ID == cg.ref.ID {
		if r.c.Kill {
			return fmt.Sprintf("frozen; killed at %s unless the trigger recovers", r.since.Add(r.c.Grace).Format(time.RFC3339))
		}
		return "frozen until the trigger recovers"
	}
	return fmt.Sprintf("freeze the cgroup of the class with the largest %s (preferred ones first, avoided ones last) when the trigger is active", r.c.Rank.Signal().Name())
}

func (r *lastResortCtl) step(ctx context.Context, l *Loop, v *view) {
	var cands []candidate
	if !r.trig.perCG {
		if active, changed := r.trig.global.update(v, r.trig.t, nil); changed && active {
			l.log.Warn("last-resort trigger active", "controller", r.c.Name, "because", r.trig.global.describe(r.trig.t, false))
		}
	}
	for _, s := range v.members[r.c.Target] {
		ts := r.trig.state(s.ID)
		if r.trig.perCG {
			ts.update(v, r.trig.t, s)
		}
		cg := l.cgs[s.ID]
		if r.handedBack(cg, ts) {
			continue
		}
		if !ts.active || !s.Populated || !l.allowed(cg) {
			continue
		}
		cands = append(cands, candidate{cg: cg, ts: ts})
	}

	if r.victim != nil {
		if l.cgs[r.victim.ref.ID] == nil {
			r.victim = nil
			return
		}
		ts := r.trig.state(r.victim.ref.ID)
		f := l.frozen[r.victim.ref.ID]
		if f == nil {
			// Thawed by someone else (checkManaged handed it back): this
			// episode neither kills nor freezes it again.
			r.victim = nil
			return
		}
		switch {
		case !ts.active:
			l.thaw(ctx, f, "recovered: "+ts.describe(r.trig.t, true))
			r.victim = nil
		case r.c.Kill && v.now.Sub(r.since) >= r.c.Grace:
			err := l.exec(ctx, effect{kind: effKill, cg: r.victim, owner: r.c.Name})
			if errors.Is(err, errRefused) {
				return // not recorded: stays frozen, tried again next tick
			}
			l.result.Actions++
			if err != nil {
				l.result.Errors++
				l.emit(Action{Controller: r.c.Name, Cgroup: r.victim.ref, Kind: "kill", Knob: "cgroup.kill", New: "1", Err: err})
				return
			}
			l.emit(Action{Controller: r.c.Name, Cgroup: r.victim.ref, Kind: "kill", Knob: "cgroup.kill", New: "1", Reason: "frozen " + v.now.Sub(r.since).String() + " and still " + ts.describe(r.trig.t, false)})
			l.thaw(ctx, f, "killed; thawing the empty cgroup")
			r.victim = nil
			r.quiet = v.now.Add(r.c.Grace)
		}
		return
	}
	if len(cands) == 0 || v.now.Before(r.quiet) {
		return
	}
	ch := l.chooseVictim(r.c.Rank, cands)
	worst := ch.cg
	next := "stays frozen until it recovers (kill = false)"
	if r.c.Kill {
		next = "killed after " + r.c.Grace.String() + " unless it recovers"
	}
	reason := fmt.Sprintf("last resort (%s): %s; %s", ch.describe(r.c.Rank, len(cands)), ch.ts.describe(r.trig.t, false), next)
	if out := l.runHook(ctx, r.c, worst.ref, reason); out != "" {
		reason += "; " + out
	}
	if l.freeze(ctx, worst, r.c.Name, reason) {
		// The grace runs from the freeze, not from the step's start: the
		// hook may have taken seconds since.
		r.victim, r.since = worst, l.clock.Now()
	}
}

// handedBack reports whether cg was thawed (or found frozen) by someone
// else during this trigger episode: then it is neither frozen nor killed.
// The mark goes once the trigger is quiet for it (inactive, no condition
// holding), so a reload, which restarts the trigger state, does not end
// the episode while its conditions still hold.
func (r *lastResortCtl) handedBack(cg *cgState, ts *triggerState) bool {
	if !cg.freezeBack {
		return false
	}
	if !ts.active {
		quiet := true
		for i := range ts.when {
			if !ts.when[i].since.IsZero() {
				quiet = false
			}
		}
		if quiet {
			cg.freezeBack = false
			return false
		}
	}
	return true
}

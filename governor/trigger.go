package governor

import (
	"fmt"
	"strings"
	"time"
)

// view is what conditions are evaluated against during one Step.

// evalCondition returns the condition's current value (the highest over a
// class) and whether the threshold is crossed now. A missing signal never
// crosses.
func (v *View) evalCondition(c *Condition, self *Sample) (float64, bool) {
	check := func(s *Sample) (float64, bool) {
		if s == nil {
			return 0, false
		}
		x, ok := s.Get(c.Signal)
		if !ok {
			return 0, false
		}
		if c.Op == Above {
			return x, x > c.Value
		}
		return x, x < c.Value
	}
	switch c.Scope {
	case ScopeSelf:
		return check(self)
	case ScopeHost:
		return check(v.Snap.Host)
	case ScopeClass:
		// Every signal is "higher is worse", so a class is as bad as its
		// worst (highest) member whatever the operator: above holds when
		// any member is above, below only when every member is below (a
		// class has recovered only when all of it has).
		var worst float64
		found := false
		for _, s := range v.Members[c.Class] {
			if v.isGovernor(s) {
				continue
			}
			if x, ok := s.Get(c.Signal); ok && (!found || x > worst) {
				worst, found = x, true
			}
		}
		if !found {
			return 0, false
		}
		if c.Op == Above {
			return worst, worst > c.Value
		}
		return worst, worst < c.Value
	}
	return 0, false
}

// Self-inflicted harm. A controller that acts on one class because another
// suffers (suppress, rule: "squeeze batch while the services wait") must
// not act when a member's stall is of its own making: CPU waits explained
// by the member's own cpu.max throttling, memory stalls by its own
// memory.high. Pressure alone cannot tell those from a noisy neighbour
// (a throttled task is runnable and waiting, so cpu.pressure counts it).
// Such a member's reading is left out of the class's worst value; the
// condition says so (condState.self) and the controller logs it once.
const (
	// selfThrottledMin: a member throttled less than this share of the
	// time is not self-throttled, whatever its stall.
	selfThrottledMin = 5.0 // percent of wall time
	// selfThrottledShare: the throttled share must be at least this part
	// of the member's CPU stall to explain it.
	selfThrottledShare = 0.5
	// selfThrottledKeep: a member judged self-throttled at the tick before
	// stays so while its throttled share is at least this part of its
	// stall. Without it a service throttled about half of its wait
	// flickers in and out tick by tick (47 % against 84 % seen in the VM
	// scenario selfthrottle), and three flickers in a row, a trigger's
	// `for`, would squeeze its neighbours for a stall of its own making.
	selfThrottledKeep = 0.25
	// selfHighRatio: memory.current at this share of memory.high or more,
	// with memory.high events in the last tick, is a member held at its
	// own memory.high.
	selfHighRatio = 95.0
	// selfCover: a cgroup whose stall is at most 1/selfCover of a
	// self-inflicted descendant's is explained by it. Pressure is
	// hierarchical: system.slice waits whenever a throttled service below
	// it does, with the same figure, while its own cpu.stat shows no
	// throttling (found running the built-in default, whose
	// "system.slice/**" includes system.slice itself).
	selfCover = 0.8
)

// guardable reports whether sig is a CPU or memory stall signal, which a
// member's own limit can explain.
func guardable(sig Signal) (cpu, mem bool) {
	switch {
	case sig >= CPUSomeAvg10 && sig <= CPUFullStall, sig >= RunqP50 && sig <= RunqPreemptedByOthers:
		return true, false
	case sig >= MemorySomeAvg10 && sig <= MemoryFullStall, sig == ReclaimStall:
		return false, true
	}
	return false, false
}

// selfInflicted says why s's reading of sig is explained by its own limit,
// or "". was: s was self-throttled at the tick before (View.SelfThrottled),
// which lowers the share of its stall its throttling must explain.
func selfInflicted(s *Sample, sig Signal, was bool) string {
	if !isSelfInflicted(s, sig, was) {
		return ""
	}
	cpu, mem := guardable(sig)
	switch {
	case cpu:
		thr, _ := s.Get(CPUThrottled)
		why := fmt.Sprintf("%s is self-throttled: its own cpu.max throttles it %.1f%% of the time", s.Ref.String(), thr)
		if stall, ok := s.Get(CPUSomeStall); ok {
			why += fmt.Sprintf(" (cpu.some.stall %.1f%%)", stall)
		}
		return why
	case mem:
		ratio, _ := s.Get(MemoryHighRatio)
		ev, _ := s.Get(MemoryEventsHigh)
		return fmt.Sprintf("%s is held at its own memory.high: memory.current is %.0f%% of it, %.3g memory.high events/s", s.Ref.String(), ratio, ev)
	}
	return ""
}

// selfThrottled reports whether s's CPU stall is explained by its own
// cpu.max: throttled at least selfThrottledMin of the time and at least
// selfThrottledShare of its stall (selfThrottledKeep if it was so at the
// tick before).
func selfThrottled(s *Sample, was bool) bool {
	thr, ok := s.Get(CPUThrottled)
	if !ok || thr < selfThrottledMin {
		return false
	}
	share := selfThrottledShare
	if was {
		share = selfThrottledKeep
	}
	stall, ok := s.Get(CPUSomeStall)
	return !ok || thr >= share*stall
}

// SelfThrottledSet is the set of cgroups of snap whose CPU stall is of
// their own making this tick, given the set of the tick before (prev):
// the next tick's View.SelfThrottled. It reuses into.
func SelfThrottledSet(snap *Snapshot, prev, into map[CgroupID]bool) map[CgroupID]bool {
	if into == nil {
		into = make(map[CgroupID]bool)
	}
	clear(into)
	for _, s := range snap.Cgroups {
		if thr, ok := s.Get(CPUThrottled); !ok || thr < selfThrottledMin {
			continue // the common case: one lookup
		}
		if selfThrottled(s, prev[s.Ref.ID]) {
			into[s.Ref.ID] = true
		}
	}
	return into
}

// isSelfInflicted is selfInflicted's test, without the explanation.
func isSelfInflicted(s *Sample, sig Signal, was bool) bool {
	cpu, mem := guardable(sig)
	switch {
	case cpu:
		return selfThrottled(s, was)
	case mem:
		ratio, ok := s.Get(MemoryHighRatio)
		ev, _ := s.Get(MemoryEventsHigh)
		return ok && ratio >= selfHighRatio && ev > 0
	}
	return false
}

// evalGuarded is evalCondition for a controller acting on class target: a
// class condition on another class leaves out the members whose reading
// is self-inflicted. self names the left-out member that would otherwise
// have decided the condition ("" if none).
func (v *View) evalGuarded(c *Condition, s *Sample, target string) (x float64, holds bool, self string) {
	if target == "" || c.Scope != ScopeClass || c.Class == target {
		x, holds = v.evalCondition(c, s)
		return x, holds, ""
	}
	if cpu, mem := guardable(c.Signal); !cpu && !mem {
		x, holds = v.evalCondition(c, s)
		return x, holds, ""
	}
	crosses := func(y float64) bool {
		if c.Op == Above {
			return y > c.Value
		}
		return y < c.Value
	}
	var worst, left float64
	found := false
	for _, m := range v.Members[c.Class] {
		y, ok := m.Get(c.Signal)
		if !ok {
			continue
		}
		if why, out := v.leftOut(m, c.Signal, y, crosses(y) == (c.Op == Above)); out {
			if why != "" && (self == "" || y > left) {
				self, left = why, y
			}
			continue
		}
		if !found || y > worst {
			worst, found = y, true
		}
	}
	if !found {
		// Every reading left out: no member suffers from others, which
		// is "below" anything (a recover condition holds) and "above"
		// nothing.
		x, holds = 0, c.Op == Below
	} else {
		x, holds = worst, crosses(worst)
	}
	// Name the left-out member only where it changed the outcome.
	if self != "" {
		unguarded := crosses(left)
		if found {
			unguarded = crosses(max(worst, left))
		}
		if unguarded == holds {
			self = ""
		}
	}
	return x, holds, self
}

// isGovernor reports whether m is the governor's own cgroup. It is never
// a victim: its waits come from its own bursts of work (start-up, a
// tick's reads, its garbage collector's threads), and squeezing others
// for them is a loop in which observing is the harm. Its unit protects
// it (CPUWeight=1000, Nice=-5). Found on a stock node: the start-up of
// the governor itself pushed its cgroup's cpu.some avg10 to 30 % and the
// built-in default squeezed batch.slice.
func (v *View) isGovernor(m *Sample) bool {
	return v.Deny != nil && v.Deny.Self != "" && m.Ref.Path == v.Deny.Self
}

// leftOut reports whether member m's reading y of sig is left out of a
// class condition of a controller acting on another class, and why (""
// for the governor's own cgroup, left out without a word). bad: the
// reading would start the trigger (or keep recover from holding); only
// then are the descendants searched (selfBelow).
func (v *View) leftOut(m *Sample, sig Signal, y float64, bad bool) (string, bool) {
	if v.isGovernor(m) {
		return "", true
	}
	if cpu, mem := guardable(sig); !cpu && !mem {
		return "", false
	}
	if why := selfInflicted(m, sig, v.SelfThrottled[m.Ref.ID]); why != "" {
		return why, true
	}
	if bad {
		return v.selfBelow(m, sig, y)
	}
	return "", false
}

// selfBelow reports whether m's reading y of sig is explained by what
// waits below it of its own making: descendants that are self-inflicted
// and the governor's own cgroup, whose readings together come to at least
// selfCover of y (why names the largest self-inflicted one; "" when it is
// the governor's alone).
func (v *View) selfBelow(m *Sample, sig Signal, y float64) (string, bool) {
	if v.Snap == nil {
		return "", false
	}
	// The stall below m that is explained: the governor's own cgroup's,
	// and that of each descendant whose stall is of its own making. A
	// parent waits whenever any of them does, so together they explain it
	// (on a stock node: system.slice waits while the governor starts up
	// and while a service its own CPUQuota throttles waits, neither alone
	// 80 % of it). Nested ones count once, by the highest.
	type part struct {
		path string
		y    float64
		why  string // "" for the governor's own cgroup
	}
	var parts []part
	prefix := m.Ref.Path + "/"
	for _, d := range v.explaining(sig) {
		if d == m || (m.Ref.Path != "" && !strings.HasPrefix(d.Ref.Path, prefix)) {
			continue
		}
		dy, _ := d.Get(sig)
		if v.isGovernor(d) {
			parts = append(parts, part{d.Ref.Path, dy, ""})
		} else if why := selfInflicted(d, sig, v.SelfThrottled[d.Ref.ID]); why != "" {
			parts = append(parts, part{d.Ref.Path, dy, why})
		}
	}
	var sum float64
	var first *part
	for i := range parts {
		p := &parts[i]
		nested := false
		for _, q := range parts {
			if q.path != p.path && strings.HasPrefix(p.path, q.path+"/") {
				nested = true
				break
			}
		}
		if nested {
			continue
		}
		sum += p.y
		if p.why != "" && (first == nil || p.y > first.y) {
			first = p
		}
	}
	if len(parts) == 0 || sum < selfCover*y {
		return "", false
	}
	if first == nil {
		return "", true // the governor's own stall: left out without a word
	}
	return fmt.Sprintf("%s waits as much as %s below it, which is of its own making: %s", m.Ref.String(), Ref{Path: first.path}.String(), first.why), true
}

// explaining returns the cgroups of the View's snapshot, in its order,
// whose reading of sig could explain an ancestor's (selfBelow): above zero,
// and the governor's own cgroup or self-inflicted. They are few; selfBelow
// runs for every member whose reading would start a trigger, and scanning
// the whole snapshot for each made a Step quadratic (250 ms at 10,000
// cgroups in BenchmarkStep10k, 95 % of it here). Found once per signal
// and View (a View is one Step's; the snapshot's length is checked).
func (v *View) explaining(sig Signal) []*Sample {
	if v.expl.snap != v.Snap || v.expl.n != len(v.Snap.Cgroups) {
		v.expl.snap, v.expl.n = v.Snap, len(v.Snap.Cgroups)
		v.expl.done = SignalSet{}
		clear(v.expl.by)
	}
	if v.expl.done.Has(sig) {
		return v.expl.by[sig]
	}
	var out []*Sample
	for _, d := range v.Snap.Cgroups {
		if dy, ok := d.Get(sig); !ok || dy <= 0 {
			continue
		}
		if v.isGovernor(d) || isSelfInflicted(d, sig, v.SelfThrottled[d.Ref.ID]) {
			out = append(out, d)
		}
	}
	if v.expl.by == nil {
		v.expl.by = make(map[Signal][]*Sample)
	}
	v.expl.by[sig] = out
	v.expl.done.Add(sig)
	return out
}

// condState tracks since when one condition has held.
type condState struct {
	since time.Time // zero: not holding
	value float64
	// self: the member left out as self-inflicted that would otherwise
	// have decided the condition (see evalGuarded).
	self string
}

// update re-evaluates the condition and reports whether it has held for its
// full duration.
func (cs *condState) update(v *View, c *Condition, self *Sample) bool {
	return cs.updateGuarded(v, c, self, "")
}

// updateGuarded is update for a controller acting on class target
// (evalGuarded).
func (cs *condState) updateGuarded(v *View, c *Condition, self *Sample, target string) bool {
	x, holds, why := v.evalGuarded(c, self, target)
	cs.value = x
	cs.self = why
	if !holds {
		cs.since = time.Time{}
		return false
	}
	if cs.since.IsZero() {
		cs.since = v.Now
	}
	return v.Now.Sub(cs.since) >= c.For
}

// triggerState is the hysteresis state of one Trigger for one subject (a
// cgroup, or the whole class/host when no condition reads ScopeSelf).
type triggerState struct {
	// target: the class the controller acts on; class conditions on
	// other classes leave out self-inflicted readings (evalGuarded). ""
	// for controllers that act on what they read (memhigh, last resort).
	target     string
	active     bool
	when       []condState
	recover    []condState
	clearSince time.Time // without Recover: since when no When condition holds
	changedAt  time.Time
	fired      string // when active: the when conditions as they stood when it fired
	// selfSaid: the current self-inflicted episode has been logged;
	// selfClear: since when no condition that matters was left out
	// (zero while one is). See selfInflictedNews.
	selfSaid  bool
	selfClear time.Time
}

func newTriggerState(t *Trigger) *triggerState {
	return &triggerState{
		when:    make([]condState, len(t.When)),
		recover: make([]condState, len(t.Recover)),
	}
}

// update advances the state machine and reports whether the trigger is
// active and whether it changed this step.
func (ts *triggerState) update(v *View, t *Trigger, self *Sample) (active, changed bool) {
	anySatisfied, anyHolds := false, false
	var longest time.Duration
	for i := range t.When {
		if ts.when[i].updateGuarded(v, &t.When[i], self, ts.target) {
			anySatisfied = true
		}
		if !ts.when[i].since.IsZero() {
			anyHolds = true
		}
		if t.When[i].For > longest {
			longest = t.When[i].For
		}
	}
	allRecovered := len(t.Recover) > 0
	for i := range t.Recover {
		if !ts.recover[i].updateGuarded(v, &t.Recover[i], self, ts.target) {
			allRecovered = false
		}
	}
	if anyHolds {
		ts.clearSince = time.Time{}
	} else if ts.clearSince.IsZero() {
		ts.clearSince = v.Now
	}
	prev := ts.active
	if !ts.active {
		ts.active = anySatisfied
	} else if len(t.Recover) > 0 {
		ts.active = !allRecovered
	} else {
		ts.active = anyHolds || v.Now.Sub(ts.clearSince) < longest
	}
	if ts.active != prev {
		ts.changedAt = v.Now
		ts.fired = ""
		if ts.active {
			ts.fired = ts.describe(t, false)
		}
	}
	return ts.active, ts.active != prev
}

// describeActive renders an active trigger for status and explain: the
// conditions that held when it fired, with their values then, and those
// that hold now, with their values now. (describe alone would show
// conditions that stopped holding, with today's values, as if they held.)
func (ts *triggerState) describeActive(t *Trigger) string {
	holding := 0
	for i := range ts.when {
		if !ts.when[i].since.IsZero() {
			holding++
		}
	}
	now := "none"
	switch {
	case holding > 0:
		now = ts.describe(t, false)
	case len(t.Recover) > 0:
		now = "none; active until recover holds: " + ts.describe(t, true)
	case !ts.clearSince.IsZero():
		var longest time.Duration
		for _, c := range t.When {
			longest = max(longest, c.For)
		}
		now = fmt.Sprintf("none since %s; recovers at %s", ts.clearSince.Format(time.RFC3339), ts.clearSince.Add(longest).Format(time.RFC3339))
	}
	return "fired on " + ts.fired + "; holds now: " + now
}

// describe renders the conditions and their current values for log lines,
// e.g. `web:cpu.some.avg10=23.5 > 10`.
//
// For the when side only the conditions holding now are named (all of
// them if none holds, e.g. once recovered), so a log line says what
// actually fired.
func (ts *triggerState) describe(t *Trigger, recovering bool) string {
	conds, states := t.When, ts.when
	if recovering && len(t.Recover) > 0 {
		conds, states = t.Recover, ts.recover
	}
	holding := 0
	if !recovering {
		for i := range states {
			if !states[i].since.IsZero() {
				holding++
			}
		}
	}
	var b strings.Builder
	n := 0
	for i := range conds {
		if holding > 0 && states[i].since.IsZero() {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		c := &conds[i]
		switch c.Scope {
		case ScopeClass:
			b.WriteString(c.Class + ":")
		case ScopeHost:
			b.WriteString("host:")
		}
		fmt.Fprintf(&b, "%s=%s %s %s", c.Signal.Name(), formatSignal(c.Signal, states[i].value), c.Op, formatSignal(c.Signal, c.Value))
		if c.For > 0 {
			fmt.Fprintf(&b, " for %s", c.For)
		}
		if states[i].self != "" {
			fmt.Fprintf(&b, " (left out: %s)", states[i].self)
		}
	}
	return b.String()
}

// usesSelf reports whether any condition reads the acted-on cgroup, which
// makes the trigger's state per cgroup instead of global.
func (t *Trigger) usesSelf() bool {
	for _, c := range t.When {
		if c.Scope == ScopeSelf {
			return true
		}
	}
	for _, c := range t.Recover {
		if c.Scope == ScopeSelf {
			return true
		}
	}
	return false
}

// formatSignal renders a value in its signal's unit.
func formatSignal(s Signal, v float64) string {
	switch s.Unit() {
	case UnitPercent:
		return fmt.Sprintf("%.2f%%", v)
	case UnitBytes:
		return FormatBytes(int64(v))
	case UnitSeconds:
		return time.Duration(v * float64(time.Second)).String()
	case UnitPerSecond:
		return fmt.Sprintf("%.3g/s", v)
	case UnitCores:
		return fmt.Sprintf("%.3gcpu", v)
	}
	return fmt.Sprintf("%g", v)
}

// triggers holds a Trigger's states: one global state, or one per cgroup.
type triggers struct {
	t      *Trigger
	perCG  bool
	target string // see triggerState.target
	global *triggerState
	byCG   map[CgroupID]*triggerState
}

func newTriggers(t *Trigger) *triggers {
	return newGuardedTriggers(t, "")
}

// newGuardedTriggers: the triggers of a controller acting on class target
// when other classes suffer (see evalGuarded).
func newGuardedTriggers(t *Trigger, target string) *triggers {
	tr := &triggers{t: t, perCG: t.usesSelf(), target: target}
	if tr.perCG {
		tr.byCG = make(map[CgroupID]*triggerState)
	} else {
		tr.global = newTriggerState(t)
		tr.global.target = target
	}
	return tr
}

// state returns the state for a cgroup (or the global one).
func (tr *triggers) state(id CgroupID) *triggerState {
	if !tr.perCG {
		return tr.global
	}
	ts := tr.byCG[id]
	if ts == nil {
		ts = newTriggerState(tr.t)
		ts.target = tr.target
		tr.byCG[id] = ts
	}
	return ts
}

// selfQuiet is how long a self-inflicted episode must be over before the
// next one is logged again: a limit that throttles on and off (a burst
// under cpu.max, an avg10 sliding across a threshold) is one story, not a
// line every few seconds.
const selfQuiet = time.Minute

// selfInflictedNews returns, once per episode, the note (or "") of a condition that
// a self-inflicted reading kept from deciding the trigger. Only the
// conditions that matter in the trigger's state count: the when side while
// inactive, the recover side while active (a recover condition of an idle
// trigger decides nothing). An episode ends once no such note has been
// seen for selfQuiet. now is the tick's time.
func (ts *triggerState) selfInflictedNews(now time.Time) string {
	states := ts.when
	if ts.active && len(ts.recover) > 0 {
		states = ts.recover
	}
	why := ""
	for i := range states {
		if states[i].self != "" {
			why = states[i].self
			break
		}
	}
	if why == "" {
		if ts.selfSaid {
			if ts.selfClear.IsZero() {
				ts.selfClear = now
			} else if now.Sub(ts.selfClear) >= selfQuiet {
				ts.selfSaid = false
			}
		}
		return ""
	}
	ts.selfClear = time.Time{}
	if ts.selfSaid {
		return ""
	}
	ts.selfSaid = true
	return why
}

// forget drops per-cgroup state of a vanished cgroup.
func (tr *triggers) forget(id CgroupID) {
	if tr.perCG {
		delete(tr.byCG, id)
	}
}

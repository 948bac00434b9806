package governor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Table tests of each controller's decide, in the style of kubelet's
// eviction helpers_test.go: a policy with one controller, one cgroup with
// given signals and knob values (in the fake actuator, read by prepare)
// and, optionally, a ledger entry; the intents decide returns are compared
// with the expected ones. Nothing is applied.

// decideCase is one row: the cgroup's signals, knob values the actuator
// holds, a knob the governor holds (held), and the intents wanted (kind,
// knob, value; reason checked by substring).
type decideCase struct {
	name    string
	signals map[Signal]float64
	knobs   map[Knob]int64
	held    *managedKnob // owner, orig, written, changed: ref and knob are filled in
	heldAt  time.Duration
	want    []Intent
}

const decideCG = CgroupID(42)

// decideTick runs one tick of the loop up to decide (sample, reconcile,
// observe, prepare) and returns the intents of its first controller.
func decideTick(t *testing.T, h *harness) []Intent {
	t.Helper()
	ins, _ := decideTickView(t, h)
	return ins
}

func decideTickView(t *testing.T, h *harness) ([]Intent, *View) {
	t.Helper()
	l, ctx := h.loop, context.Background()
	l.tick++
	now := h.clock.Now()
	l.snap.Reset(now)
	if err := h.src.Sample(ctx, &l.snap); err != nil {
		t.Fatal(err)
	}
	l.reconcile()
	v := &View{Now: now, Snap: &l.snap, Members: l.members}
	for _, c := range l.ctrls {
		c.observe(l, v)
	}
	l.prepare(ctx, v)
	return l.ctrls[0].decide(l, v), v
}

func runDecideCases(t *testing.T, pol func() *Policy, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, pol())
			s := h.src.add(decideCG, "batch/job")
			for sig, v := range tc.signals {
				s.Set(sig, v)
			}
			for k, v := range tc.knobs {
				h.act.put(decideCG, k, v)
			}
			if tc.held != nil {
				m := *tc.held
				m.ref = Ref{ID: decideCG, Path: "batch/job"}
				m.changed = h.clock.Now().Add(-tc.heldAt)
				h.loop.managed[knobKey{decideCG, m.knob}] = &m
			}
			checkIntents(t, decideTick(t, h), tc.want)
			if writes := h.act.writes; len(writes) != 0 {
				t.Errorf("decide made writes: %v", writes)
			}
		})
	}
}

func batchClass() []Class { return []Class{{Name: "batch", Match: []string{"batch/**"}}} }

func memPressure(v float64) Condition {
	return Condition{Scope: ScopeSelf, Signal: MemorySomeAvg10, Op: Above, Value: v}
}

func TestDecideMemoryHigh(t *testing.T) {
	pol := func() *Policy {
		return &Policy{Classes: batchClass(), MemHigh: []MemoryHighController{{
			Name: "adapt", Target: "batch",
			Trigger:  Trigger{When: []Condition{memPressure(20)}},
			Relax:    []Condition{{Scope: ScopeSelf, Signal: MemorySomeAvg10, Op: Below, Value: 1}},
			Step:     Step{Percent: 10},
			Headroom: Step{Percent: 20},
			Limits:   Limits{Min: 64 << 20, Cooldown: 10 * time.Second},
		}}}
	}
	const gib = int64(1 << 30)
	runDecideCases(t, pol, []decideCase{
		{name: "pressure high raises by a step",
			signals: map[Signal]float64{MemorySomeAvg10: 30, MemoryCurrent: float64(gib)},
			knobs:   map[Knob]int64{MemoryHigh: gib},
			want:    []Intent{{Kind: IntentWrite, Knob: MemoryHigh, Value: gib + gib/10, Reason: "pressure high"}}},
		{name: "pressure high on max: nothing to raise",
			signals: map[Signal]float64{MemorySomeAvg10: 30, MemoryCurrent: float64(gib)}},
		{name: "raised back to the original it lowered from: restore",
			signals: map[Signal]float64{MemorySomeAvg10: 30, MemoryCurrent: float64(gib)},
			held:    &managedKnob{knob: MemoryHigh, owner: "adapt", orig: Setting{Value: gib + gib/20, Raw: "1127428915"}, written: gib},
			heldAt:  time.Minute,
			want:    []Intent{{Kind: IntentRestore, Knob: MemoryHigh, Reason: "pressure high"}}},
		{name: "in cooldown: nothing",
			signals: map[Signal]float64{MemorySomeAvg10: 30, MemoryCurrent: float64(gib)},
			held:    &managedKnob{knob: MemoryHigh, owner: "adapt", orig: Setting{Value: Unlimited, Raw: "max"}, written: gib},
			heldAt:  time.Second},
		{name: "held by another controller: nothing",
			signals: map[Signal]float64{MemorySomeAvg10: 30, MemoryCurrent: float64(gib)},
			held:    &managedKnob{knob: MemoryHigh, owner: "other", orig: Setting{Value: Unlimited, Raw: "max"}, written: gib},
			heldAt:  time.Minute},
		{name: "relaxed on max: lowered to usage less 5%, not below",
			signals: map[Signal]float64{MemorySomeAvg10: 0, MemoryCurrent: float64(gib)},
			want:    []Intent{{Kind: IntentWrite, Knob: MemoryHigh, Value: gib + gib/5, Reason: "pressure low, memory.current=1GiB"}}},
		{name: "relaxed, far above the goal: one step down",
			signals: map[Signal]float64{MemorySomeAvg10: 0, MemoryCurrent: float64(gib)},
			knobs:   map[Knob]int64{MemoryHigh: 4 * gib},
			want:    []Intent{{Kind: IntentWrite, Knob: MemoryHigh, Value: 4*gib - 4*gib/10, Reason: "pressure low"}}},
		{name: "relaxed, at the goal already: nothing",
			signals: map[Signal]float64{MemorySomeAvg10: 0, MemoryCurrent: float64(gib)},
			knobs:   map[Knob]int64{MemoryHigh: gib + gib/5}},
		{name: "neither pressure nor relaxed: nothing",
			signals: map[Signal]float64{MemorySomeAvg10: 10, MemoryCurrent: float64(gib)},
			knobs:   map[Knob]int64{MemoryHigh: 4 * gib}},
		{name: "no memory.current: nothing",
			signals: map[Signal]float64{MemorySomeAvg10: 30},
			knobs:   map[Knob]int64{MemoryHigh: gib}},
	})
}

func TestDecideSuppress(t *testing.T) {
	pol := func() *Policy {
		return &Policy{Classes: batchClass(), Suppress: []SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: Trigger{When: []Condition{{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Above, Value: 50}}},
			Knobs:   []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 10}}},
		}}}
	}
	cases := []decideCase{
		{name: "active: one step down",
			knobs: map[Knob]int64{CPUWeight: 100},
			want:  []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 50, Reason: "cpu.some.avg10"}}},
		{name: "active, near the floor: clamped to it",
			knobs: map[Knob]int64{CPUWeight: 12},
			want:  []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 10}}},
		{name: "active, at the floor: nothing",
			knobs: map[Knob]int64{CPUWeight: 10}},
		{name: "active, held: a step from what it wrote",
			held: &managedKnob{knob: CPUWeight, owner: "squeeze", orig: Setting{Value: 100, Raw: "100"}, written: 50},
			want: []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 25}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, pol())
			h.src.host.Set(CPUSomeAvg10, 80)
			h.src.add(decideCG, "batch/job")
			for k, v := range tc.knobs {
				h.act.put(decideCG, k, v)
			}
			if tc.held != nil {
				m := *tc.held
				m.ref = Ref{ID: decideCG, Path: "batch/job"}
				m.changed = h.clock.Now().Add(-time.Minute)
				h.loop.managed[knobKey{decideCG, m.knob}] = &m
			}
			checkIntents(t, decideTick(t, h), tc.want)
		})
	}
	t.Run("recovered: steps back, then restores", func(t *testing.T) {
		h := newHarness(t, pol())
		h.src.add(decideCG, "batch/job")
		h.loop.managed[knobKey{decideCG, CPUWeight}] = &managedKnob{ref: Ref{ID: decideCG, Path: "batch/job"}, knob: CPUWeight, owner: "squeeze",
			orig: Setting{Value: 100, Raw: "100"}, written: 25}
		checkIntents(t, decideTick(t, h), []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 75, Reason: "recovered"}})
		h.loop.managed[knobKey{decideCG, CPUWeight}].written = 75
		checkIntents(t, decideTick(t, h), []Intent{{Kind: IntentRestore, Knob: CPUWeight, Reason: "recovered"}})
	})
}

func checkIntents(t *testing.T, got, want []Intent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("intents %+v, want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.Kind || g.Knob != w.Knob || g.Value != w.Value || !strings.Contains(g.Reason, w.Reason) {
			t.Errorf("intent %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestDecideProtect(t *testing.T) {
	for _, protected := range []bool{false, true} {
		pol := func() *Policy {
			cl := batchClass()
			cl[0].Protected = protected
			return &Policy{Classes: cl, Protect: []ProtectController{{Name: "keep", Target: "batch", Low: 1 << 30}}}
		}
		runDecideCases(t, pol, []decideCase{
			{name: "raises memory.low",
				want: []Intent{{Kind: IntentWrite, Knob: MemoryLow, Value: 1 << 30, Reason: "protect memory.low=1GiB"}}},
			{name: "already protected more: nothing",
				knobs: map[Knob]int64{MemoryLow: 2 << 30}},
			{name: "already at the value: nothing",
				knobs: map[Knob]int64{MemoryLow: 1 << 30}},
		})
	}
}

func TestDecideReclaim(t *testing.T) {
	pol := func() *Policy {
		return &Policy{Classes: batchClass(), Reclaim: []ReclaimController{{
			Name: "trim", Target: "batch", Signal: MemorySomeAvg10, Goal: 1, Interval: 6 * time.Second,
			Step: Step{Percent: 1}, MinSize: 64 << 20, Ramp: 1,
		}}}
	}
	const gib = 1 << 30
	runDecideCases(t, pol, []decideCase{
		{name: "under the goal: a step scaled by the distance to it",
			signals: map[Signal]float64{MemorySomeAvg10: 0.5, MemoryCurrent: gib},
			want:    []Intent{{Kind: IntentReclaim, Value: gib / 100 / 2, Reason: "memory.some.avg10=0.50% < goal 1.00%"}}},
		{name: "at the goal: nothing",
			signals: map[Signal]float64{MemorySomeAvg10: 1, MemoryCurrent: gib}},
		{name: "near min_size: half the room",
			signals: map[Signal]float64{MemorySomeAvg10: 0, MemoryCurrent: 64<<20 + 1<<20},
			want:    []Intent{{Kind: IntentReclaim, Value: 1 << 19}}},
		{name: "no pressure signal: nothing",
			signals: map[Signal]float64{MemoryCurrent: gib}},
	})
}

func TestDecideLastResort(t *testing.T) {
	pol := func() *Policy {
		return &Policy{Classes: batchClass(), LastResort: []LastResortController{{
			Name: "oom", Target: "batch", Trigger: Trigger{When: []Condition{memPressure(60)}},
			Grace: 30 * time.Second, Kill: true,
		}}}
	}
	h := newHarness(t, pol())
	small := h.src.add(7, "batch/small")
	big := h.src.add(8, "batch/big")
	for _, s := range []*Sample{small, big} {
		s.Set(MemorySomeAvg10, 80)
	}
	small.Set(MemoryCurrent, 1<<20)
	big.Set(MemoryCurrent, 1<<30)
	ins := decideTick(t, h)
	if len(ins) != 1 || ins[0].Kind != IntentFreeze || ins[0].Cgroup.Path != "batch/big" || !strings.Contains(ins[0].Reason, "chosen of 2 candidates") {
		t.Fatalf("first tick: %+v, want a freeze of batch/big", ins)
	}
	if len(h.act.writes) != 0 {
		t.Fatalf("decide froze: %v", h.act.writes)
	}
	// apply freezes and tells the controller; until the grace has passed
	// it decides nothing, then the kill.
	h.loop.applyIntents(context.Background(), h.loop.ctrls[0], &View{Now: h.clock.Now()}, ins)
	if !h.act.frozen[8] {
		t.Fatal("apply did not freeze batch/big")
	}
	h.clock.Advance(10 * time.Second)
	if ins := decideTick(t, h); len(ins) != 0 {
		t.Fatalf("within the grace: %+v", ins)
	}
	h.clock.Advance(25 * time.Second)
	ins = decideTick(t, h)
	if len(ins) != 1 || ins[0].Kind != IntentKill || ins[0].Cgroup.Path != "batch/big" || !strings.Contains(ins[0].Reason, "frozen 35s and still") {
		t.Fatalf("after the grace: %+v, want a kill of batch/big", ins)
	}
	// Recovered instead: a thaw.
	for _, s := range []*Sample{small, big} {
		s.Set(MemorySomeAvg10, 0)
	}
	h.clock.Advance(time.Minute)
	ins = decideTick(t, h)
	if len(ins) != 1 || ins[0].Kind != IntentThaw || ins[0].Cgroup.Path != "batch/big" || !strings.Contains(ins[0].Reason, "recovered") {
		t.Fatalf("recovered: %+v, want a thaw of batch/big", ins)
	}
}

// TestPrepareView: what prepare read is in the View as values: the knob a
// suppress wants while active, not the one the governor holds (its value
// is what it wrote).
func TestPrepareView(t *testing.T) {
	h := newHarness(t, &Policy{Classes: batchClass(), Suppress: []SuppressController{{
		Name: "squeeze", Target: "batch",
		Trigger: Trigger{When: []Condition{{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Above, Value: 50}}},
		Knobs:   []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}}, {Knob: IOWeight, Step: Step{Percent: 50}}},
	}}})
	h.src.add(decideCG, "batch/job")
	h.act.put(decideCG, CPUWeight, 80)
	_, v := decideTickView(t, h)
	if len(v.Knobs) != 0 {
		t.Fatalf("trigger inactive, read %+v", v.Knobs)
	}
	h.src.host.Set(CPUSomeAvg10, 80)
	h.loop.managed[knobKey{decideCG, IOWeight}] = &managedKnob{ref: Ref{ID: decideCG, Path: "batch/job"}, knob: IOWeight, owner: "squeeze", orig: Setting{Value: 100, Raw: "100"}, written: 50}
	ins, v := decideTickView(t, h)
	if len(v.Knobs) != 1 || v.Knobs[0] != (KnobValue{Cgroup: decideCG, Knob: CPUWeight, Value: Setting{Value: 80, Raw: "80"}}) {
		t.Fatalf("read %+v, want cpu.weight 80 only", v.Knobs)
	}
	checkIntents(t, ins, []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 40}, {Kind: IntentWrite, Knob: IOWeight, Value: 25}})
}

// TestSuppressSelfThrottled: the services' stall comes from their own
// cpu.max; suppress leaves batch alone, says why once, and explain shows
// it. When a neighbour's doing joins in, it squeezes as before (#14).
func TestSuppressSelfThrottled(t *testing.T) {
	pol := &Policy{
		Classes: []Class{{Name: "svc", Match: []string{"svc/*"}, Protected: true}, {Name: "batch", Match: []string{"batch/**"}}},
		Suppress: []SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: Trigger{When: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeStall, Op: Above, Value: 10}},
				Recover: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeStall, Op: Below, Value: 2}}},
			Knobs: []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 10}}},
		}},
	}
	h := newHarness(t, pol)
	web := h.src.add(7, "svc/web")
	web.Set(CPUSomeStall, 35)
	web.Set(CPUThrottled, 30)
	h.src.add(decideCG, "batch/job")
	h.act.put(decideCG, CPUWeight, 100)
	for i := 0; i < 3; i++ {
		if ins := decideTick(t, h); len(ins) != 0 {
			t.Fatalf("tick %d: squeezed batch for a self-throttled service: %+v", i, ins)
		}
		h.clock.Advance(time.Second)
	}
	if n := strings.Count(h.logText(), "the stall is self-inflicted"); n != 1 {
		t.Errorf("%d self-inflicted lines, want 1:\n%s", n, h.logText())
	}
	if !strings.Contains(h.logText(), "svc/web is self-throttled: its own cpu.max throttles it 30.0% of the time (cpu.some.stall 35.0%)") {
		t.Errorf("the line does not give the figures:\n%s", h.logText())
	}
	lines, err := h.loop.explain("batch/job")
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(lines, "\n"); !strings.Contains(text, "left out: svc/web is self-throttled") {
		t.Errorf("explain does not say the stall was left out:\n%s", text)
	}
	// A neighbour-harmed service joins: the squeeze starts.
	db := h.src.add(8, "svc/db")
	db.Set(CPUSomeStall, 20)
	checkIntents(t, decideTick(t, h), []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 50, Reason: "svc:cpu.some.stall=20.00%"}})
}

// A service throttled about half of its wait (47 % against 84 %, as in the
// VM scenario selfthrottle) stays self-throttled once judged so: the
// judgement does not flicker tick by tick into squeezing its neighbours.
// It ends when its throttling falls under a quarter of its wait.
func TestSuppressSelfThrottledHysteresis(t *testing.T) {
	pol := &Policy{
		Classes: []Class{{Name: "svc", Match: []string{"svc/*"}, Protected: true}, {Name: "batch", Match: []string{"batch/**"}}},
		Suppress: []SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: Trigger{When: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeStall, Op: Above, Value: 10}},
				Recover: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeStall, Op: Below, Value: 2}}},
			Knobs: []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 10}}},
		}},
	}
	h := newHarness(t, pol)
	web := h.src.add(7, "svc/web")
	web.Set(CPUSomeStall, 84)
	h.src.add(decideCG, "batch/job")
	h.act.put(decideCG, CPUWeight, 100)
	// Whole Steps: the judgement of one tick is the next one's "was".
	for i, thr := range []float64{47, 38, 40, 30, 22, 45} {
		web.Set(CPUThrottled, thr)
		h.tick(time.Second)
		if w := h.act.get(decideCG, CPUWeight); w != 100 {
			t.Fatalf("tick %d (throttled %.0f%% of an 84%% stall): batch squeezed to %d for a self-throttled service; writes %v", i, thr, w, h.act.writes)
		}
	}
	// Throttling under a quarter of the wait: something else makes it wait.
	web.Set(CPUThrottled, 15)
	h.tick(time.Second)
	if w := h.act.get(decideCG, CPUWeight); w != 50 {
		t.Fatalf("throttled 15%% of an 84%% stall: cpu.weight %d, want 50", w)
	}
	// Once not self-throttled, it must earn the judgement with half its
	// wait again: 30 % of 84 % does not stop the squeeze.
	web.Set(CPUThrottled, 30)
	h.tick(5 * time.Second)
	if w := h.act.get(decideCG, CPUWeight); w >= 50 {
		t.Errorf("throttled 30%% of an 84%% stall, not self-throttled before: cpu.weight %d, want < 50", w)
	}
}

// creepClock moves 20 ms on every reading, as the wall clock does while a
// Step runs; tick sets the time a Step starts at.
type creepClock struct{ t time.Time }

func (c *creepClock) Now() time.Time { c.t = c.t.Add(20 * time.Millisecond); return c.t }

// A knob's cooldown runs from the tick that changed it, not from the wall
// clock at the write: otherwise the time a Step takes pushes each change
// one tick later than a 2 s cooldown says, and a replay (whose clock
// stands still within a tick) decides a tick earlier than the live loop
// (found replaying the test bed's memhigh recording).
func TestCooldownFromTheTick(t *testing.T) {
	pol := &Policy{Classes: batchClass(), Suppress: []SuppressController{{
		Name: "squeeze", Target: "batch",
		Trigger: Trigger{When: []Condition{{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Above, Value: 50}}},
		Knobs:   []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 1, Cooldown: 2 * time.Second}}},
	}}}
	clk := &creepClock{}
	h := newHarness(t, pol, func(c *Config) { c.Clock = clk })
	h.src.host.Set(CPUSomeAvg10, 80)
	h.src.add(decideCG, "batch/job")
	h.act.put(decideCG, CPUWeight, 100)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var writes []int
	for i := 0; i < 7; i++ {
		clk.t = t0.Add(time.Duration(i) * time.Second)
		n := len(h.act.writes)
		if err := h.loop.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(h.act.writes) > n {
			writes = append(writes, i)
		}
	}
	if fmt.Sprint(writes) != "[0 2 4 6]" {
		t.Errorf("writes at ticks %v, want [0 2 4 6] (a 2 s cooldown at 1 s ticks)", writes)
	}
}

// The test bed's selfthrottle scenario logged the self-inflicted note three
// times in 20 s: the service's avg10 climbs from 0, so the recover
// condition (below 2 %) is first decided by the left-out member, then the
// when condition (above 10 %), and a tick in which the throttling dipped
// started a new "episode". Once per episode means once for that whole
// story; a new one is said only after a minute without it.
func TestSelfInflictedOncePerEpisode(t *testing.T) {
	pol := &Policy{
		Classes: []Class{{Name: "svc", Match: []string{"svc/*"}, Protected: true}, {Name: "batch", Match: []string{"batch/**"}}},
		Suppress: []SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: Trigger{When: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeAvg10, Op: Above, Value: 10, For: 3 * time.Second}},
				Recover: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeAvg10, Op: Below, Value: 2, For: 30 * time.Second}}},
			Knobs: []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 1}}},
		}},
	}
	h := newHarness(t, pol)
	web := h.src.add(7, "svc/web")
	h.src.add(decideCG, "batch/job")
	h.act.put(decideCG, CPUWeight, 100)
	count := func() int { return strings.Count(h.logText(), "the stall is self-inflicted") }
	tick := func(avg10, thr float64) {
		t.Helper()
		web.Set(CPUSomeAvg10, avg10)
		web.Set(CPUSomeStall, 80)
		web.Set(CPUThrottled, thr)
		if ins := decideTick(t, h); len(ins) != 0 {
			t.Fatalf("squeezed batch for a self-throttled service: %+v", ins)
		}
		h.clock.Advance(time.Second)
	}
	// avg10 climbs past the recover threshold, then the when threshold;
	// one tick the throttling dips (a burst under cpu.max).
	for i, avg10 := range []float64{0, 1, 3, 6, 9, 12, 20, 30, 40, 50, 60, 70, 75, 78, 80} {
		thr := 77.0
		if i == 9 {
			thr = 2
		}
		tick(avg10, thr)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d self-inflicted lines in one episode, want 1:\n%s", n, h.logText())
	}
	// The service stops waiting for a minute: the episode is over.
	for i := 0; i < 61; i++ {
		tick(0, 0)
	}
	tick(80, 77)
	if n := count(); n != 2 {
		t.Errorf("%d self-inflicted lines after a second episode, want 2:\n%s", n, h.logText())
	}
}

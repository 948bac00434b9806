package governor

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	svcWeb CgroupID = 7
	svcDB  CgroupID = 8
	job1   CgroupID = 21
	job2   CgroupID = 22
	job3   CgroupID = 23
)

func blamePolicy(minShare float64, lim Limits) *Policy {
	return &Policy{
		Classes: []Class{{Name: "svc", Match: []string{"svc/*"}, Protected: true}, {Name: "batch", Match: []string{"batch/**"}}},
		Suppress: []SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: Trigger{When: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeAvg10, Op: Above, Value: 10}},
				Recover: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeAvg10, Op: Below, Value: 2}}},
			Knobs:         []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: lim}},
			Blame:         BlamePreemption,
			BlameMinShare: minShare,
		}},
	}
}

// victim is one service's reading in a blame case.
type victim struct {
	id      CgroupID
	avg10   float64
	others  float64 // RunqPreemptedByOthers; <0: no preemption data
	preempt []Preemptor
}

func TestBlameDecide(t *testing.T) {
	paths := map[CgroupID]string{svcWeb: "svc/web", svcDB: "svc/db", job1: "batch/job1", job2: "batch/job2", job3: "batch/job3"}
	type want struct {
		value  int64
		reason string
	}
	cases := []struct {
		name     string
		minShare float64
		victims  []victim
		weights  map[CgroupID]int64 // the jobs and their cpu.weight
		want     map[CgroupID]want  // the jobs written; others untouched
		log      string
	}{
		{name: "shares: the biggest a full step, the next in proportion, below the minimum share nothing",
			minShare: 10,
			victims: []victim{{id: svcWeb, avg10: 30, others: 100, preempt: []Preemptor{
				{job1, 60}, {job2, 30}, {svcDB, 5}, {job3, 5}}}},
			weights: map[CgroupID]int64{job1: 100, job2: 100, job3: 100},
			want: map[CgroupID]want{
				job1: {50, "batch/job1: 60% of svc/web's preemptions by others (step × 1.00)"},
				job2: {75, "batch/job2: 30% of svc/web's preemptions by others (step × 0.50)"},
			}},
		{name: "no minimum share: a small culprit moves at least one unit",
			victims: []victim{{id: svcWeb, avg10: 30, others: 100, preempt: []Preemptor{{job1, 90}, {job2, 10}}}},
			weights: map[CgroupID]int64{job1: 100, job2: 2},
			want: map[CgroupID]want{
				job1: {50, "batch/job1: 90%"},
				job2: {1, "batch/job2: 10%"},
			}},
		{name: "near the bottom a smaller culprit's step is rounded, not truncated",
			victims: []victim{{id: svcWeb, avg10: 30, others: 100, preempt: []Preemptor{{job1, 50}, {job2, 38}}}},
			weights: map[CgroupID]int64{job1: 5, job2: 5},
			want: map[CgroupID]want{
				job1: {3, "batch/job1: 50% of svc/web's preemptions by others (step × 1.00)"},
				job2: {3, "batch/job2: 38% of svc/web's preemptions by others (step × 0.76)"},
			}},
		{name: "only the members whose condition holds are victims",
			victims: []victim{
				{id: svcWeb, avg10: 30, others: 50, preempt: []Preemptor{{job1, 50}}},
				{id: svcDB, avg10: 5, others: 100, preempt: []Preemptor{{job2, 100}}},
			},
			weights: map[CgroupID]int64{job1: 100, job2: 100},
			want:    map[CgroupID]want{job1: {50, "batch/job1: 100% of svc/web's preemptions by others"}}},
		{name: "two victims: shares of their preemptions together",
			victims: []victim{
				{id: svcWeb, avg10: 30, others: 50, preempt: []Preemptor{{job1, 50}}},
				{id: svcDB, avg10: 20, others: 150, preempt: []Preemptor{{job2, 150}}},
			},
			weights: map[CgroupID]int64{job1: 100, job2: 100},
			want: map[CgroupID]want{
				job1: {83, "batch/job1: 25% of the preemptions by others of svc/web, svc/db (step × 0.33)"},
				job2: {50, "batch/job2: 75%"},
			}},
		{name: "self-preemption and the CPU going idle are nobody's fault",
			victims: []victim{{id: svcWeb, avg10: 30, others: 40, preempt: []Preemptor{{svcWeb, 500}, {0, 500}, {job1, 40}}}},
			weights: map[CgroupID]int64{job1: 100, job2: 100},
			want:    map[CgroupID]want{job1: {50, "batch/job1: 100%"}}},
		{name: "preemption data but no preemption by others: nothing to squeeze",
			victims: []victim{{id: svcWeb, avg10: 30, others: 0}},
			weights: map[CgroupID]int64{job1: 100, job2: 100}},
		{name: "no preemption data at all (no BPF): the whole class, said once",
			victims: []victim{{id: svcWeb, avg10: 30, others: -1}},
			weights: map[CgroupID]int64{job1: 100, job2: 100},
			want: map[CgroupID]want{
				job1: {50, "blame: no preemption data: squeezing the whole class"},
				job2: {50, "blame: no preemption data: squeezing the whole class"},
			},
			log: "no preemption data: squeezing the whole class"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, blamePolicy(tc.minShare, Limits{Min: 1}))
			for _, v := range tc.victims {
				s := h.src.add(v.id, paths[v.id])
				s.Set(CPUSomeAvg10, v.avg10)
				if v.others >= 0 {
					s.Set(RunqPreemptedByOthers, v.others)
				}
				s.PreemptedBy = v.preempt
			}
			for _, id := range []CgroupID{job1, job2, job3} {
				if w, ok := tc.weights[id]; ok {
					h.src.add(id, paths[id])
					h.act.put(id, CPUWeight, w)
				}
			}
			ins := decideTick(t, h)
			got := map[CgroupID]Intent{}
			for _, in := range ins {
				got[in.Cgroup.ID] = in
			}
			if len(got) != len(tc.want) {
				t.Errorf("intents %+v, want %+v", ins, tc.want)
			}
			for id, w := range tc.want {
				in, ok := got[id]
				if !ok {
					t.Errorf("%s: no intent, want %d", paths[id], w.value)
					continue
				}
				if in.Kind != IntentWrite || in.Value != w.value || !strings.Contains(in.Reason, w.reason) {
					t.Errorf("%s: %v %d %q, want %d with %q", paths[id], in.Kind, in.Value, in.Reason, w.value, w.reason)
				}
			}
			if tc.log != "" {
				decideTick(t, h)
				if n := strings.Count(h.logText(), tc.log); n != 1 {
					t.Errorf("%d log lines %q, want 1:\n%s", n, tc.log, h.logText())
				}
			}
		})
	}
}

// TestBlameGiveBack: a culprit that stops preempting stays squeezed while
// the smoothed share holds it above the minimum (no flapping on one quiet
// tick), then is given back step by step as after recovery, while the
// trigger is still active and the other culprit is still squeezed.
func TestBlameGiveBack(t *testing.T) {
	h := newHarness(t, blamePolicy(10, Limits{Min: 1}))
	web := h.src.add(svcWeb, "svc/web")
	web.Set(CPUSomeAvg10, 30)
	web.Set(RunqPreemptedByOthers, 100)
	web.PreemptedBy = []Preemptor{{job1, 60}, {job2, 40}}
	h.src.add(job1, "batch/job1")
	h.src.add(job2, "batch/job2")
	h.tick(0)
	h.tick(time.Second)
	squeezed := h.act.get(job2, CPUWeight)
	if squeezed >= 100 || h.act.get(job1, CPUWeight) >= 100 {
		t.Fatalf("both culprits should be squeezed: job1 %d, job2 %d", h.act.get(job1, CPUWeight), squeezed)
	}
	// job2 stops. Window sums (5 ticks): its share falls 35%, 29%, 21%,
	// 12%, then 0%.
	web.Set(RunqPreemptedByOthers, 60)
	web.PreemptedBy = []Preemptor{{job1, 60}}
	for k := 1; k <= 4; k++ {
		h.tick(time.Second)
		if w := h.act.get(job2, CPUWeight); w > squeezed {
			t.Fatalf("quiet tick %d: job2 given back (%d > %d) while its smoothed share is above 10%%", k, w, squeezed)
		} else {
			squeezed = w
		}
	}
	h.tick(time.Second)
	if w := h.act.get(job2, CPUWeight); w <= squeezed {
		t.Fatalf("job2 no longer a culprit, yet not given back: %d", w)
	}
	for i := 0; i < 10; i++ {
		h.tick(time.Second)
	}
	if w := h.act.get(job2, CPUWeight); w != 100 {
		t.Errorf("job2 not restored: %d", w)
	}
	if w := h.act.get(job1, CPUWeight); w != 1 {
		t.Errorf("job1, still the culprit, should be at its floor: %d", w)
	}
	var back *Action
	for i := range h.actions {
		if a := &h.actions[i]; a.Cgroup.ID == job2 && strings.Contains(a.Reason, "not a culprit") {
			back = a
			break
		}
	}
	if back == nil {
		t.Fatalf("no give-back action naming why: %+v", h.actions)
	}
	if !strings.Contains(back.Reason, "batch/job2 is not a culprit: 0% of svc/web's preemptions by others") {
		t.Errorf("give-back reason: %q", back.Reason)
	}
	lines, err := h.loop.explain("batch/job2")
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(lines, "\n"); !strings.Contains(text, "blame: batch/job2 is not a culprit") || !strings.Contains(text, "nothing (not a culprit)") {
		t.Errorf("explain does not say job2 is no culprit:\n%s", text)
	}
	if !strings.Contains(h.logText(), "blame=\"culprits batch/job1 60%, batch/job2 40% of svc/web's preemptions by others\"") {
		t.Errorf("activation does not name the culprits:\n%s", h.logText())
	}
	st := h.loop.statusHead()
	if len(st.Controllers) != 1 || !strings.Contains(st.Controllers[0].Because, "blame: culprits batch/job1 100% of svc/web's preemptions by others") {
		t.Errorf("status: %+v", st.Controllers)
	}
}

// TestBlameHeldBack: squeezing a culprit takes away the preemptions that
// blamed it. While its own tasks are held back (throttled by its cpu.max,
// or waiting for CPU) it keeps its share and is squeezed on to the floor,
// not given back to preempt again (the flapping the VM scenario blame
// showed); once it is no longer held back it is given back; a new episode
// starts with no culprits.
func TestBlameHeldBack(t *testing.T) {
	h := newHarness(t, blamePolicy(10, Limits{Min: 1}))
	web := h.src.add(svcWeb, "svc/web")
	web.Set(CPUSomeAvg10, 30)
	web.Set(RunqPreemptedByOthers, 100)
	web.PreemptedBy = []Preemptor{{job1, 50}, {job2, 50}}
	j1 := h.src.add(job1, "batch/job1")
	j2 := h.src.add(job2, "batch/job2")
	h.tick(0)
	h.tick(time.Second)
	if h.act.get(job1, CPUWeight) >= 100 || h.act.get(job2, CPUWeight) >= 100 {
		t.Fatalf("both culprits should be squeezed: job1 %d, job2 %d", h.act.get(job1, CPUWeight), h.act.get(job2, CPUWeight))
	}
	// The squeeze works: neither preempts the service any more (others
	// still do), job1 is throttled by its cpu.max, job2's tasks wait for
	// CPU.
	web.Set(RunqPreemptedByOthers, 40)
	web.PreemptedBy = []Preemptor{{svcDB, 40}}
	j1.Set(CPUThrottled, 60)
	j2.Set(CPUSomeStall, 40)
	last1, last2 := h.act.get(job1, CPUWeight), h.act.get(job2, CPUWeight)
	for k := 1; k <= 12; k++ {
		h.tick(time.Second)
		w1, w2 := h.act.get(job1, CPUWeight), h.act.get(job2, CPUWeight)
		if w1 > last1 || w2 > last2 {
			t.Fatalf("tick %d: a culprit held back by the squeeze was given back: job1 %d -> %d, job2 %d -> %d", k, last1, w1, last2, w2)
		}
		last1, last2 = w1, w2
	}
	if last1 != 1 || last2 != 1 {
		t.Errorf("culprits held back should reach the floor: job1 %d, job2 %d", last1, last2)
	}
	var held *Action
	for i := range h.actions {
		if a := &h.actions[i]; a.Cgroup.ID == job1 && strings.Contains(a.Reason, "held back by the squeeze") {
			held = a
		}
	}
	if held == nil {
		t.Fatalf("no action says the culprit is held back: %+v", h.actions)
	}
	if !regexp.MustCompile(`batch/job1: [1-9][0-9]% of svc/web's preemptions by others \(step × 1\.00; [0-9]% now, held back by the squeeze\)`).MatchString(held.Reason) {
		t.Errorf("held reason: %q", held.Reason)
	}
	// job2 stops working: no longer held back, given back while job1
	// stays at the floor.
	j2.Set(CPUSomeStall, 0)
	for k := 0; k < 12; k++ {
		h.tick(time.Second)
	}
	if w := h.act.get(job2, CPUWeight); w != 100 {
		t.Errorf("job2, no longer held back, should be given back: %d", w)
	}
	if w := h.act.get(job1, CPUWeight); w != 1 {
		t.Errorf("job1, still held back, should stay at the floor: %d", w)
	}
	// The trigger recovers: the episode ends, its culprits are forgotten.
	web.Set(CPUSomeAvg10, 0)
	for k := 0; k < 40; k++ {
		h.tick(time.Second)
	}
	if w := h.act.get(job1, CPUWeight); w != 100 {
		t.Fatalf("job1 not restored after recovery: %d", w)
	}
	// A new episode: job1 is still throttled but preempts no one: not a
	// culprit.
	web.Set(CPUSomeAvg10, 30)
	for k := 0; k < 6; k++ {
		h.tick(time.Second)
	}
	if w := h.act.get(job1, CPUWeight); w != 100 {
		t.Errorf("a new episode blamed job1 for the last one's preemptions: %d", w)
	}
}

// TestBlameNoDataExplain: without preemption data explain says the whole
// class is squeezed, and why.
func TestBlameNoDataExplain(t *testing.T) {
	h := newHarness(t, blamePolicy(10, Limits{Min: 1}))
	web := h.src.add(svcWeb, "svc/web")
	web.Set(CPUSomeAvg10, 30)
	h.src.add(job1, "batch/job1")
	h.tick(0)
	lines, err := h.loop.explain("batch/job1")
	if err != nil {
		t.Fatal(err)
	}
	if text := strings.Join(lines, "\n"); !strings.Contains(text, "blame: no preemption data: squeezing the whole class") {
		t.Errorf("explain:\n%s", text)
	}
}

func TestScaledStep(t *testing.T) {
	for _, tc := range []struct {
		st   Step
		from int64
		f    float64
		want int64
	}{
		{Step{Percent: 50}, 100, 1, 50},
		{Step{Percent: 50}, 100, 0.5, 25},
		{Step{Percent: 50}, 100, 0.001, 1},
		{Step{Amount: 30}, 100, 0.5, 15},
		{Step{Amount: 30}, 100, 0.01, 1},
		// Rounded, not truncated: near the bottom truncation halved the
		// step of a culprit with 77% of the biggest share.
		{Step{Percent: 50}, 5, 0.77, 2},
		{Step{Percent: 50}, 7, 0.77, 3},
		{Step{Percent: 50}, 100, 1.0 / 3, 17},
		{Step{Amount: 30}, 100, 0.49, 15},
		// Never more than the full step (4.95 × 0.99 rounds to 5, the
		// full step is 4).
		{Step{Percent: 45}, 11, 0.99, 4},
	} {
		if got := scaledStep(tc.st, tc.from, tc.f); got != tc.want {
			t.Errorf("scaledStep(%+v, %d, %g) = %d, want %d", tc.st, tc.from, tc.f, got, tc.want)
		}
	}
}

// TestBlameSubtrees: classes of slices. The victim member svc's count is
// its subtree's, less preemptions among its own children; the target
// member batch is blamed for its job's preemptions.
func TestBlameSubtrees(t *testing.T) {
	pol := blamePolicy(0, Limits{Min: 1})
	pol.Classes = []Class{{Name: "svc", Match: []string{"svc"}, Protected: true}, {Name: "batch", Match: []string{"batch"}}}
	h := newHarness(t, pol)
	slice := h.src.add(1, "svc")
	slice.Set(CPUSomeAvg10, 30)
	slice.Set(RunqPreemptedByOthers, 0)
	web := h.src.add(svcWeb, "svc/web")
	web.Set(RunqPreemptedByOthers, 100)
	web.PreemptedBy = []Preemptor{{job1, 50}, {svcDB, 30}, {99, 20}}
	h.src.add(svcDB, "svc/db").Set(RunqPreemptedByOthers, 0)
	h.src.add(2, "batch")
	h.src.add(job1, "batch/job1")
	h.src.add(99, "other/x")
	h.act.put(2, CPUWeight, 100)
	checkIntents(t, decideTick(t, h), []Intent{{Kind: IntentWrite, Knob: CPUWeight, Value: 50,
		Reason: "blame: batch: 71% of svc's preemptions by others (step × 1.00)"}})
}

func TestNearest(t *testing.T) {
	at := map[string]*Sample{"a": {Ref: Ref{ID: 1, Path: "a"}}, "a/b/c": {Ref: Ref{ID: 2, Path: "a/b/c"}}}
	for path, want := range map[string]CgroupID{"a": 1, "a/b": 1, "a/b/c": 2, "a/b/c/d": 2, "ab": 0, "": 0, "x/a": 0} {
		got := CgroupID(0)
		if s := nearest(at, path); s != nil {
			got = s.ID
		}
		if got != want {
			t.Errorf("nearest(%q) = %d, want %d", path, got, want)
		}
	}
	if !within("a/b", "a") || within("ab", "a") || !within("a", "a") || !within("x", "") {
		t.Error("within")
	}
}

// A rule blames as suppress does: only the culprit's knob moves, in the
// rule's direction.
func TestRuleBlame(t *testing.T) {
	sp := blamePolicy(0, Limits{})
	pol := &Policy{Classes: sp.Classes, Rules: []Rule{{
		Name: "idle", Target: "batch", Trigger: sp.Suppress[0].Trigger,
		Knob: CPUIdle, Step: Step{Amount: 1}, Limits: Limits{Max: 1},
		Blame: BlamePreemption,
	}}}
	h := newHarness(t, pol)
	web := h.src.add(svcWeb, "svc/web")
	web.Set(CPUSomeAvg10, 30)
	web.Set(RunqPreemptedByOthers, 10)
	web.PreemptedBy = []Preemptor{{job2, 10}}
	h.src.add(job1, "batch/job1")
	h.src.add(job2, "batch/job2")
	ins := decideTick(t, h)
	if len(ins) != 1 || ins[0].Cgroup.ID != job2 || ins[0].Knob != CPUIdle || ins[0].Value != 1 {
		t.Fatalf("intents %+v, want job2's cpu.idle to 1", ins)
	}
}

// TestBlameEpisodeShare: shares -> knob moves once the squeeze works. A
// culprit's smoothed share falls as its squeeze takes its preemptions
// away; while its own tasks are held back it keeps the biggest share it
// had in the episode, so it is squeezed in proportion to what it did, not
// to what the squeeze left (before, the biggest culprit on a CPU, squeezed
// the hardest, fell to a fraction of a step: in the VM scenario blame
// job1 went from 40% to 10%, step × 0.53, and its cpu.weight came down
// one unit per cooldown). A culprit not held back moves by its share now.
func TestBlameEpisodeShare(t *testing.T) {
	paths := map[CgroupID]string{job1: "batch/job1", job2: "batch/job2"}
	type want struct {
		value  int64
		reason string
	}
	cases := []struct {
		name         string
		minShare     float64
		before, then []Preemptor // the service's preemptors (of 100/s by others), 5 ticks each
		held         bool        // job1's and job2's cpu.max throttle them
		want         map[CgroupID]want
	}{
		{name: "held back: the episode's biggest share",
			minShare: 5,
			before:   []Preemptor{{job1, 60}, {job2, 40}},
			then:     []Preemptor{{job1, 10}, {job2, 30}},
			held:     true,
			want: map[CgroupID]want{
				job1: {50, "batch/job1: 60% of svc/web's preemptions by others (step × 1.00; 10% now, held back by the squeeze)"},
				job2: {67, "batch/job2: 40% of svc/web's preemptions by others (step × 0.67; 30% now, held back by the squeeze)"},
			}},
		{name: "held back below the minimum share: the episode's biggest share, not the last above it",
			minShare: 10,
			before:   []Preemptor{{job1, 60}, {job2, 40}},
			then:     []Preemptor{{job1, 2}, {job2, 30}},
			held:     true,
			want: map[CgroupID]want{
				job1: {50, "batch/job1: 60% of svc/web's preemptions by others (step × 1.00; 2% now, held back by the squeeze)"},
				job2: {67, "batch/job2: 40% of svc/web's preemptions by others (step × 0.67; 30% now, held back by the squeeze)"},
			}},
		{name: "a bigger share later raises it",
			minShare: 5,
			before:   []Preemptor{{job1, 20}, {job2, 40}},
			then:     []Preemptor{{job1, 60}, {job2, 10}},
			held:     true,
			want: map[CgroupID]want{
				job1: {50, "batch/job1: 60% of svc/web's preemptions by others (step × 1.00)"},
				job2: {67, "batch/job2: 40% of svc/web's preemptions by others (step × 0.67; 10% now, held back by the squeeze)"},
			}},
		{name: "not held back: the share now",
			minShare: 5,
			before:   []Preemptor{{job1, 60}, {job2, 40}},
			then:     []Preemptor{{job1, 10}, {job2, 30}},
			want: map[CgroupID]want{
				job1: {83, "batch/job1: 10% of svc/web's preemptions by others (step × 0.33)"},
				job2: {50, "batch/job2: 30% of svc/web's preemptions by others (step × 1.00)"},
			}},
		{name: "not held back, below the minimum share: given back",
			minShare: 10,
			before:   []Preemptor{{job1, 60}, {job2, 40}},
			then:     []Preemptor{{job1, 2}, {job2, 30}},
			want: map[CgroupID]want{
				job2: {50, "batch/job2: 30% of svc/web's preemptions by others (step × 1.00)"},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, blamePolicy(tc.minShare, Limits{Min: 1}))
			web := h.src.add(svcWeb, "svc/web")
			web.Set(CPUSomeAvg10, 30)
			web.Set(RunqPreemptedByOthers, 100)
			for _, id := range []CgroupID{job1, job2} {
				s := h.src.add(id, paths[id])
				if tc.held {
					s.Set(CPUThrottled, 60)
				}
				h.act.put(id, CPUWeight, 100)
			}
			// Intents are not applied: each tick decides from weight 100.
			var ins []Intent
			for k := 0; k < 2*blameWindow; k++ {
				web.PreemptedBy = tc.before
				if k >= blameWindow {
					web.PreemptedBy = tc.then
				}
				ins = decideTick(t, h)
				h.clock.Advance(time.Second)
			}
			got := map[CgroupID]Intent{}
			for _, in := range ins {
				got[in.Cgroup.ID] = in
			}
			for id := range got {
				if _, ok := tc.want[id]; !ok {
					t.Errorf("%s: unexpected intent %+v", paths[id], got[id])
				}
			}
			for id, w := range tc.want {
				in, ok := got[id]
				if !ok {
					t.Errorf("%s: no intent, want %d", paths[id], w.value)
					continue
				}
				if in.Kind != IntentWrite || in.Value != w.value || !strings.Contains(in.Reason, w.reason) {
					t.Errorf("%s: %v %d %q, want %d with %q", paths[id], in.Kind, in.Value, in.Reason, w.value, w.reason)
				}
			}
		})
	}
}

package governor

import (
	"strings"
	"testing"
	"time"
)

// TestTriggerHysteresis drives one trigger through a series of values, one
// per second, and checks the active flag after each.
func TestTriggerHysteresis(t *testing.T) {
	above := func(v float64, d time.Duration) Condition {
		return Condition{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Above, Value: v, For: d}
	}
	below := func(v float64, d time.Duration) Condition {
		return Condition{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Below, Value: v, For: d}
	}
	for _, tc := range []struct {
		name   string
		trig   Trigger
		values []float64 // -1: signal missing
		want   string    // one char per value: '.' inactive, 'A' active
	}{
		{"immediate", Trigger{When: []Condition{above(10, 0)}}, []float64{5, 11, 12, 9, 5}, ".AA.."},
		{"must hold 3s", Trigger{When: []Condition{above(10, 3*time.Second)}}, []float64{11, 11, 11, 11, 5}, "...AA"},
		{"interrupted hold restarts", Trigger{When: []Condition{above(10, 2*time.Second)}}, []float64{11, 11, 5, 11, 11, 11}, ".....A"},
		{"equal is not above", Trigger{When: []Condition{above(10, 0)}}, []float64{10, 10.01}, ".A"},
		{"missing signal never triggers", Trigger{When: []Condition{above(10, 0)}}, []float64{-1, -1, 50}, "..A"},
		{"hysteresis band", Trigger{When: []Condition{above(10, 0)}, Recover: []Condition{below(2, 0)}}, []float64{20, 5, 5, 1, 5, 20}, "AAA..A"},
		{"recover must hold", Trigger{When: []Condition{above(10, 0)}, Recover: []Condition{below(2, 2*time.Second)}}, []float64{20, 1, 1, 1, 1}, "AAA.."},
		{"no recover: clear for the longest for", Trigger{When: []Condition{above(10, 2*time.Second)}}, []float64{20, 20, 20, 5, 5, 5, 5}, "..AAA.."},
		{"any of several", Trigger{When: []Condition{above(50, 0), {Scope: ScopeHost, Signal: MemorySomeAvg10, Op: Above, Value: 1}}}, []float64{20, 60}, ".A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTriggerState(&tc.trig)
			now := time.Unix(1000, 0)
			got := make([]byte, 0, len(tc.values))
			for _, x := range tc.values {
				host := &Sample{}
				if x >= 0 {
					host.Set(CPUSomeAvg10, x)
				}
				v := &View{Now: now, Snap: &Snapshot{Host: host}}
				active, _ := ts.update(v, &tc.trig, nil)
				if active {
					got = append(got, 'A')
				} else {
					got = append(got, '.')
				}
				now = now.Add(time.Second)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestClassConditionUsesWorstMember(t *testing.T) {
	a, b := &Sample{}, &Sample{}
	a.Set(CPUSomeAvg10, 3)
	b.Set(CPUSomeAvg10, 30)
	v := &View{Now: time.Unix(1, 0), Snap: &Snapshot{}, Members: map[string][]*Sample{"web": {a, b}}}
	up := Condition{Scope: ScopeClass, Class: "web", Signal: CPUSomeAvg10, Op: Above, Value: 10}
	if x, ok := v.evalCondition(&up, nil); !ok || x != 30 {
		t.Errorf("above: worst is the highest: %v %v", x, ok)
	}
	// One member still suffers: the class has not recovered.
	down := Condition{Scope: ScopeClass, Class: "web", Signal: CPUSomeAvg10, Op: Below, Value: 5}
	if x, ok := v.evalCondition(&down, nil); ok || x != 30 {
		t.Errorf("below: holds only when every member is below: %v %v", x, ok)
	}
	b.Set(CPUSomeAvg10, 4)
	if x, ok := v.evalCondition(&down, nil); !ok || x != 4 {
		t.Errorf("below: every member below now: %v %v", x, ok)
	}
	empty := Condition{Scope: ScopeClass, Class: "none", Signal: CPUSomeAvg10, Op: Below, Value: 5}
	if _, ok := v.evalCondition(&empty, nil); ok {
		t.Errorf("an empty class never satisfies a condition")
	}
}

func TestMatchPath(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"system.slice/web.service", "system.slice/web.service", true},
		{"system.slice/*.service", "system.slice/web.service", true},
		{"system.slice/*.service", "system.slice/web.service/child", false},
		{"batch.slice/*", "batch.slice", false},
		{"batch.slice/**", "batch.slice", true},
		{"batch.slice/**", "batch.slice/a/b/c", true},
		{"**/app-*.scope", "user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope", true},
		{"**", "", false},
		{"**", "anything/at/all", true},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "a/b/c/y", false},
		{"[", "x", false},
	} {
		if got := MatchPath(tc.pattern, tc.path); got != tc.want {
			t.Errorf("MatchPath(%q, %q) = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"", "/abs", "a/../b", "./a", "a//b", "a/[", "a\x00b", "web\n.service"} {
		if CheckPattern(bad) == nil {
			t.Errorf("CheckPattern(%q) accepted", bad)
		}
	}
	if err := CheckPattern("system.slice/**/*.scope"); err != nil {
		t.Errorf("valid pattern refused: %v", err)
	}
}

func TestSignalTable(t *testing.T) {
	for s := Signal(0); s < NumSignals; s++ {
		if s.Name() == "" || s.Unit() == 0 || s.Help() == "" {
			t.Errorf("signal %d incompletely described", s)
		}
		if got, ok := SignalByName(s.Name()); !ok || got != s {
			t.Errorf("SignalByName(%q) = %v", s.Name(), got)
		}
	}
	for res, name := range []string{"cpu", "memory", "io"} {
		for _, full := range []bool{false, true} {
			line := map[bool]string{false: "some", true: "full"}[full]
			for f, field := range []string{"avg10", "avg60", "avg300", "stall"} {
				if got := PSISignal(res, full, f).Name(); got != name+"."+line+"."+field {
					t.Errorf("PSISignal(%d,%v,%d) = %s", res, full, f, got)
				}
			}
		}
	}
}

func TestDescribeNamesOnlyWhatHolds(t *testing.T) {
	tr := Trigger{When: []Condition{
		{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Above, Value: 10},
		{Scope: ScopeHost, Signal: MemoryFullAvg10, Op: Above, Value: 40},
	}}
	ts := newTriggerState(&tr)
	host := &Sample{}
	host.Set(CPUSomeAvg10, 50)
	host.Set(MemoryFullAvg10, 1)
	ts.update(&View{Now: time.Unix(1, 0), Snap: &Snapshot{Host: host}}, &tr, nil)
	got := ts.describe(&tr, false)
	if !strings.Contains(got, "cpu.some.avg10") || strings.Contains(got, "memory.full.avg10") {
		t.Errorf("describe named a condition that does not hold: %s", got)
	}
}

package governor

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeArmer struct {
	armed map[CgroupID][]string
	fail  bool
}

func (f *fakeArmer) Arm(cg Ref, res string, full bool, stall, window time.Duration) error {
	if f.fail {
		return fmt.Errorf("arm %s: permission denied", cg.Path)
	}
	f.armed[cg.ID] = append(f.armed[cg.ID], fmt.Sprintf("%s full=%v %s/%s", res, full, stall, window))
	return nil
}

func (f *fakeArmer) Disarm(id CgroupID) { delete(f.armed, id) }

func TestWatchedCgroupsGetTriggers(t *testing.T) {
	fa := &fakeArmer{armed: map[CgroupID][]string{}}
	p := suppressPolicy()
	p.MemHigh = []MemoryHighController{{Name: "mh", Target: "batch", Step: Step{Percent: 10}, Headroom: Step{Percent: 10},
		Trigger: Trigger{When: []Condition{
			{Scope: ScopeSelf, Signal: MemoryFullAvg10, Op: Above, Value: 5},
			{Scope: ScopeSelf, Signal: MemoryFullAvg60, Op: Above, Value: 2}, // same resource and line: lowest wins
			{Scope: ScopeSelf, Signal: MemoryCurrent, Op: Above, Value: 1e9}, // not PSI: no trigger
		}}}}
	h := newHarness(t, p, func(c *Config) { c.Armer = fa })
	h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "batch.slice/a")
	h.src.add(other, "elsewhere")
	h.tick(time.Second)
	h.tick(time.Second)
	want := map[CgroupID]string{
		web:   "[cpu full=false 200ms/2s]",
		batch: "[memory full=true 40ms/2s]",
	}
	if len(fa.armed) != 2 {
		t.Errorf("armed: %v", fa.armed)
	}
	for id, w := range want {
		if got := fmt.Sprint(fa.armed[id]); got != w {
			t.Errorf("cgroup %d: armed %s, want %s", id, got, w)
		}
	}
	h.src.remove(web)
	h.tick(time.Second)
	if _, ok := fa.armed[web]; ok || h.loop.armed != 1 {
		t.Errorf("removed cgroup still armed: %v (count %d)", fa.armed, h.loop.armed)
	}
	h.loop.SetPolicy(&Policy{})
	h.tick(time.Second)
	if len(fa.armed) != 0 || h.loop.armed != 0 {
		t.Errorf("policy without conditions left triggers: %v", fa.armed)
	}
}

func TestArmFailureIsLoggedOnceAndNotRetried(t *testing.T) {
	fa := &fakeArmer{armed: map[CgroupID][]string{}, fail: true}
	h := newHarness(t, suppressPolicy(), func(c *Config) { c.Armer = fa })
	h.src.add(web, "system.slice/web.service")
	for i := 0; i < 5; i++ {
		h.tick(time.Second)
	}
	if n := strings.Count(h.logText(), "cannot arm PSI trigger"); n != 1 {
		t.Errorf("arm failure logged %d times, want once", n)
	}
}

type fakeWatcher struct {
	ch      chan Ref
	watched map[CgroupID]Watch
	fail    bool
}

func (f *fakeWatcher) Wake() <-chan Ref { return f.ch }

func (f *fakeWatcher) Watch(cg Ref, w Watch) error {
	if f.fail {
		return fmt.Errorf("watch %s: map full", cg.Path)
	}
	f.watched[cg.ID] = w
	return nil
}

func (f *fakeWatcher) Unwatch(id CgroupID) { delete(f.watched, id) }

func TestFastSpecs(t *testing.T) {
	cond := func(scope Scope, class string, sig Signal, op Op, v float64) Condition {
		return Condition{Scope: scope, Class: class, Signal: sig, Op: op, Value: v}
	}
	p := suppressPolicy()
	p.Suppress[0].Trigger.When = []Condition{
		cond(ScopeClass, "web", RunqP99, Above, 0.02),
		cond(ScopeClass, "web", RunqP90, Above, 0.01),      // lowest quantile threshold wins
		cond(ScopeClass, "web", CPUSomeStall, Above, 20),   // 20 % of 100 ms of waits
		cond(ScopeClass, "web", RunqDelay, Above, 50),      // higher than 20 %: loses
		cond(ScopeClass, "web", MemorySomeStall, Above, 5), // 5 ms of reclaim
		cond(ScopeClass, "web", CPUSomeAvg10, Above, 1),    // a kernel average: no watch
		cond(ScopeClass, "web", ReclaimStall, Above, 0.1),  // below the 1 ms floor
		cond(ScopeClass, "web", RunqP50, Below, 0.001),     // falling: no watch
		cond(ScopeClass, "web", MemoryCurrent, Above, 1e9), // not a stall
		cond(ScopeClass, "web", IOSomeStall, Above, 10),    // io: BPF does not see it
		cond(ScopeSelf, "", RunqP99, Above, 0.000001),      // the target (batch), 100 µs floor
	}
	long := cond(ScopeClass, "web", RunqP50, Above, 0.001) // a `for` longer than the tick: no watch
	long.For = 2 * time.Second
	p.Tick = time.Second
	p.Suppress[0].Trigger.When = append(p.Suppress[0].Trigger.When, long)
	got := fastSpecs(p, buildControllers(p))
	want := map[string]Watch{
		"web":   {Wait: 10 * time.Millisecond, WaitSum: 20 * time.Millisecond, MemStall: time.Millisecond},
		"batch": {Wait: 100 * time.Microsecond},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fastSpecs:\n got %v\nwant %v", got, want)
	}
}

func TestFastPathWatchesMembers(t *testing.T) {
	fw := &fakeWatcher{ch: make(chan Ref), watched: map[CgroupID]Watch{}}
	p := suppressPolicy()
	p.Suppress[0].Trigger.When = []Condition{{Scope: ScopeClass, Class: "web", Signal: RunqP99, Op: Above, Value: 0.05}}
	h := newHarness(t, p, func(c *Config) { c.Watcher = fw })
	h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "batch.slice/a")
	h.tick(time.Second)
	h.tick(time.Second)
	if fmt.Sprint(fw.watched) != fmt.Sprint(map[CgroupID]Watch{web: {Wait: 50 * time.Millisecond}}) {
		t.Errorf("watched: %v, want web only, one wait of 50ms", fw.watched)
	}
	h.src.remove(web)
	h.tick(time.Second)
	if len(fw.watched) != 0 || h.loop.watched != 0 {
		t.Errorf("removed cgroup still watched: %v (count %d)", fw.watched, h.loop.watched)
	}
	h.src.add(web+100, "system.slice/web.service")
	h.tick(time.Second)
	if _, ok := fw.watched[web+100]; !ok {
		t.Errorf("new member not watched: %v", fw.watched)
	}
	h.loop.SetPolicy(&Policy{})
	h.tick(time.Second)
	if len(fw.watched) != 0 || h.loop.watched != 0 {
		t.Errorf("policy without conditions left watches: %v", fw.watched)
	}
}

func TestFastPathWatchFailureIsLoggedOnce(t *testing.T) {
	fw := &fakeWatcher{ch: make(chan Ref), watched: map[CgroupID]Watch{}, fail: true}
	p := suppressPolicy()
	p.Suppress[0].Trigger.When = []Condition{{Scope: ScopeClass, Class: "web", Signal: CPUSomeStall, Op: Above, Value: 10}}
	h := newHarness(t, p, func(c *Config) { c.Watcher = fw })
	h.src.add(web, "system.slice/web.service")
	for range 5 {
		h.tick(time.Second)
	}
	if n := strings.Count(h.logText(), "cannot watch cgroup on the BPF fast path"); n != 1 {
		t.Errorf("watch failure logged %d times, want once", n)
	}
}

// A fast-path wake-up runs a Step long before the tick, and another one
// FastWindow later; a storm of them runs Steps no closer than wakeGap
// apart.
func TestFastWakeRunsStep(t *testing.T) {
	fw := &fakeWatcher{ch: make(chan Ref), watched: map[CgroupID]Watch{}}
	p := protectPolicy()
	p.Tick = time.Hour
	var steps atomic.Int64
	h := newHarness(t, p, func(c *Config) {
		c.Watcher = fw
		c.Clock = SystemClock{}
		c.AfterStep = func(StepResult) { steps.Add(1) }
	})
	h.src.add(web, "system.slice/web.service")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.loop.Run(ctx) }()
	waitSteps := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); steps.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d steps, want %d", steps.Load(), n)
			}
		}
	}
	waitSteps(1) // the first tick
	time.Sleep(2 * wakeGap)
	fw.ch <- Ref{ID: web}
	waitSteps(2)
	waitSteps(3) // the follow-up one FastWindow later (the tick is an hour)
	time.Sleep(2 * FastWindow)
	if n := steps.Load(); n != 3 {
		t.Errorf("%d steps after one wake-up, want 3 (tick, wake-up, follow-up)", n)
	}

	before := steps.Load()
	start := time.Now()
	for time.Since(start) < 10*wakeGap {
		fw.ch <- Ref{ID: web}
	}
	elapsed := time.Since(start)
	waitSteps(before + 1)
	time.Sleep(2 * wakeGap) // the held wake-up's Step
	n := steps.Load() - before
	if limit := int64(elapsed/wakeGap) + 3; n > limit {
		t.Errorf("%d steps in %v of wake-ups, want at most %d (one per %v)", n, elapsed, limit, wakeGap)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.loop.Close(context.Background())
}

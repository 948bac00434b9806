package governor

import (
	"fmt"
	"strings"
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

package bpf

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/governor-dev/governor/governor"
)

// collectAlerts reads wake-ups for d and counts them per cgroup.
func collectAlerts(s *Sensor, d time.Duration) map[governor.CgroupID]int {
	got := map[governor.CgroupID]int{}
	deadline := time.After(d)
	for {
		select {
		case r := <-s.Wake():
			got[r.ID]++
		case <-deadline:
			return got
		}
	}
}

// hogUntilSlot starts two hogs on CPU 0 in cg and waits until the
// programs have given cg a cg_slots slot. The sched_info program gives a
// task's first sample at its second switch-out in the cgroup; a slow
// guest takes a while.
func hogUntilSlot(t *testing.T, s *Sensor, p *procs, cg testCgroup) {
	t.Helper()
	p.start(t, "spin", cg, 0, nil, nil)
	p.start(t, "spin", cg, 0, nil, nil)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := histCount(t, s, cg.ID); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no slot after 5 s of two hogs", cg.Path)
		}
	}
}

// TestFastPathAlerts: a watched cgroup whose tasks wait for CPU 0 wakes
// the loop, at most once per alert gap; an unwatched one beside it, a
// watched one that does not wait, and the first once unwatched do not.
func TestFastPathAlerts(t *testing.T) {
	requireBPF(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	for _, v := range loadVariants {
		t.Run(v.name, func(t *testing.T) { testFastPath(t, v) })
	}
}

func testFastPath(t *testing.T, v loadVariant) {
	const gap = 100 * time.Millisecond
	s := v.load(t, Options{AlertGap: gap})
	defer s.Close()
	base := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-fast-%d-%s", os.Getpid(), v.name))
	a := mkCgroup(t, base.dir, "a") // watched once its hogs run, two on CPU 0
	d := mkCgroup(t, base.dir, "d") // watched before its two hogs on CPU 0 start
	b := mkCgroup(t, base.dir, "b") // watched, one hog alone on CPU 1
	c := mkCgroup(t, base.dir, "c") // not watched, a hog on CPU 0
	var p procs
	defer p.stop()
	hogUntilSlot(t, s, &p, a)
	// a has a slot: Watch writes into it. d and b have none: the kernel
	// copies the watch when it allocates theirs.
	if err := s.Watch(a.Ref, governor.Watch{WaitSum: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(d.Ref, governor.Watch{Wait: 2 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(b.Ref, governor.Watch{Wait: 50 * time.Millisecond, WaitSum: 90 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	p.start(t, "spin", d, 0, nil, nil)
	p.start(t, "spin", d, 0, nil, nil)
	p.start(t, "spin", c, 0, nil, nil)
	p.start(t, "spin", b, 1, nil, nil)
	time.Sleep(300 * time.Millisecond)
	const window = 2 * time.Second
	got := collectAlerts(s, window)
	t.Logf("alerts in %v: a %d, d %d, b %d, c %d (total %d)", window, got[a.ID], got[d.ID], got[b.ID], got[c.ID], s.Alerts())
	for _, w := range []testCgroup{a, d} {
		if got[w.ID] == 0 {
			t.Errorf("no alert for the watched, waiting cgroup %s", w.Path)
		}
		// The kernel allows one alert per gap; the wake channel holds one.
		if max := int(window/gap) + 2; got[w.ID] > max {
			t.Errorf("%d alerts for %s in %v, want at most %d (one per %v)", got[w.ID], w.Path, window, max, gap)
		}
	}
	if got[c.ID] != 0 {
		t.Errorf("%d alerts for the unwatched cgroup c", got[c.ID])
	}
	// b's hog runs alone on CPU 1; a hog can still wait behind a kernel
	// thread for a moment, never for 50 ms (or 90 ms of waits in 100 ms).
	if got[b.ID] != 0 {
		t.Errorf("%d alerts for b, whose hog has CPU 1 to itself", got[b.ID])
	}

	s.Unwatch(a.ID)
	s.Unwatch(d.ID)
	s.Unwatch(b.ID)
	var n uint64
	var zero uint32
	if err := s.objs.Watching.Lookup(&zero, &n); err != nil || n != 0 {
		t.Errorf("watching[0] = %d (%v) with nothing watched, want 0", n, err)
	}
	collectAlerts(s, 50*time.Millisecond) // in flight when unwatched
	if got := collectAlerts(s, 500*time.Millisecond); len(got) != 0 {
		t.Errorf("alerts after Unwatch: %v", got)
	}
}

// TestFastPathReclaimAlert runs the reclaim begin/end programs around a
// 100 ms sleep: the test's own cgroup, watched for 50 ms of reclaim in a
// window, gets one alert; the same with a 200 ms threshold gets none.
func TestFastPathReclaimAlert(t *testing.T) {
	requireBPF(t)
	s, err := Load(Options{ForceRawTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	self := selfCgroup(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, tc := range []struct {
		sum  time.Duration
		want int
	}{{50 * time.Millisecond, 1}, {200 * time.Millisecond, 0}} {
		if err := s.Watch(self.Ref, governor.Watch{MemStall: tc.sum}); err != nil {
			t.Fatal(err)
		}
		runReclaim(t, [2]*ebpf.Program{s.objs.RawMemcgReclaimBegin, s.objs.RawMemcgReclaimEnd}, 100*time.Millisecond)
		got := collectAlerts(s, 200*time.Millisecond)
		if got[self.ID] != tc.want {
			t.Errorf("reclaim sum %v: %d alerts for the test's cgroup, want %d (all: %v)", tc.sum, got[self.ID], tc.want, got)
		}
		// Past the window and the gap before the next case.
		time.Sleep(150 * time.Millisecond)
	}
	s.Unwatch(self.ID)
}

// TestFastPathSlotWatch: Watch's run-queue thresholds reach the slot of a
// cgroup that has one, through the mapping and through the lookup-update
// fallback (a kernel that refuses to map cg_slots), and a threshold of 0
// (Unwatch's) clears them.
func TestFastPathSlotWatch(t *testing.T) {
	requireBPF(t)
	v := loadVariants[0]
	s := v.load(t, Options{})
	defer s.Close()
	a := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-slotwatch-%d", os.Getpid()))
	var p procs
	defer p.stop()
	hogUntilSlot(t, s, &p, a)
	read := func() (uint64, uint64) {
		var slot uint32
		id := uint64(a.ID)
		if err := s.objs.CgIndex.Lookup(&id, &slot); err != nil {
			t.Fatal(err)
		}
		var cur governorCgStats
		if err := s.objs.CgSlots.Lookup(&slot, &cur); err != nil {
			t.Fatal(err)
		}
		return cur.WatchWaitNs, cur.WatchWaitSumNs
	}
	mapped := s.slots
	for i, path := range []string{"mapping", "lookup-update"} {
		if path == "mapping" && mapped == nil {
			t.Logf("cg_slots not mapped here: only the fallback")
			continue
		}
		if path == "lookup-update" {
			s.slots = nil
		}
		for _, want := range [][2]uint64{{uint64(i+1) * 1e6, uint64(i+1) * 5e6}, {0, 0}} {
			if err := s.setSlotWatch(uint64(a.ID), want[0], want[1]); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if w, ws := read(); w != want[0] || ws != want[1] {
				t.Errorf("%s: slot holds wait %d, wait sum %d; want %d, %d", path, w, ws, want[0], want[1])
			}
		}
		s.slots = mapped
	}
}

package bpf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/hashicorp/go-hclog"

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

// TestFastPathMemStallShare: three allocators throttled above a small
// memory.high stall together. The memstall programs add up the time some
// of them stall (PSI's "some"), not each one's stall: every mem_some
// alert's value fits in its window, and the values, over windows that do
// not overlap, add up to no more than the growth of the cgroup's own
// memory.pressure "some" total. The next Sample raises the cgroup's
// memory.some.stall to the highest share an alert measured. A task moved
// to another cgroup in the middle of a stall ends it in the watch that
// counted it: once the others are gone, no stall is left counted. It
// needs the memory controller and the memstall programs: the VM test
// bed's guests from Debian 12 on.
func TestFastPathMemStallShare(t *testing.T) {
	requireBPF(t)
	ctrl, err := os.ReadFile(filepath.Join(unifiedRoot, "cgroup.controllers"))
	if err != nil || !strings.Contains(" "+string(ctrl)+" ", " memory ") {
		t.Skip("no memory controller in the cgroup2 hierarchy")
	}
	var logs lockedBuffer // the alert reader's goroutine writes, the test reads
	s, err := Load(Options{Logger: hclog.New(&hclog.LoggerOptions{Name: "bpf", Level: hclog.Trace, Output: &logs})})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.memstall {
		t.Skip("the memstall programs are not loaded on this kernel")
	}
	base := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-bpf-memsome-%d", os.Getpid()))
	if err := os.WriteFile(filepath.Join(base.dir, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
		t.Fatalf("enabling memory: %v", err)
	}
	m := mkCgroup(t, base.dir, "m")
	n := mkCgroup(t, base.dir, "n") // no limit: a moved task's stall ends there
	for knob, v := range map[string]string{"memory.high": "48M", "memory.max": "160M", "memory.swap.max": "0"} {
		if err := os.WriteFile(filepath.Join(m.dir, knob), []byte(v), 0); err != nil && knob != "memory.swap.max" {
			t.Fatal(err)
		}
	}
	someTotal := func() time.Duration {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(m.dir, "memory.pressure"))
		if err != nil {
			t.Fatal(err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		_, tot, ok := strings.Cut(line, "total=")
		us, err := strconv.ParseInt(strings.TrimSpace(tot), 10, 64)
		if !ok || err != nil {
			t.Fatalf("memory.pressure: %q", b)
		}
		return time.Duration(us) * time.Microsecond
	}
	if err := s.Watch(m.Ref, governor.Watch{MemStall: 5 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	before := someTotal()
	var p procs
	defer p.stop()
	var cmds []*exec.Cmd
	for cpu := range 3 {
		cmds = append(cmds, p.start(t, "alloc", m, cpu%runtime.NumCPU(), nil, nil))
	}
	time.Sleep(3 * time.Second)
	// The alerts logged so far measured stalls that PSI had counted by
	// the reading after them (alerts still in flight only shrink the sum).
	alerted := logs.String()
	psi := someTotal() - before

	// The first allocator, most likely in its throttling sleep, moves to
	// n; the others are killed. m's watch must count no stall then.
	if err := os.WriteFile(filepath.Join(n.dir, "cgroup.procs"), []byte(strconv.Itoa(cmds[0].Process.Pid)), 0); err != nil {
		t.Fatalf("moving an allocator to n: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range cmds[1:] {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	var w governorWatch
	key := uint64(m.ID)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := s.objs.Watches.Lookup(&key, &w); err != nil {
			t.Fatalf("m's watch: %v", err)
		}
		if w.Stalling == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("m's watch counts %d tasks in a stall 5 s after its tasks moved out or died", w.Stalling)
			break
		}
	}
	p.stop()
	s.Unwatch(m.ID)
	time.Sleep(100 * time.Millisecond) // alerts in flight

	// values: the mem_some alerts of m in a log.
	values := func(log string) (n int, sum, most time.Duration) {
		for _, line := range strings.Split(log, "\n") {
			if !strings.Contains(line, "fast-path alert") || !strings.Contains(line, "kind=mem_some") ||
				!strings.Contains(line, fmt.Sprintf("cgroup_id=%d ", m.ID)) {
				continue
			}
			_, v, _ := strings.Cut(line, "value=")
			d, err := time.ParseDuration(strings.Fields(v)[0])
			if err != nil {
				t.Fatalf("alert line %q: %v", line, err)
			}
			n++
			sum += d
			most = max(most, d)
		}
		return n, sum, most
	}
	nalerts, sum, _ := values(alerted)
	_, _, most := values(logs.String()) // all of them, as Sample saw them
	t.Logf("%d mem_some alerts in the first 3 s adding up to %v; memory.pressure some grew %v; largest alert %v", nalerts, sum, psi, most)
	if nalerts == 0 {
		t.Fatalf("no mem_some alert for m; log:\n%s", logs.String())
	}
	if most > defaultAlertWindow+defaultAlertWindow/20 {
		t.Errorf("an alert measured %v of stall in a %v window", most, defaultAlertWindow)
	}
	if sum > psi+psi/20+5*time.Millisecond {
		t.Errorf("alerts add up to %v of stall, more than the %v PSI counted: stalls of tasks stalling together counted twice?", sum, psi)
	}
	snap := snapshotOf(m)
	snap.Cgroups[0].Set(governor.MemorySomeStall, 0)
	if err := s.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	v, _ := snap.Cgroups[0].Get(governor.MemorySomeStall)
	if want := min(float64(most)/float64(defaultAlertWindow), 1) * 100; v < want*0.999 || v > want*1.001 {
		t.Errorf("memory.some.stall after Sample: %.2f%%, want the largest alert's share %.2f%%", v, want)
	}
	// Drained: the next Sample leaves the PSI source's value alone.
	snap = snapshotOf(m)
	snap.Cgroups[0].Set(governor.MemorySomeStall, 0)
	if err := s.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if v, _ := snap.Cgroups[0].Get(governor.MemorySomeStall); v != 0 {
		t.Errorf("memory.some.stall after a second Sample: %.2f%%, want the source's 0", v)
	}
}

// TestRaiseStalls: the highest share per cgroup is kept, capped at 100%;
// a Sample raises memory.some.stall where it is lower, never lowers it,
// and leaves it absent where the PSI source gave none.
func TestRaiseStalls(t *testing.T) {
	s := &Sensor{}
	s.noteStall(1, uint64(defaultAlertWindow/10))  // 10%
	s.noteStall(1, uint64(defaultAlertWindow/4))   // 25%: kept
	s.noteStall(1, uint64(defaultAlertWindow/20))  // 5%
	s.noteStall(2, uint64(defaultAlertWindow/10))  // 10%, below the source's 40%
	s.noteStall(3, uint64(defaultAlertWindow))     // absent in the source
	s.noteStall(4, uint64(defaultAlertWindow*3/2)) // capped at 100%
	s.noteStall(99, uint64(defaultAlertWindow/2))  // not in the snapshot
	snap := &governor.Snapshot{}
	for id, v := range map[governor.CgroupID]float64{1: 3, 2: 40, 3: -1, 4: 0} {
		c := &governor.Sample{Ref: governor.Ref{ID: id}}
		if v >= 0 {
			c.Set(governor.MemorySomeStall, v)
		}
		snap.Cgroups = append(snap.Cgroups, c)
	}
	s.raiseStalls(snap)
	for id, want := range map[governor.CgroupID]float64{1: 25, 2: 40, 3: -1, 4: 100} {
		v, ok := snap.Lookup(id).Get(governor.MemorySomeStall)
		if want < 0 {
			if ok {
				t.Errorf("cgroup %d: memory.some.stall %v, want absent", id, v)
			}
			continue
		}
		if !ok || v < want-1e-9 || v > want+1e-9 {
			t.Errorf("cgroup %d: memory.some.stall %v (%v), want %v", id, v, ok, want)
		}
	}
	if len(s.stallShare) != 0 {
		t.Errorf("shares left after raiseStalls: %v", s.stallShare)
	}
}

// lockedBuffer is a bytes.Buffer safe for one goroutine writing while
// another reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

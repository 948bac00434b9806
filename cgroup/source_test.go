package cgroup

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func wantSig(t *testing.T, s *governor.Sample, sig governor.Signal, want float64) {
	t.Helper()
	got, ok := s.Get(sig)
	if !ok {
		t.Errorf("%s: %s absent, want %g", s.Ref, sig, want)
		return
	}
	if !near(got, want) {
		t.Errorf("%s: %s = %g, want %g", s.Ref, sig, got, want)
	}
}

func noSig(t *testing.T, s *governor.Sample, sigs ...governor.Signal) {
	t.Helper()
	for _, sig := range sigs {
		if v, ok := s.Get(sig); ok {
			t.Errorf("%s: %s = %g, want absent", s.Ref, sig, v)
		}
	}
}

// sourceFixture builds a hierarchy: root, a (all controllers), a/b (no
// controllers, some-only cpu.pressure), c (a symlink elsewhere must not be
// followed), plus host pressure files.
func sourceFixture(t *testing.T) (root, proc string) {
	base := t.TempDir()
	root = filepath.Join(base, "cg")
	proc = filepath.Join(base, "pressure")
	mkCgroup(t, proc, "", map[string]string{
		"cpu": psiFile(1000, 0), "memory": psiFile(2000, 1000), "io": psiFile(3000, 2000),
	})
	mkCgroup(t, root, "", map[string]string{
		"cgroup.controllers": "cpu io memory pids\n",
		"cpu.pressure":       psiFile(0, 0),
		"cpu.stat":           "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
	})
	mkCgroup(t, root, "a", map[string]string{
		"cgroup.events":       "populated 1\nfrozen 0\n",
		"cpu.pressure":        psiFile(1_000_000, 500_000),
		"memory.pressure":     psiFile(0, 0),
		"io.pressure":         psiFile(0, 0),
		"memory.current":      "1000\n",
		"memory.swap.current": "10\n",
		"memory.high":         "max\n",
		"memory.max":          "2000\n",
		"memory.stat":         "anon 600\nfile 300\nkernel 100\n",
		"memory.events":       "low 0\nhigh 5\nmax 1\noom 0\noom_kill 0\noom_group_kill 0\n",
		"cpu.stat":            "usage_usec 1000000\nuser_usec 0\nsystem_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 1000\n",
		"io.stat":             "8:0 rbytes=100 wbytes=200 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
	})
	mkCgroup(t, root, "a/b", map[string]string{
		"cgroup.events": "populated 0\nfrozen 0\n",
		"cpu.pressure":  "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
	})
	mkCgroup(t, root, "c", map[string]string{"cgroup.events": "populated 0\nfrozen 0\n"})
	// A symlinked directory is not a cgroup and must not be walked.
	elsewhere := mkCgroup(t, base, "elsewhere", map[string]string{"cgroup.events": "populated 1\n"})
	if err := os.Symlink(elsewhere, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	return root, proc
}

func paths(snap *governor.Snapshot) string {
	var p []string
	for _, c := range snap.Cgroups {
		p = append(p, "/"+c.Path)
	}
	return strings.Join(p, " ")
}

func TestSourceFixture(t *testing.T) {
	root, proc := sourceFixture(t)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	src.now = clk.now
	ctx := context.Background()

	var snap governor.Snapshot
	snap.Reset(clk.t)
	if err := src.Sample(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(&snap), "/ /a /a/b /c"; got != want {
		t.Fatalf("cgroups %q, want %q (root first, pre-order, symlink not followed)", got, want)
	}
	for _, c := range snap.Cgroups {
		if want := inode(t, filepath.Join(root, c.Path)); c.ID != want {
			t.Errorf("%s: id %d, want inode %d", c.Ref, c.ID, want)
		}
	}
	if snap.Host == nil || snap.Host.ID != 0 {
		t.Fatalf("host sample %+v", snap.Host)
	}
	wantSig(t, snap.Host, governor.MemoryFullAvg300, 0.7)
	noSig(t, snap.Host, governor.CPUSomeStall)

	a := snap.Lookup(inode(t, filepath.Join(root, "a")))
	if !a.Populated {
		t.Error("a not populated")
	}
	wantSig(t, a, governor.CPUSomeAvg10, 1)
	wantSig(t, a, governor.IOFullAvg60, 0.6)
	wantSig(t, a, governor.MemoryCurrent, 1000)
	wantSig(t, a, governor.MemorySwap, 10)
	wantSig(t, a, governor.MemoryAnon, 600)
	wantSig(t, a, governor.MemoryFile, 300)
	wantSig(t, a, governor.MemoryMaxRatio, 50)
	wantStalled(t, a, 0, 0, 1_000_000)
	wantStalled(t, a, 0, 1, 500_000)
	wantStalled(t, a, 2, 0, 0)
	noSig(t, a, governor.MemoryHighRatio, // memory.high is max
		governor.CPUSomeStall, governor.CPUUsage, governor.CPUThrottled, // first sample: no rates
		governor.MemoryEventsHigh, governor.IOReadBytes)

	b := snap.Lookup(inode(t, filepath.Join(root, "a/b")))
	if b.Populated {
		t.Error("a/b populated")
	}
	wantSig(t, b, governor.CPUSomeAvg10, 0)
	noSig(t, b, governor.CPUFullAvg10, governor.MemoryCurrent, governor.MemorySomeAvg10, governor.CPUUsage)
	if _, ok := b.Stalled.Get(0, 1); ok || b.Stalled.Has != 1 {
		t.Errorf("a/b stall totals %+v, want cpu some only", b.Stalled)
	}

	// One second later: counters advance.
	clk.t = clk.t.Add(time.Second)
	dir := filepath.Join(root, "a")
	writeFixture(t, filepath.Join(dir, "cpu.pressure"), psiFile(1_500_000, 600_000))
	writeFixture(t, filepath.Join(dir, "cpu.stat"), "usage_usec 2500000\nnr_periods 20\nnr_throttled 6\nthrottled_usec 251000\n")
	writeFixture(t, filepath.Join(dir, "memory.events"), "high 8\nmax 1\noom 1\noom_kill 1\n")
	writeFixture(t, filepath.Join(dir, "io.stat"), "8:0 rbytes=4196 wbytes=200\n8:16 rbytes=1 wbytes=1026\n")
	writeFixture(t, filepath.Join(dir, "memory.high"), "4000\n")
	writeFixture(t, filepath.Join(proc, "cpu"), psiFile(201000, 0))
	if err := os.RemoveAll(filepath.Join(root, "c")); err != nil {
		t.Fatal(err)
	}
	snap.Reset(clk.t)
	if err := src.Sample(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(&snap), "/ /a /a/b"; got != want {
		t.Fatalf("cgroups %q, want %q", got, want)
	}
	a = snap.Lookup(inode(t, dir))
	wantSig(t, a, governor.CPUSomeStall, 50)
	wantSig(t, a, governor.CPUFullStall, 10)
	wantStalled(t, a, 0, 0, 1_500_000)
	wantSig(t, a, governor.MemorySomeStall, 0)
	wantSig(t, a, governor.CPUUsage, 1.5)
	wantSig(t, a, governor.CPUThrottled, 25)
	wantSig(t, a, governor.CPUThrottledPeriods, 4)
	wantSig(t, a, governor.MemoryEventsHigh, 3)
	wantSig(t, a, governor.MemoryEventsMax, 0)
	wantSig(t, a, governor.MemoryEventsOOMKill, 1)
	wantSig(t, a, governor.IOReadBytes, 4096)
	wantSig(t, a, governor.IOWriteBytes, 1024)
	wantSig(t, a, governor.MemoryHighRatio, 25)
	wantSig(t, snap.Host, governor.CPUSomeStall, 20)
	root0 := snap.Cgroups[0]
	wantSig(t, root0, governor.CPUUsage, 0)

	// State of cgroups not seen this round is dropped.
	if src.stateCount() != 3 {
		t.Errorf("%d cgroups with state, want 3", src.stateCount())
	}
}

func TestSourceCounterReset(t *testing.T) {
	root, proc := sourceFixture(t)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	src.now = clk.now
	var snap governor.Snapshot
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	// A counter going backwards yields no rate, not a negative one.
	clk.t = clk.t.Add(time.Second)
	writeFixture(t, filepath.Join(root, "a", "cpu.stat"), "usage_usec 5\n")
	snap.Reset(clk.t)
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	noSig(t, snap.Lookup(inode(t, filepath.Join(root, "a"))), governor.CPUUsage)
}

func TestSourceFilter(t *testing.T) {
	root, proc := sourceFixture(t)
	src := NewSource(root, SourceOptions{ProcPressureDir: proc, Filter: func(p string) bool { return p == "a/b" }})
	var snap governor.Snapshot
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(&snap), "/ /a /a/b /c"; got != want {
		t.Fatalf("cgroups %q, want %q: filtered cgroups are still enumerated", got, want)
	}
	for _, c := range snap.Cgroups {
		n := c.Has.Len()
		if c.Path == "a/b" && n == 0 {
			t.Errorf("a/b read no signals")
		}
		if c.Path != "a/b" && n != 0 {
			t.Errorf("%s: %d signals read despite the filter", c.Ref, n)
		}
		if c.ID == 0 {
			t.Errorf("%s: no id", c.Ref)
		}
	}
	if src.stateCount() != 1 {
		t.Errorf("state kept for %d cgroups, want 1", src.stateCount())
	}
}

func TestSourceMalformedAndVanished(t *testing.T) {
	root, proc := sourceFixture(t)
	// A malformed file makes its signals absent, not the sample fail.
	writeFixture(t, filepath.Join(root, "a", "memory.stat"), "anon lots\n")
	writeFixture(t, filepath.Join(root, "a", "cpu.pressure"), "garbage\n")
	// A non-root directory without cgroup.events was removed mid-walk.
	if err := os.Remove(filepath.Join(root, "c", "cgroup.events")); err != nil {
		t.Fatal(err)
	}
	src := NewSource(root, SourceOptions{ProcPressureDir: filepath.Join(proc, "missing")})
	var snap governor.Snapshot
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(&snap), "/ /a /a/b"; got != want {
		t.Fatalf("cgroups %q, want %q", got, want)
	}
	a := snap.Cgroups[1]
	noSig(t, a, governor.MemoryAnon, governor.CPUSomeAvg10)
	wantSig(t, a, governor.MemoryCurrent, 1000)
	if snap.Host == nil || snap.Host.Has.Len() != 0 {
		t.Errorf("host without /proc/pressure: %+v", snap.Host)
	}
}

func TestSourceErrors(t *testing.T) {
	src := NewSource(filepath.Join(t.TempDir(), "nope"), SourceOptions{})
	var snap governor.Snapshot
	if err := src.Sample(context.Background(), &snap); err == nil {
		t.Error("missing root: no error")
	}
	root, proc := sourceFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src = NewSource(root, SourceOptions{ProcPressureDir: proc})
	if err := src.Sample(ctx, &snap); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestSourceBigFile(t *testing.T) {
	// Files larger than the initial read buffer grow it.
	root, proc := sourceFixture(t)
	big := strings.Repeat("padding_key 1\n", 5000) + "anon 42\n"
	writeFixture(t, filepath.Join(root, "a", "memory.stat"), big)
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	var snap governor.Snapshot
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	wantSig(t, snap.Cgroups[1], governor.MemoryAnon, 42)
}

func BenchmarkSourceSample(b *testing.B) {
	base := b.TempDir()
	root := filepath.Join(base, "cg")
	mkCgroup(b, root, "", map[string]string{"cpu.pressure": psiFile(0, 0), "cpu.stat": "usage_usec 0\n"})
	for i := 0; i < 50; i++ {
		mkCgroup(b, root, "svc"+itoa(i), map[string]string{
			"cgroup.events": "populated 1\nfrozen 0\n", "cpu.pressure": psiFile(i, i),
			"memory.pressure": psiFile(i, i), "io.pressure": psiFile(i, i),
			"memory.current": "1000\n", "memory.stat": "anon 1\nfile 2\n", "memory.max": "max\n",
			"cpu.stat": "usage_usec 100\n",
		})
	}
	src := NewSource(root, SourceOptions{ProcPressureDir: filepath.Join(base, "none")})
	var snap governor.Snapshot
	b.ReportAllocs()
	for b.Loop() {
		snap.Reset(time.Now())
		if err := src.Sample(context.Background(), &snap); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSourceFollowsChanges(t *testing.T) {
	for _, walk := range []bool{false, true} {
		t.Run(map[bool]string{false: "inotify", true: "walk"}[walk], func(t *testing.T) {
			root, proc := sourceFixture(t)
			clk := &fakeClock{t: time.Unix(1000, 0)}
			src := NewSource(root, SourceOptions{ProcPressureDir: proc})
			defer src.Close()
			src.walkAll = walk
			src.now = clk.now
			var snap governor.Snapshot
			sample := func() {
				t.Helper()
				clk.t = clk.t.Add(time.Second)
				snap.Reset(clk.t)
				if err := src.Sample(context.Background(), &snap); err != nil {
					t.Fatal(err)
				}
			}
			sample()
			// Created (with a subtree), removed, renamed between ticks.
			events := map[string]string{"cgroup.events": "populated 0\nfrozen 0\n"}
			mkCgroup(t, root, "d", events)
			mkCgroup(t, root, "d/e", events)
			mkCgroup(t, root, "a/x", events)
			if err := os.RemoveAll(filepath.Join(root, "c")); err != nil {
				t.Fatal(err)
			}
			bID := inode(t, filepath.Join(root, "a/b"))
			if err := os.Rename(filepath.Join(root, "a/b"), filepath.Join(root, "a/y")); err != nil {
				t.Fatal(err)
			}
			sample()
			if got, want := paths(&snap), "/ /a /a/x /a/y /d /d/e"; got != want {
				t.Fatalf("cgroups %q, want %q", got, want)
			}
			if y := snap.Lookup(bID); y == nil || y.Path != "a/y" {
				t.Errorf("renamed cgroup: %+v, want id %d at a/y", y, bID)
			}
			for _, c := range snap.Cgroups {
				if want := inode(t, filepath.Join(root, c.Path)); c.ID != want {
					t.Errorf("%s: id %d, want inode %d", c.Ref, c.ID, want)
				}
			}
			// Removed and recreated under the same name: a new id.
			if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
				t.Fatal(err)
			}
			mkCgroup(t, root, "d", events)
			sample()
			if got, want := paths(&snap), "/ /a /a/x /a/y /d"; got != want {
				t.Fatalf("cgroups %q, want %q", got, want)
			}
			if d := snap.Cgroups[4]; d.ID != inode(t, filepath.Join(root, "d")) {
				t.Errorf("recreated d: stale id %d", d.ID)
			}
			if n := src.stateCount(); n != 5 {
				t.Errorf("state for %d cgroups, want 5", n)
			}
		})
	}
}

// A cgroup without tasks whose pressure stands at zero is not read again
// until something in its directory changes (or its refresh comes round);
// its last values are served meanwhile.
// tickingSource returns a Source over the fixture at root on a fake clock,
// and a function that samples one second after the previous sample and
// returns the sample of cgroup rel.
func tickingSource(t *testing.T, root, proc, rel string) (*Source, func() *governor.Sample) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	t.Cleanup(func() { src.Close() })
	src.now = clk.now
	var snap governor.Snapshot
	return src, func() *governor.Sample {
		t.Helper()
		clk.t = clk.t.Add(time.Second)
		snap.Reset(clk.t)
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		return snap.Lookup(inode(t, filepath.Join(root, rel)))
	}
}

func TestSourceQuietCgroups(t *testing.T) {
	root, proc := sourceFixture(t)
	// A memory file for the quiet a/b to refresh (without one it is
	// refreshed only when missing files are probed for again).
	writeFixture(t, filepath.Join(root, "a/b", "memory.current"), "4096\n")
	src, sample := tickingSource(t, root, proc, "a/b")
	sample()
	b := sample() // second read: rates present, all zero: quiet from now
	wantSig(t, b, governor.CPUSomeStall, 0)
	// Root and a (populated) are read every tick, and c, which has no
	// pressure files to tell it is quiet; a/b is quiet, and its memory and
	// io files are refreshed once in quietRefresh ticks (which tick
	// depends on its cgroup id).
	refreshes := 0
	for i := 0; i < quietRefresh; i++ {
		before := src.reads
		b = sample()
		switch got := src.reads - before; got {
		case 3:
		case 4:
			refreshes++
		default:
			t.Fatalf("tick %d: %d cgroups read, want 3 (root, a and c) or 4 (and a refresh of a/b)", i, got)
		}
	}
	if refreshes != 1 {
		t.Errorf("a/b refreshed %d times in %d ticks, want once", refreshes, quietRefresh)
	}
	wantSig(t, b, governor.CPUSomeAvg10, 0)
	wantSig(t, b, governor.CPUSomeStall, 0)
	if b.Populated {
		t.Error("a/b populated")
	}
	// On to the tick of the next refresh: a stall that starts right after
	// it must be a rate over one tick, not over two (the refresh reads
	// memory and io only; the pressure and cpu counters stood still as of
	// that tick, as on the ticks a/b is not read at all). Until 2026-12-06
	// the refresh left their time where it was and the stall below read
	// 12.5 % whenever the refresh fell on the tick before (1 run in 60).
	for i := 0; ; i++ {
		before := src.reads
		sample()
		if src.reads-before == 4 {
			break
		}
		if i == quietRefresh {
			t.Fatalf("no refresh of a/b in %d ticks", quietRefresh)
		}
	}

	// A task arrives: cgroup.events changes, a/b is read at the next tick
	// and its stall is a rate over that tick only.
	writeFixture(t, filepath.Join(root, "a/b", "cpu.pressure"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=250000\n")
	writeFixture(t, filepath.Join(root, "a/b", "cgroup.events"), "populated 1\nfrozen 0\n")
	b = sample()
	if !b.Populated {
		t.Error("a/b: populated change not seen")
	}
	wantSig(t, b, governor.CPUSomeStall, 25)

	// The samples of the previous snapshot are not overwritten by the next.
	prev := *b
	prevPtr := b
	b = sample()
	if !reflect.DeepEqual(*prevPtr, prev) {
		t.Error("a sample of the previous snapshot changed")
	}
}

func TestSourceSteadyStateAllocs(t *testing.T) {
	root, proc := sourceFixture(t)
	for i := 0; i < 50; i++ {
		mkCgroup(t, root, "many/c"+itoa(i), map[string]string{
			"cgroup.events": "populated 1\nfrozen 0\n", "cpu.pressure": psiFile(i, i),
			"memory.pressure": psiFile(i, i), "io.pressure": psiFile(i, i), "memory.current": "1000\n",
			"memory.stat": "anon 1\nfile 2\n", "memory.events": "high 1\n", "cpu.stat": "usage_usec 100\n",
			"io.stat": "8:0 rbytes=1 wbytes=2\n",
		})
	}
	mkCgroup(t, root, "many", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	defer src.Close()
	var snap governor.Snapshot
	ctx := context.Background()
	allocs := testing.AllocsPerRun(20, func() {
		snap.Reset(time.Now())
		if err := src.Sample(ctx, &snap); err != nil {
			t.Fatal(err)
		}
	})
	// 55 cgroups: anything per cgroup would show as dozens.
	if allocs > 8 {
		t.Errorf("%v allocations per Sample of %d cgroups in steady state", allocs, len(snap.Cgroups))
	}
	// Files stay open between ticks on cgroupfs only: a fixture file
	// removed or replaced must be seen as such.
	if src.fds.keep || len(src.fds.box.kept) != 0 {
		t.Errorf("%d files kept open on a fixture tree", len(src.fds.box.kept))
	}
}

// Files found missing are skipped until a change in the directory says
// they may exist now.
func TestSourceMissingFilesProbedOnChange(t *testing.T) {
	root, proc := sourceFixture(t)
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	defer src.Close()
	var snap governor.Snapshot
	b := inode(t, filepath.Join(root, "a/b"))
	for i := 0; i < 3; i++ {
		snap.Reset(time.Now())
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
	}
	noSig(t, snap.Lookup(b), governor.MemoryCurrent)
	// The controller is enabled: the file appears (and b gets a task).
	writeFixture(t, filepath.Join(root, "a/b", "memory.current"), "4096\n")
	writeFixture(t, filepath.Join(root, "a/b", "cgroup.events"), "populated 1\nfrozen 0\n")
	snap.Reset(time.Now())
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	wantSig(t, snap.Lookup(b), governor.MemoryCurrent, 4096)
}

// TestSourcePSIGate checks the skipping of pressure files that cannot have
// changed (psiStill), on a fixture whose totals respect the kernel's
// hierarchy (a child's stall is its parent's too). The gate is on by
// default only on cgroupfs; TestKernelSourcePSIGate runs it there.
func TestSourcePSIGate(t *testing.T) {
	base := t.TempDir()
	root, proc := filepath.Join(base, "cg"), filepath.Join(base, "pressure")
	idle := func(total int) string {
		return "some avg10=0.00 avg60=0.00 avg300=0.00 total=" + itoa(total) + "\n" +
			"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	}
	mkCgroup(t, proc, "", map[string]string{"cpu": idle(0), "memory": idle(0), "io": idle(0)})
	pressure := func(total int) map[string]string {
		return map[string]string{"cgroup.events": "populated 1\nfrozen 0\n",
			"cpu.pressure": idle(total), "memory.pressure": idle(total), "io.pressure": idle(total)}
	}
	mkCgroup(t, root, "", pressure(1000))
	mkCgroup(t, root, "p", pressure(500))
	mkCgroup(t, root, "p/c", pressure(200))
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	defer src.Close()
	src.now = clk.now
	cID := inode(t, filepath.Join(root, "p/c"))
	var snap governor.Snapshot
	// tick samples one second later and returns the pressure files read
	// and c's sample.
	tick := func() (uint64, *governor.Sample) {
		t.Helper()
		clk.t = clk.t.Add(time.Second)
		snap.Reset(clk.t)
		before := src.psiRead
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		return src.psiRead - before, snap.Lookup(cID)
	}
	tick()
	src.psiGate = true // the fixture is not cgroupfs
	// write changes fixture files the way the kernel would: without the
	// inotify events a write to a fixture file gives (pressure files of
	// cgroupfs send none).
	write := func(rel, file, content string) {
		t.Helper()
		writeFixture(t, filepath.Join(root, rel, file), content)
		src.drain()
		var clean func(n *node)
		clean = func(n *node) {
			n.dirty = false
			for _, c := range n.children {
				clean(c)
			}
		}
		clean(src.tree)
	}
	// refreshed: c's or p's id-spread tick of reading anyway.
	refreshed := func() bool {
		g := src.gen + 1
		return (g+uint64(cID))%quietRefresh == 0 || (g+uint64(inode(t, filepath.Join(root, "p"))))%quietRefresh == 0
	}
	steady := func(what string) *governor.Sample {
		t.Helper()
		var c *governor.Sample
		for i := 0; i < 20; i++ {
			r := refreshed()
			var n uint64
			n, c = tick()
			if n == 3 {
				return c
			}
			if i >= 4 && !r {
				t.Fatalf("%s: %d pressure files read %d ticks on, want 3 (the root's only)", what, n, i+1)
			}
		}
		t.Fatalf("%s: never settled to the root's 3 files", what)
		return nil
	}
	c := steady("idle")
	wantStalled(t, c, 0, 0, 200) // carried over from the last read
	wantStalled(t, c, 1, 1, 0)
	for _, sig := range []governor.Signal{governor.CPUSomeAvg10, governor.CPUSomeStall, governor.MemoryFullAvg300, governor.IOSomeStall} {
		if v, ok := c.Get(sig); !ok || v != 0 {
			t.Errorf("skipped c: %s = %v %v, want 0 present", sig, v, ok)
		}
	}

	// c stalls on CPU (and so do its ancestors): read at the next tick.
	write("", "cpu.pressure", idle(1000+250000))
	write("p", "cpu.pressure", idle(500+250000))
	write("p/c", "cpu.pressure", idle(200+250000))
	// On p's or c's once-in-quietRefresh tick (it depends on their inode
	// numbers) the refreshed cgroup's memory and io files are read too.
	r := refreshed()
	n, c := tick()
	if n != 5 && !(r && (n == 7 || n == 9)) {
		t.Errorf("after a CPU stall: %d pressure files read (refresh tick: %v), want 5 (root's 3, cpu of p and c)", n, r)
	}
	wantSig(t, c, governor.CPUSomeStall, 25)
	wantStalled(t, c, 0, 0, 200+250000)
	c = steady("after the stall")
	wantStalled(t, c, 0, 0, 200+250000)
	wantSig(t, c, governor.CPUSomeStall, 0)

	// A file whose averages are above zero is read every tick (they
	// decay), though its parent's total stands still.
	write("", "io.pressure", idle(1000+9000))
	write("p", "io.pressure", idle(500+9000))
	write("p/c", "io.pressure", "some avg10=0.50 avg60=0.10 avg300=0.02 total=9200\n"+
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	for i := 0; i < 10; i++ {
		r := refreshed()
		n, c = tick()
		if i >= 4 && n != 4 && !r {
			t.Fatalf("tick %d with c's io averages above zero: %d pressure files read, want 4 (the root's, c's io)", i, n)
		}
	}
	wantSig(t, c, governor.IOSomeAvg10, 0.5)
}

// wantStalled checks a sample's PSI total of resource r, line l (µs).
func wantStalled(t *testing.T, s *governor.Sample, r, l int, want uint64) {
	t.Helper()
	if got, ok := s.Stalled.Get(r, l); !ok || got != want {
		t.Errorf("%s: stall total [%d][%d] = %d (read %v), want %d", s.Ref, r, l, got, ok, want)
	}
}

// TestSourceServesItsOwnValues: other writers change the snapshot's
// samples after Sample (the BPF sensor adds its signals and raises
// memory.some.stall to what its alerts measured; the loop keeps
// pointers). A cgroup whose files are not read on the next tick is
// served what the Source itself read, not those changes.
func TestSourceServesItsOwnValues(t *testing.T) {
	root, proc := sourceFixture(t)
	src, sample := tickingSource(t, root, proc, "a/b")
	sample()
	b := sample() // quiet from now: not read on the next ticks
	own := *b
	for i := 0; i < 3; i++ {
		before := src.reads
		b.Set(governor.MemorySomeStall, 42)
		b.Set(governor.CPUSomeStall, 42)
		b.Set(governor.RunqDelay, 7)
		b.PreemptedBy = []governor.Preemptor{{Cgroup: 1, PerSecond: 3}}
		b = sample()
		if src.reads-before != 3 {
			continue // a/b's refresh tick: read, not served
		}
		if !reflect.DeepEqual(*b, own) {
			ms, _ := b.Get(governor.MemorySomeStall)
			rq, _ := b.Get(governor.RunqDelay)
			t.Fatalf("tick %d: a/b served other writers' values (memory.some.stall %v, runq.delay %v, preempted by %v), want only what the Source read",
				i, ms, rq, b.PreemptedBy)
		}
	}
}

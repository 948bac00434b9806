package cgroup

import (
	"context"
	"math"
	"os"
	"path/filepath"
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
	noSig(t, a, governor.MemoryHighRatio, // memory.high is max
		governor.CPUSomeStall, governor.CPUUsage, governor.CPUThrottled, // first sample: no rates
		governor.MemoryEventsHigh, governor.IOReadBytes)

	b := snap.Lookup(inode(t, filepath.Join(root, "a/b")))
	if b.Populated {
		t.Error("a/b populated")
	}
	wantSig(t, b, governor.CPUSomeAvg10, 0)
	noSig(t, b, governor.CPUFullAvg10, governor.MemoryCurrent, governor.MemorySomeAvg10, governor.CPUUsage)

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
	if len(src.prev) != 3 {
		t.Errorf("%d cgroups with state, want 3", len(src.prev))
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
	if len(src.prev) != 1 {
		t.Errorf("state kept for %d cgroups, want 1", len(src.prev))
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

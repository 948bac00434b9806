package cgroup

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// TestSourceCarriesIdlePopulated checks carryWhat on a fixture whose
// counters respect the kernel's hierarchy: populated cgroups under a
// parent whose cpu, memory and pressure counters stand still are not read
// (their values are carried, rates 0), and the one that moves is read at
// the next tick with exact rates. TestKernelSourceCarriesIdlePopulated
// runs the same on the real hierarchy.
func TestSourceCarriesIdlePopulated(t *testing.T) {
	base := t.TempDir()
	root, proc := filepath.Join(base, "cg"), filepath.Join(base, "pressure")
	idle := func(total int) string {
		return "some avg10=0.00 avg60=0.00 avg300=0.00 total=" + itoa(total) + "\n" +
			"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	}
	mkCgroup(t, proc, "", map[string]string{"cpu": idle(0), "memory": idle(0), "io": idle(0)})
	files := func(usage, stall, mem int) map[string]string {
		return map[string]string{"cgroup.events": "populated 1\nfrozen 0\n",
			"cpu.stat":     fmt.Sprintf("usage_usec %d\nuser_usec 0\nsystem_usec 0\n", usage),
			"cpu.pressure": idle(stall), "memory.pressure": idle(0), "io.pressure": idle(0),
			"memory.current": itoa(mem) + "\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"}
	}
	const kids = 8
	mkCgroup(t, root, "", files(9000, 900, 9000))
	mkCgroup(t, root, "p", files(8000, 800, 8000))
	for i := 0; i < kids; i++ {
		mkCgroup(t, root, fmt.Sprintf("p/c%d", i), files(1000, 100, 1000))
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	defer src.Close()
	src.now = clk.now
	var snap governor.Snapshot
	ids := map[string]governor.CgroupID{"p": inode(t, filepath.Join(root, "p"))}
	for i := 0; i < kids; i++ {
		rel := fmt.Sprintf("p/c%d", i)
		ids[rel] = inode(t, filepath.Join(root, rel))
	}
	// tick samples one second later; it returns the files read and
	// whether a cgroup's once-in-quietRefresh full read was due.
	tick := func() (reads uint64, refresh bool) {
		t.Helper()
		for _, id := range ids {
			refresh = refresh || (src.gen+1+uint64(id))%quietRefresh == 0
		}
		clk.t = clk.t.Add(time.Second)
		snap.Reset(clk.t)
		before := src.fileReads
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		return src.fileReads - before, refresh
	}
	tick()
	src.psiGate = true // the fixture is not cgroupfs
	// write changes a fixture file as the kernel changes a counter:
	// without an inotify event (see TestSourcePSIGate).
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
	// The root is read in full every tick: its cpu.stat, 3 pressure
	// files, memory.current and memory.events.
	const rootReads = 6
	settled := false
	for i := 0; i < 12 && !settled; i++ {
		n, r := tick()
		settled = n == rootReads && !r
	}
	if !settled {
		t.Fatalf("idle populated cgroups still read after 12 ticks")
	}
	for i := 0; i < 5; i++ {
		if n, r := tick(); n != rootReads && !r {
			t.Errorf("idle tick %d: %d files read, want %d (the root's)", i, n, rootReads)
		}
	}
	c3 := snap.Lookup(ids["p/c3"])
	if c3 == nil || !c3.Populated {
		t.Fatalf("carried cgroup missing or not populated: %+v", c3)
	}
	wantSig(t, c3, governor.CPUUsage, 0)
	wantSig(t, c3, governor.CPUSomeStall, 0)
	wantSig(t, c3, governor.MemoryCurrent, 1000)
	wantSig(t, c3, governor.MemoryEventsHigh, 0)
	wantStalled(t, c3, 0, 0, 100)

	// c3 runs for half a second and stalls for a fifth (so do its
	// ancestors): read at the next tick, with exact rates.
	write("", "cpu.stat", "usage_usec 509000\n")
	write("p", "cpu.stat", "usage_usec 508000\n")
	write("p/c3", "cpu.stat", "usage_usec 501000\n")
	write("", "cpu.pressure", idle(900+200000))
	write("p", "cpu.pressure", idle(800+200000))
	write("p/c3", "cpu.pressure", idle(100+200000))
	n, r := tick()
	c3 = snap.Lookup(ids["p/c3"])
	wantSig(t, c3, governor.CPUUsage, 0.5)
	wantSig(t, c3, governor.CPUSomeStall, 20)
	wantStalled(t, c3, 0, 0, 200100)
	c2 := snap.Lookup(ids["p/c2"])
	wantSig(t, c2, governor.CPUUsage, 0)
	wantSig(t, c2, governor.MemoryCurrent, 1000)
	// The root's 6, p's cpu.stat and cpu.pressure, each child's (p's
	// moved); no memory file, no cgroup.events.
	if want := uint64(rootReads + 2 + 2*kids); n != want && !r {
		t.Errorf("tick after c3 moved: %d files read, want %d", n, want)
	}
	// Then all stand still again: c3's rates are 0, nothing read but the
	// root (once c3's stall has settled, psiSettle).
	tick()
	c3 = snap.Lookup(ids["p/c3"])
	wantSig(t, c3, governor.CPUUsage, 0)
	wantSig(t, c3, governor.CPUSomeStall, 0)

	// Memory moves in c5 only: its memory files are read, its cpu ones
	// not.
	write("", "memory.current", "9500\n")
	write("p", "memory.current", "8500\n")
	write("p/c5", "memory.current", "1500\n")
	tick()
	wantSig(t, snap.Lookup(ids["p/c5"]), governor.MemoryCurrent, 1500)
	wantSig(t, snap.Lookup(ids["p/c5"]), governor.CPUUsage, 0)

	// A change in a cgroup's directory (a task moved in, a limit written)
	// is a full read, cgroup.events included.
	writeFixture(t, filepath.Join(root, "p/c6", "cgroup.events"), "populated 0\nfrozen 0\n")
	tick()
	if c6 := snap.Lookup(ids["p/c6"]); c6.Populated {
		t.Error("c6's populated 0 not seen after its directory changed")
	}
}

// The root cgroup has no memory.current and no memory.events (the kernel
// shows them only below it). Two absent readings once counted as a
// memory level that stood still, so every top-level cgroup's
// memory.current was carried for up to quietRefresh ticks: a runaway
// batch job's growth went unseen for half a minute (the runaway scenario
// on Debian 13) and reclaim measured stale footprints. A growing cgroup
// below such a root must read its new memory.current every tick.
func TestSourceRootWithoutMemoryVouchesForNothing(t *testing.T) {
	base := t.TempDir()
	root, proc := filepath.Join(base, "cg"), filepath.Join(base, "pressure")
	idle := "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" +
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	mkCgroup(t, proc, "", map[string]string{"cpu": idle, "memory": idle, "io": idle})
	pressure := map[string]string{"cpu.pressure": idle, "memory.pressure": idle, "io.pressure": idle}
	// The root as the kernel lays it out: cpu.stat and pressure files,
	// no memory.current, no memory.events.
	rootFiles := map[string]string{"cpu.stat": "usage_usec 9000\nuser_usec 0\nsystem_usec 0\n"}
	for k, v := range pressure {
		rootFiles[k] = v
	}
	mkCgroup(t, root, "", rootFiles)
	files := func(mem int) map[string]string {
		m := map[string]string{"cgroup.events": "populated 1\nfrozen 0\n",
			"cpu.stat":       "usage_usec 1000\nuser_usec 0\nsystem_usec 0\n",
			"memory.current": itoa(mem) + "\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"}
		for k, v := range pressure {
			m[k] = v
		}
		return m
	}
	mkCgroup(t, root, "batch", files(1<<20))
	mkCgroup(t, root, "batch/job", files(1<<20))
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	defer src.Close()
	src.now = clk.now
	var snap governor.Snapshot
	snap.Reset(clk.t)
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	src.psiGate = true // the fixture is not cgroupfs
	batch, job := inode(t, filepath.Join(root, "batch")), inode(t, filepath.Join(root, "batch/job"))
	for i := 1; i <= 2*quietRefresh; i++ {
		// The job grows by 16 MiB a tick, its parent with it; no
		// inotify event (the kernel sends none for memory.current).
		mem := (1 + 16*i) << 20
		writeFixture(t, filepath.Join(root, "batch", "memory.current"), itoa(mem)+"\n")
		writeFixture(t, filepath.Join(root, "batch/job", "memory.current"), itoa(mem)+"\n")
		src.drain()
		for _, n := range src.tree.children {
			n.dirty = false
			for _, c := range n.children {
				c.dirty = false
			}
		}
		clk.t = clk.t.Add(time.Second)
		snap.Reset(clk.t)
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		for _, id := range []governor.CgroupID{batch, job} {
			s := snap.Lookup(id)
			if s == nil {
				t.Fatalf("tick %d: cgroup %d missing", i, id)
			}
			if v, _ := s.Get(governor.MemoryCurrent); v != float64(mem) {
				t.Fatalf("tick %d: %s memory.current = %.0f, the file says %d (carried while growing)", i, s.Path, v, mem)
			}
		}
	}
}

// TestSourceSafetyReadIsMemoryOnly checks the once-in-quietRefresh safety
// read of carried cgroups (carryWhat): it reads their memory and io files
// only, never their pressure files or cpu.stat (totals that only grow,
// vouched for by the parent), and nothing at all where the memory and io
// files are missing, as on a host without those controllers. What it is
// for is still seen: one child's memory.current falling by what another's
// grows, the parent's standing still, is read within quietRefresh ticks.
func TestSourceSafetyReadIsMemoryOnly(t *testing.T) {
	for _, withMem := range []bool{true, false} {
		t.Run(fmt.Sprintf("memory=%v", withMem), func(t *testing.T) {
			testSafetyRead(t, withMem)
		})
	}
}

func testSafetyRead(t *testing.T, withMem bool) {
	base := t.TempDir()
	root, proc := filepath.Join(base, "cg"), filepath.Join(base, "pressure")
	idle := "some avg10=0.00 avg60=0.00 avg300=0.00 total=100\n" +
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	mkCgroup(t, proc, "", map[string]string{"cpu": idle, "memory": idle, "io": idle})
	files := func(populated bool, mem int) map[string]string {
		m := map[string]string{"cpu.stat": "usage_usec 1000\nuser_usec 0\nsystem_usec 0\n",
			"cpu.pressure": idle, "memory.pressure": idle, "io.pressure": idle}
		if populated {
			m["cgroup.events"] = "populated 1\nfrozen 0\n"
		}
		if withMem && populated {
			m["memory.current"] = itoa(mem) + "\n"
			m["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"
		}
		return m
	}
	const kids = 8
	mkCgroup(t, root, "", files(false, 0)) // the root: no memory files
	mkCgroup(t, root, "p", files(true, 8000))
	ids := map[string]governor.CgroupID{"p": inode(t, filepath.Join(root, "p"))}
	for i := 0; i < kids; i++ {
		rel := fmt.Sprintf("p/c%d", i)
		mkCgroup(t, root, rel, files(true, 1000))
		ids[rel] = inode(t, filepath.Join(root, rel))
	}
	clk := &fakeClock{t: time.Unix(1000, 0)}
	src := NewSource(root, SourceOptions{ProcPressureDir: proc})
	defer src.Close()
	src.now = clk.now
	rootID := inode(t, root)
	var snap governor.Snapshot
	// tick samples one second later; it returns the files and pressure
	// files read, the children whose safety read was due, and whether a
	// probe for missing files was.
	tick := func() (reads, psi uint64, refreshed int, probe bool) {
		t.Helper()
		g := src.gen + 1
		for rel, id := range ids {
			if rel != "p" && (g+uint64(id))%quietRefresh == 0 {
				refreshed++
			}
			probe = probe || (g+uint64(id))%probeEvery == 0
		}
		probe = probe || (g+uint64(rootID))%probeEvery == 0
		clk.t = clk.t.Add(time.Second)
		snap.Reset(clk.t)
		r0, p0 := src.fileReads, src.psiRead
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		return src.fileReads - r0, src.psiRead - p0, refreshed, probe
	}
	tick()
	src.psiGate = true // the fixture is not cgroupfs
	// The root's cpu.stat and 3 pressure files every tick, p's memory
	// files (the root has none to vouch for them: memory.current and
	// memory.events).
	steady := uint64(4)
	if withMem {
		steady += 2
	}
	settled := false
	for i := 0; i < 12 && !settled; i++ {
		n, _, _, _ := tick()
		settled = n == steady
	}
	if !settled {
		t.Fatal("idle populated cgroups still read after 12 ticks")
	}
	safety := 0
	for i := 0; i < 2*quietRefresh; i++ {
		n, psi, refreshed, probe := tick()
		if probe {
			continue
		}
		if psi != 3 {
			t.Fatalf("tick %d: %d pressure files read, want 3 (the root's)", i, psi)
		}
		want := steady
		if withMem {
			// memory.current and memory.events of each child due.
			want += 2 * uint64(refreshed)
		}
		if n != want {
			t.Fatalf("tick %d: %d files read with %d safety reads due, want %d", i, n, refreshed, want)
		}
		safety += refreshed
	}
	if safety == 0 {
		t.Fatal("no safety read was due in 2*quietRefresh ticks")
	}
	if !withMem {
		return
	}
	// c1 frees what c2 takes: p's memory.current stands still, so both
	// are carried until their safety read, which must see the change.
	writeFixture(t, filepath.Join(root, "p/c1", "memory.current"), "500\n")
	writeFixture(t, filepath.Join(root, "p/c2", "memory.current"), "1500\n")
	src.drain()
	for _, n := range src.tree.children {
		n.dirty = false
		for _, c := range n.children {
			c.dirty = false
		}
	}
	seen := map[string]bool{}
	for i := 0; i < quietRefresh && len(seen) < 2; i++ {
		tick()
		for rel, want := range map[string]float64{"p/c1": 500, "p/c2": 1500} {
			if v, _ := snap.Lookup(ids[rel]).Get(governor.MemoryCurrent); v == want {
				seen[rel] = true
			}
		}
	}
	if len(seen) < 2 {
		t.Fatalf("memory.current moved between siblings not seen in %d ticks: %v", quietRefresh, seen)
	}
}

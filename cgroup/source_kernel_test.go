package cgroup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// TestKernelSourceNotifications checks, on the real cgroup2 hierarchy, the
// kernel behaviour the Source's change detection relies on: cgroupfs
// reports mkdir and rmdir to inotify, and a task entering an idle ("quiet")
// cgroup is seen at the next Sample (kernfs notifies cgroup.events).
func TestKernelSourceNotifications(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "idle")
	parent := filepath.Dir(rel)
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return p == "" || strings.HasPrefix(p, parent) }})
	defer src.Close()
	var snap governor.Snapshot
	sample := func() *governor.Sample { t.Helper(); return sampleCgroup(t, src, &snap, rel) }
	if sample() == nil {
		t.Fatal("test cgroup not sampled")
	}
	if src.inofd < 0 || src.walkAll {
		t.Fatal("inotify not in use on cgroupfs")
	}
	// PSI averages of a fresh cgroup are zero: quiet after two reads.
	time.Sleep(50 * time.Millisecond)
	sample()
	var n *node
	for _, c := range src.tree.children {
		if c.rel == parent {
			n, _ = c.child("idle")
		}
	}
	if n == nil || !n.quiet {
		t.Fatalf("idle cgroup not quiet: %+v", n)
	}

	// mkdir and rmdir are seen without listing.
	dir := filepath.Join(root, parent, "new")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	sample()
	if !strings.Contains(paths(&snap), "/"+parent+"/new") {
		t.Errorf("new cgroup not seen: %s", paths(&snap))
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	sample()
	if strings.Contains(paths(&snap), "/"+parent+"/new") {
		t.Errorf("removed cgroup still listed: %s", paths(&snap))
	}

	// A task enters the quiet cgroup: seen at the next Sample.
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(root, rel, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		if s := sample(); s != nil && s.Populated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("task entering a quiet cgroup not seen")
		}
	}
	if n.quiet {
		t.Error("populated cgroup still quiet")
	}
	// And leaving it: populated goes back to false without a write there.
	cmd.Process.Kill()
	cmd.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		if s := sample(); s != nil && !s.Populated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("emptied cgroup still populated")
		}
	}
}

// TestKernelSourceKeptFiles checks, on the real cgroup2 hierarchy, the files
// the Source keeps open for the cgroups it reads every tick: the same
// descriptors serve tick after tick with fresh content, a file hidden since
// (cgroup.pressure 0 removes the pressure files) is told from a removed
// cgroup, a removed cgroup's files are closed, and Close releases all.
func TestKernelSourceKeptFiles(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "busy")
	parent := filepath.Dir(rel)
	dir := filepath.Join(root, rel)
	baseline := fdCount(t)
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return p == "" || strings.HasPrefix(p, parent) }})
	var snap governor.Snapshot
	sample := func() *governor.Sample {
		t.Helper()
		time.Sleep(20 * time.Millisecond)
		return sampleCgroup(t, src, &snap, rel)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	sample()
	s := sample()
	if s == nil || !s.Populated {
		t.Fatalf("busy cgroup %s not sampled as populated: %+v", rel, s)
	}
	if !src.fds.keep {
		t.Fatal("no files kept open on cgroupfs")
	}
	var n *node
	for _, c := range src.tree.children {
		if c.rel == parent {
			n, _ = c.child("busy")
		}
	}
	if n == nil || n.fds == nil {
		t.Fatalf("no files kept for the busy cgroup: %+v", n)
	}
	for _, f := range []int{fEvents, fCPUPressure, fMemoryPressure, fIOPressure, fCPUStat} {
		if n.fds[f] == 0 {
			t.Errorf("%s not kept open", fileNames[f])
		}
	}
	kept := *n.fds
	for i := 0; i < 3; i++ {
		s = sample()
	}
	if *n.fds != kept {
		t.Errorf("kept files opened again: %v, then %v", kept, *n.fds)
	}
	for _, sig := range []governor.Signal{governor.CPUSomeAvg10, governor.CPUSomeStall, governor.CPUUsage} {
		if _, ok := s.Get(sig); !ok {
			t.Errorf("%s absent", sig)
		}
	}

	// Hidden pressure files: the kept ones fail (ENODEV), as a removed
	// cgroup's would, but the cgroup is still there, without PSI signals.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.pressure"), []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	if s = sample(); s == nil {
		t.Fatal("cgroup with its pressure files hidden left out of the snapshot")
	}
	if _, ok := s.Get(governor.CPUSomeAvg10); ok {
		t.Error("cpu.some.avg10 present with the pressure files hidden")
	}
	if _, ok := s.Get(governor.CPUUsage); !ok {
		t.Error("cpu.usage absent with the pressure files hidden")
	}
	if n.fds[fCPUPressure] != 0 {
		t.Error("hidden cpu.pressure still kept open")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.pressure"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if s = sample(); s == nil {
		t.Fatal("cgroup left out of the snapshot")
	}
	if _, ok := s.Get(governor.CPUSomeAvg10); !ok {
		t.Error("cpu.some.avg10 absent once the pressure files are back")
	}

	// Removed: out of the snapshot, its files closed.
	cmd.Process.Kill()
	cmd.Wait()
	for i := 0; ; i++ {
		err := os.Remove(dir)
		if err == nil {
			break
		}
		if i == 200 {
			t.Fatalf("rmdir %s: %v", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s = sample(); s != nil {
		t.Error("removed cgroup still sampled")
	}
	if *n.fds != ([numFiles]int32{}) {
		t.Errorf("files of the removed cgroup still open: %v", *n.fds)
	}
	if len(src.fds.box.kept) > src.fds.max {
		t.Errorf("%d files kept, over the bound %d", len(src.fds.box.kept), src.fds.max)
	}
	src.Close()
	if len(src.fds.box.kept) != 0 {
		t.Errorf("%d files kept open after Close", len(src.fds.box.kept))
	}
	waitFDs(t, baseline)
}

// sampleCgroup takes one Sample into snap and returns the cgroup at rel in
// it (nil when the Source did not report it).
func sampleCgroup(t *testing.T, src *Source, snap *governor.Snapshot, rel string) *governor.Sample {
	t.Helper()
	snap.Reset(src.now()) // the loop's clock: here the test's
	if err := src.Sample(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	for _, c := range snap.Cgroups {
		if c.Path == rel {
			return c
		}
	}
	return nil
}

// TestKernelSourcePSIGate checks the pressure-file gate (psiStill) on the
// real hierarchy: an idle child's pressure files stop being read once its
// parent's totals stand still, and a CPU stall in the child is seen at the
// next tick, through the parent's total.
func TestKernelSourcePSIGate(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "gate")
	parent := filepath.Join(root, filepath.Dir(rel))
	dir := filepath.Join(root, rel)
	if _, err := os.Stat(filepath.Join(dir, "cpu.pressure")); err != nil {
		t.Skip("no cpu.pressure (PSI off)")
	}
	start := func(args ...string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	start("sleep", "60")

	// The Source's root is the test cgroup: it is read in full every tick,
	// and the child below it is the one the gate applies to.
	src := NewSource(parent, SourceOptions{})
	defer src.Close()
	clk := &fakeClock{t: time.Now()}
	src.now = clk.now
	var snap governor.Snapshot
	tick := func() (uint64, *governor.Sample) {
		t.Helper()
		time.Sleep(50 * time.Millisecond)
		clk.t = clk.t.Add(time.Second)
		before := src.psiRead
		c := sampleCgroup(t, src, &snap, "gate")
		return src.psiRead - before, c
	}
	tick()
	if !src.psiGate {
		t.Fatal("pressure gate off on cgroupfs")
	}
	id := inode(t, dir)
	gated := 0
	for i := 0; i < 12; i++ {
		refresh := (src.gen+1+uint64(id))%quietRefresh == 0
		n, c := tick()
		if c == nil || !c.Populated {
			t.Fatalf("child not sampled as populated: %+v", c)
		}
		if n == 3 {
			gated++
			if v, ok := c.Get(governor.CPUSomeAvg10); !ok || v != 0 {
				t.Errorf("gated child: cpu.some.avg10 %v %v, want 0 present", v, ok)
			}
		} else if i >= 5 && !refresh {
			t.Errorf("tick %d: %d pressure files read with the child idle, want 3 (the parent's)", i, n)
		}
	}
	if gated == 0 {
		t.Fatal("the idle child's pressure files were read on every tick")
	}

	// Two CPU hogs on one CPU in the child: it stalls on CPU, so does the
	// parent, and the child's file is read again.
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	for i := 0; i < 2; i++ {
		start("taskset", "-c", "0", "sh", "-c", "while :; do :; done")
	}
	var stall float64
	ticks := 0
	for ticks < 10 && stall == 0 {
		ticks++
		_, c := tick()
		stall, _ = c.Get(governor.CPUSomeStall)
	}
	if stall <= 0 {
		t.Fatal("the child's CPU stall was not seen")
	}
	// The hogs are in the child before the first tick's 50 ms sleep.
	if ticks > 2 {
		t.Errorf("the child's CPU stall seen only at tick %d after the hogs started", ticks)
	}
	t.Logf("gated %d of 12 idle ticks; child's cpu.some.stall %.1f%% at tick %d once hogs ran", gated, stall, ticks)
}

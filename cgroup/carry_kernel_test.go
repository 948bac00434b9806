package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// TestKernelSourceCarriesIdlePopulated checks carryWhat on the real
// hierarchy: of 1,000 populated cgroups whose tasks sleep, next to none
// is read (the once-a-minute safety read is of memory and io files, which
// the v2 hierarchy here may lack); a task that starts spinning in one of them, without entering or
// leaving it (no inotify event), is seen at the next tick, and its stall
// rate is exact: the total carried for it equals the file's, and the rate
// is the file's growth over the tick.
func TestKernelSourceCarriesIdlePopulated(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "pods")
	top := filepath.Join(root, filepath.Dir(rel))
	if _, err := os.Stat(filepath.Join(top, "cpu.pressure")); err != nil {
		t.Skip("no cpu.pressure (PSI off)")
	}
	n := 1000
	if testing.Short() {
		n = 100
	}
	leaf := func(i int) string { return fmt.Sprintf("pods/g%02d/c%04d", i/50, i) }
	const spin = 517 % 100 // a leaf in every size of the test
	for i := 0; i < n; i++ {
		if err := os.MkdirAll(filepath.Join(top, leaf(i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Each task is born in its cgroup (no cgroup.procs write: that would
	// make the cgroup dirty). The spinner sleeps until SIGUSR1.
	var spinner *exec.Cmd
	for i := 0; i < n; i++ {
		cmd := exec.Command("sleep", "600")
		if i == spin {
			cmd = exec.Command("perl", "-e", `$SIG{USR1} = sub { 1 while 1 }; sleep`)
		}
		dir, err := os.Open(filepath.Join(top, leaf(i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
		err = cmd.Start()
		dir.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if i == spin {
			spinner = cmd
		}
	}

	src := NewSource(top, SourceOptions{})
	defer src.Close()
	clk := &fakeClock{t: time.Now()}
	src.now = clk.now
	var snap governor.Snapshot
	spinRel := leaf(spin)
	tick := func() (uint64, *governor.Sample) {
		t.Helper()
		clk.t = clk.t.Add(time.Second)
		before := src.fileReads
		c := sampleCgroup(t, src, &snap, spinRel)
		if c == nil {
			t.Fatalf("%s not sampled", spinRel)
		}
		return src.fileReads - before, c
	}
	tick()
	if !src.psiGate {
		t.Fatal("the gate is off on cgroupfs")
	}
	// Settle: fresh cgroups' first reads, the tasks' start, psiSettle.
	// A pressure file whose averages are above zero (the tasks' start
	// on a busy machine) is read every tick until they decay, in real
	// time.
	var reads uint64
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		if reads, _ = tick(); i >= 6 && reads < uint64(n)/5 {
			break
		}
	}
	// Each cgroup has cpu.stat, 3 pressure files, cgroup.events: 5n
	// files a tick if all were read (2,136 at 1,000 with carryWhat
	// off); the safety reads (memory and io files, every quietRefresh
	// ticks) at most n/quietRefresh times those files.
	limit := uint64(n / 2)
	if reads > limit {
		t.Fatalf("%d files read a tick with %d idle populated cgroups, want at most %d", reads, n, limit)
	}
	time.Sleep(20 * time.Millisecond)
	reads, c := tick()
	if v, ok := c.Get(governor.CPUUsage); !ok || v != 0 {
		t.Errorf("idle spinner before SIGUSR1: cpu.usage %v %v, want 0", v, ok)
	}
	carried, _ := c.Stalled.Get(0, 0)
	file, err := os.ReadFile(filepath.Join(top, spinRel, "cpu.pressure"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePressure(file)
	if err != nil {
		t.Fatal(err)
	}
	if p.Some.Total != carried {
		t.Fatalf("carried cpu some total %d, the file says %d", carried, p.Some.Total)
	}

	// Spin, without entering or leaving a cgroup: seen at the next tick.
	if err := spinner.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_, c = tick()
	usage, ok := c.Get(governor.CPUUsage)
	if !ok || usage <= 0 {
		t.Fatalf("spinning cgroup at the next tick: cpu.usage %v %v, want > 0", usage, ok)
	}
	total, _ := c.Stalled.Get(0, 0)
	stall, ok := c.Get(governor.CPUSomeStall)
	// One (fake) second between the ticks: the rate is the growth in
	// µs per 1e6 µs, in percent.
	if want := float64(total-carried) / 1e6 * 100; !ok || !near(stall, want) {
		t.Errorf("cpu.some.stall %v %v, want exactly %v (total %d -> %d)", stall, ok, want, carried, total)
	}
	t.Logf("%d cgroups: %d files read on an idle tick; spinner seen at the next tick: cpu.usage %.3f, cpu.some.stall %.2f %%", n, reads, usage, stall)
}

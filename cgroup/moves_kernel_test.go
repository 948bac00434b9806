package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/governor-dev/governor/bpf"
	"github.com/governor-dev/governor/governor"
	"golang.org/x/sys/unix"
)

// TestKernelSourceMovesReadsOnlyMoved runs two Sources over the same
// pods on the host's hierarchy, one with the BPF cgroup iterator as its
// MoveSensor: 20 pods of 50 containers, every container with a sleeping
// task but one in pod g00 whose task wakes every 10 ms. So the pods'
// parent and g00 move on every tick. Without the iterator every pod is
// read each tick (its parent moved) and every container of g00; with it,
// only the cgroups that moved. Then a task starts spinning in a container
// of an idle pod without entering or leaving a cgroup (no inotify event):
// both Sources see it at the next tick, with the stall rate exact.
func TestKernelSourceMovesReadsOnlyMoved(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "pods")
	top := filepath.Join(root, filepath.Dir(rel))
	if _, err := os.Stat(filepath.Join(top, "cpu.pressure")); err != nil {
		t.Skip("no cpu.pressure (PSI off)")
	}
	const n = 1000
	leaf := func(i int) string { return fmt.Sprintf("pods/g%02d/c%04d", i/50, i) }
	const busy, spin = 7, 517 // busy in g00, spin in g10
	for i := 0; i < n; i++ {
		if err := os.MkdirAll(filepath.Join(top, leaf(i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var spinner *exec.Cmd
	for i := 0; i < n; i++ {
		cmd := exec.Command("sleep", "600")
		switch i {
		case busy:
			cmd = exec.Command("perl", "-e", `select(undef, undef, undef, 0.01) while 1`)
		case spin:
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

	mv, err := bpf.OpenMoves(top)
	if err != nil {
		var u unix.Utsname
		var major, minor int
		if unix.Uname(&u) == nil {
			fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
		}
		if errors.Is(err, bpf.ErrUnavailable) && major > 0 && (major < 6 || major == 6 && minor < 1) {
			t.Skipf("Linux %d.%d has no cgroup iterator: %v", major, minor, err)
		}
		t.Fatalf("the cgroup iterator on Linux %d.%d (6.1+ has it): %v", major, minor, err)
	}
	defer mv.Close()
	type side struct {
		name string
		src  *Source
		clk  *fakeClock
		snap governor.Snapshot
	}
	sides := []*side{{name: "files"}, {name: "iterator"}}
	for _, s := range sides {
		s.src = NewSource(top, SourceOptions{})
		defer s.src.Close()
		s.clk = &fakeClock{t: time.Now()}
		s.src.now = s.clk.now
	}
	sides[1].src.SetMoves(mv)
	spinRel := leaf(spin)
	// tick returns the cgroups at least one file of which was read, but
	// for those read on the schedule alone (the probes of missing files
	// and refreshes of quiet cgroups, one or two of the 1,000 a tick,
	// by cgroup id), and the files read.
	tick := func(s *side) (cgs, files uint64, c *governor.Sample) {
		t.Helper()
		s.clk.t = s.clk.t.Add(time.Second)
		cg, f := s.src.cgReads-s.src.timedReads, s.src.fileReads
		c = sampleCgroup(t, s.src, &s.snap, spinRel)
		if c == nil {
			t.Fatalf("%s: %s not sampled", s.name, spinRel)
		}
		return s.src.cgReads - s.src.timedReads - cg, s.src.fileReads - f, c
	}
	// Settle (first reads, the tasks' start, psiSettle), then the
	// fewest cgroups and files either read on a tick. Counted in
	// cgroups: the files of a cgroup that moved depend on the host
	// (controllers enabled, which pressures the load touched).
	least := [2]uint64{^uint64(0), ^uint64(0)}
	leastFiles := [2]uint64{^uint64(0), ^uint64(0)}
	for i := 0; i < 80; i++ {
		time.Sleep(50 * time.Millisecond)
		for k, s := range sides {
			if cg, f, _ := tick(s); i >= 70 {
				least[k] = min(least[k], cg)
				leastFiles[k] = min(leastFiles[k], f)
			}
		}
	}
	t.Logf("read a tick, fewest of 10 settled ticks: %d cgroups (%d files) without the iterator, %d (%d) with it (%d scans)",
		least[0], leastFiles[0], least[1], leastFiles[1], sides[1].src.mvScans)
	// Without: the root, pods, the 20 pods and g00's 50 containers at
	// least (their parent moved), less those read on the schedule alone
	// on that tick (the quiet refresh is every 60 ticks by id: one or
	// two of these 72 a tick, more now and then). With: the root, pods, g00 and the busy
	// container, and not one idle cgroup more than a couple.
	if least[0] < 60 {
		t.Errorf("without the iterator %d cgroups read a tick: the test does not load the parents as meant", least[0])
	}
	if least[1] > 5 {
		t.Errorf("with the iterator %d cgroups read a tick, want at most 5 (4 move)", least[1])
	}
	if leastFiles[1]*3 > leastFiles[0] {
		t.Errorf("with the iterator %d files a tick, without %d: want a third or fewer", leastFiles[1], leastFiles[0])
	}

	carried := [2]uint64{}
	for k, s := range sides {
		_, _, c := tick(s)
		carried[k], _ = c.Stalled.Get(0, 0)
	}
	if err := spinner.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for k, s := range sides {
		_, _, c := tick(s)
		usage, ok := c.Get(governor.CPUUsage)
		if !ok || usage <= 0 {
			t.Fatalf("%s: spinning cgroup at the next tick: cpu.usage %v %v, want > 0", s.name, usage, ok)
		}
		total, _ := c.Stalled.Get(0, 0)
		stall, ok := c.Get(governor.CPUSomeStall)
		if want := float64(total-carried[k]) / 1e6 * 100; !ok || !near(stall, want) {
			t.Errorf("%s: cpu.some.stall %v %v, want exactly %v (total %d -> %d)", s.name, stall, ok, want, carried[k], total)
		}
		file, err := os.ReadFile(filepath.Join(top, spinRel, "cpu.pressure"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePressure(file)
		if err != nil {
			t.Fatal(err)
		}
		if p.Some.Total < total {
			t.Errorf("%s: total %d ahead of the file's %d", s.name, total, p.Some.Total)
		}
		t.Logf("%s: spinner seen at the next tick: cpu.usage %.3f, cpu.some.stall %.2f %%", s.name, usage, stall)
	}
}

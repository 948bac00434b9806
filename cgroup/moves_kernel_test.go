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
	tick := func(s *side) (uint64, *governor.Sample) {
		t.Helper()
		s.clk.t = s.clk.t.Add(time.Second)
		before := s.src.fileReads
		c := sampleCgroup(t, s.src, &s.snap, spinRel)
		if c == nil {
			t.Fatalf("%s: %s not sampled", s.name, spinRel)
		}
		return s.src.fileReads - before, c
	}
	// Settle (first reads, the tasks' start, psiSettle), then the
	// fewest files either read on a tick.
	least := [2]uint64{^uint64(0), ^uint64(0)}
	for i := 0; i < 80; i++ {
		time.Sleep(50 * time.Millisecond)
		for k, s := range sides {
			if r, _ := tick(s); i >= 70 && r < least[k] {
				least[k] = r
			}
		}
	}
	t.Logf("files read a tick, fewest of 10 settled ticks: %d without the iterator, %d with it (%d scans)", least[0], least[1], sides[1].src.mvScans)
	// Without: the root, pods, and the cpu.stat of the 20 pods and of
	// g00's 50 containers at least. With: the root, pods, g00 and the
	// busy container, a few files each.
	if least[0] < 60 {
		t.Errorf("without the iterator %d files a tick: the test does not load the parents as meant", least[0])
	}
	if least[1] > 20 {
		t.Errorf("with the iterator %d files a tick, want at most 20", least[1])
	}

	carried := [2]uint64{}
	for k, s := range sides {
		_, c := tick(s)
		carried[k], _ = c.Stalled.Get(0, 0)
	}
	if err := spinner.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for k, s := range sides {
		_, c := tick(s)
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

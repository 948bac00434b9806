package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"golang.org/x/sys/unix"
)

// Tests against the real cgroup2 hierarchy. They skip only without root or
// without a cgroup2 mount, and fail otherwise. Every cgroup they create
// lives under a unique parent removed in t.Cleanup.

func kernelRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root, err := FindMount()
	if errors.Is(err, ErrNoCgroup2) {
		t.Skip("no cgroup2 mount")
	}
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// testCgroup creates <root>/governor-cgroup-test-<pid>-<n>/<child> and
// returns the child's path relative to root.
func testCgroup(t *testing.T, root, child string) string {
	t.Helper()
	parent := fmt.Sprintf("governor-cgroup-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	rel := parent + "/" + child
	if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveTree(filepath.Join(root, parent), 10*time.Second); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return rel
}

// busy starts n shell busy loops and moves them into the cgroup rel.
func busy(t *testing.T, root, rel string, n int) []*exec.Cmd {
	t.Helper()
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
		if err := os.WriteFile(filepath.Join(root, rel, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	return cmds
}

func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func waitFDs(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for fdCount(t) > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := fdCount(t); got > want {
		t.Errorf("%d open fds, want at most the baseline %d", got, want)
	}
}

func TestKernelProbeAndSource(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "work")
	busy(t, root, rel, 1)

	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("FindMount() = %s, which is not a cgroup2 mount (statfs type %#x, %v)", root, fs.Type, err)
	}
	caps, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Freeze || !caps.Kill {
		t.Errorf("Probe(%s) = %+v: cgroup.freeze and cgroup.kill exist on this kernel", root, caps)
	}
	t.Logf("capabilities: %+v", caps)

	parent := strings.SplitN(rel, "/", 2)[0]
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return strings.HasPrefix(p, parent) || p == "" }})
	var snap governor.Snapshot
	ctx := context.Background()
	if err := src.Sample(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	snap.Reset(time.Now())
	if err := src.Sample(ctx, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Cgroups[0].Path != "" || snap.Cgroups[0].ID != inode(t, root) {
		t.Errorf("first sample %v (id %d), want the root", snap.Cgroups[0].Ref, snap.Cgroups[0].ID)
	}
	var smp *governor.Sample
	for _, c := range snap.Cgroups {
		if c.Path == rel {
			smp = c
		}
	}
	if smp == nil {
		t.Fatalf("%s not in snapshot", rel)
	}
	if want := inode(t, filepath.Join(root, rel)); smp.ID != want {
		t.Errorf("id %d, want inode %d", smp.ID, want)
	}
	if snap.Lookup(smp.ID) != smp {
		t.Error("Lookup by id failed")
	}
	if !smp.Populated {
		t.Error("cgroup with a busy loop not populated")
	}
	for _, sig := range []governor.Signal{governor.CPUSomeAvg10, governor.CPUSomeStall, governor.MemorySomeAvg10, governor.IOSomeStall, governor.CPUUsage} {
		if _, ok := smp.Get(sig); !ok {
			t.Errorf("%s absent", sig)
		}
	}
	if u, _ := smp.Get(governor.CPUUsage); u < 0.05 || u > 2.5 {
		t.Errorf("cpu.usage of one busy loop = %.2f cores", u)
	}
	if !caps.Controllers["memory"] {
		if _, ok := smp.Get(governor.MemoryCurrent); ok {
			t.Error("memory.current present without the memory controller")
		}
	}
	if _, ok := snap.Host.Get(governor.CPUSomeAvg10); !ok {
		t.Error("host cpu pressure absent")
	}
	t.Logf("%s: cpu.some.stall=%.1f%% cpu.usage=%.2f", rel, smp.Values[governor.CPUSomeStall], smp.Values[governor.CPUUsage])
}

func TestKernelActuator(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "victim")
	cmds := busy(t, root, rel, 2)
	a := NewActuator(root, nil)
	ref := governor.Ref{ID: inode(t, filepath.Join(root, rel)), Path: rel}
	ctx := context.Background()

	if err := a.Freeze(ctx, ref, true); err != nil {
		t.Fatalf("freeze: %v", err)
	}
	ev, err := ParseEvents([]byte(readFixture(t, filepath.Join(root, rel, "cgroup.events"))))
	if err != nil || !ev.Frozen {
		t.Errorf("after Freeze: %+v %v", ev, err)
	}
	if err := a.Freeze(ctx, ref, false); err != nil {
		t.Fatalf("thaw: %v", err)
	}

	caps, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Write(ctx, ref, governor.MemoryHigh, 64<<20)
	if caps.Controllers["memory"] {
		if err != nil {
			t.Errorf("memory.high: %v", err)
		}
	} else if !errors.Is(err, governor.ErrUnsupported) {
		t.Errorf("memory.high without the memory controller: %v, want ErrUnsupported", err)
	}
	if !caps.Controllers["cpu"] {
		if err := a.Write(ctx, ref, governor.CPUWeight, 50); !errors.Is(err, governor.ErrUnsupported) {
			t.Errorf("cpu.weight without the cpu controller: %v, want ErrUnsupported", err)
		}
	}

	if err := a.Kill(ctx, ref); err != nil {
		t.Fatalf("kill: %v", err)
	}
	for _, cmd := range cmds {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Errorf("busy loop ended with %v, want killed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("busy loop survived cgroup.kill")
		}
	}
	if err := os.Remove(filepath.Join(root, rel)); err != nil {
		// Tasks may take a moment to leave after the kill.
		time.Sleep(100 * time.Millisecond)
		if err := os.Remove(filepath.Join(root, rel)); err != nil {
			t.Fatal(err)
		}
	}
	for name, err := range map[string]error{
		"kill":   a.Kill(ctx, ref),
		"freeze": a.Freeze(ctx, ref, true),
		"write":  a.Write(ctx, ref, governor.MemoryHigh, 1<<20),
	} {
		if !errors.Is(err, governor.ErrGone) {
			t.Errorf("%s on removed cgroup: %v, want ErrGone", name, err)
		}
	}
}

func TestKernelTriggers(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "contended")
	baseline := fdCount(t)

	tr, err := NewTriggers(nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := governor.Ref{ID: inode(t, filepath.Join(root, rel)), Path: rel}
	file := filepath.Join(root, rel, "cpu.pressure")
	eff, err := tr.Add(ref, file, false, 10*time.Millisecond, 2*time.Second)
	if err != nil {
		t.Fatalf("arm trigger: %v", err)
	}
	if eff != 2*time.Second {
		t.Errorf("effective window %v, want 2s", eff)
	}
	// A 1 s window needs CAP_SYS_RESOURCE; without it Add falls back to 2 s.
	eff, err = tr.Add(ref, file, false, 5*time.Millisecond, time.Second)
	if err != nil {
		t.Fatalf("arm 1s trigger: %v", err)
	}
	if eff != time.Second && eff != 2*time.Second {
		t.Errorf("effective window %v, want 1s or 2s", eff)
	}
	t.Logf("1s window in effect as %v", eff)
	hostEff, err := tr.Add(governor.Ref{}, "/proc/pressure/cpu", false, 500*time.Millisecond, 2*time.Second)
	if err != nil {
		t.Fatalf("arm host trigger: %v", err)
	}
	if hostEff != 2*time.Second {
		t.Errorf("host window %v", hostEff)
	}
	tr.Remove(0) // the host trigger only checked the /proc write format
	if tr.Len() != 2 {
		t.Errorf("%d triggers armed, want 2", tr.Len())
	}

	// 6 busy loops on 2 cores: tasks wait for CPU most of the time.
	cmds := busy(t, root, rel, 6)
	select {
	case got := <-tr.Wake():
		if got != ref {
			t.Errorf("wake for %v, want %v", got, ref)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("PSI trigger did not fire within 20s under CPU contention")
	}

	// Remove the cgroup: the trigger fds see EPOLLERR, get closed, and the
	// loop is still woken.
	a := NewActuator(root, nil)
	if err := a.Kill(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range cmds {
		cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.Remove(filepath.Join(root, rel))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	woke := false
	for tr.Len() > 0 || !woke {
		select {
		case got := <-tr.Wake():
			woke = woke || got == ref
		case <-time.After(10 * time.Second):
			t.Fatalf("after rmdir: %d triggers still armed, woken %v", tr.Len(), woke)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	waitFDs(t, baseline)
}

func TestKernelTriggersCloseReleasesFDs(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "idle")
	baseline := fdCount(t)
	for i := 0; i < 3; i++ {
		tr, err := NewTriggers(nil)
		if err != nil {
			t.Fatal(err)
		}
		ref := governor.Ref{ID: inode(t, filepath.Join(root, rel)), Path: rel}
		for _, res := range []string{"cpu", "memory", "io"} {
			if _, err := tr.Add(ref, filepath.Join(root, rel, res+".pressure"), res != "cpu", 100*time.Millisecond, 2*time.Second); err != nil {
				t.Fatalf("%s: %v", res, err)
			}
		}
		if _, err := tr.Add(ref, filepath.Join(root, rel, "cpu.pressure"), false, 3*time.Second, 2*time.Second); err == nil {
			t.Error("stall > window accepted")
		}
		if i == 1 {
			tr.Remove(ref.ID)
			if tr.Len() != 0 {
				t.Errorf("Remove left %d triggers", tr.Len())
			}
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tr.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := tr.Add(ref, filepath.Join(root, rel, "cpu.pressure"), false, 100*time.Millisecond, 2*time.Second); err == nil {
			t.Error("Add after Close succeeded")
		}
	}
	waitFDs(t, baseline)
}

// Cgroups created and removed while the Source walks must never make
// Sample fail: vanished cgroups are skipped silently.
func TestKernelSourceChurn(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "churn")
	parent := filepath.Join(root, rel)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			d := filepath.Join(parent, "c"+strconv.Itoa(i%8))
			if os.Mkdir(d, 0o755) != nil {
				os.Remove(d)
			}
		}
	}()
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return strings.HasPrefix(p, rel) }})
	var snap governor.Snapshot
	for i := 0; i < 200; i++ {
		snap.Reset(time.Now())
		if err := src.Sample(context.Background(), &snap); err != nil {
			close(stop)
			<-done
			t.Fatalf("sample %d during churn: %v", i, err)
		}
	}
	close(stop)
	<-done
	// State does not outlive the cgroups it belongs to.
	snap.Reset(time.Now())
	if err := src.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range snap.Cgroups {
		if strings.HasPrefix(c.Path, rel) {
			n++
		}
	}
	if src.stateCount() != n {
		t.Errorf("state for %d cgroups, %d read", src.stateCount(), n)
	}
}

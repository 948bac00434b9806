package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A memory.high write that blocks in the kernel (synchronous reclaim on an
// old kernel, a stuck cgroup): the real Actuator under a real Loop. The Step
// returns after the write timeout with one clear line, the knob stays
// recorded (pending), the loop goes on, and the knob is restored in the end
// — on Close once the write finished, or by the next start when it never
// did before Close.
func TestLoopWithBlockingMemoryHighWrite(t *testing.T) {
	root, a := actuatorFixture(t)
	writeFixture(t, filepath.Join(root, "batch/job/memory.high"), "1073741824\n")
	release := make(chan struct{})
	finished := make(chan struct{}, 8)
	a.open = func(rel, name string, flags int) (file, error) {
		f, err := a.openFile(rel, name, flags)
		if err != nil || name != "memory.high" || flags&0o3 == 0 {
			return f, err
		}
		return fakeFile{write: func(b []byte) (int, error) {
			defer func() { finished <- struct{}{} }()
			<-release
			n, err := f.Write(b)
			f.Close()
			return n, err
		}, closed: new(atomic.Bool)}, nil
	}
	src := &govtest.Source{Cgs: []governor.Sample{{Ref: governor.Ref{ID: 7, Path: "batch/job"}, Populated: true}}}
	src.Host.Set(governor.MemorySomeAvg10, 50)
	policy := func() *governor.Policy {
		return &governor.Policy{
			Classes: []governor.Class{{Name: "batch", Match: []string{"batch/*"}}},
			Rules: []governor.Rule{{Name: "squeeze", Target: "batch", Knob: governor.MemoryHigh, Down: true,
				Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1 << 20, Cooldown: time.Hour},
				Trigger: governor.Trigger{When: []governor.Condition{{Scope: governor.ScopeHost, Signal: governor.MemorySomeAvg10, Op: governor.Above, Value: 10}}}}},
		}
	}
	state := filepath.Join(t.TempDir(), "state.json")
	logs := &lockedBuf{}
	newLoop := func(p *governor.Policy) *governor.Loop {
		l, err := governor.New(governor.Config{
			Policy: p, Sources: []governor.Source{src}, Actuator: a, StatePath: state,
			Logger:       hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
			Caps:         governor.Capabilities{Root: root, Controllers: map[string]bool{"memory": true}},
			WriteTimeout: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ctx := context.Background()
	l := newLoop(policy())
	start := time.Now()
	if err := l.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Step took %v with a blocked write", d)
	}
	if n := strings.Count(logs.String(), "write timed out; will check"); n != 1 {
		t.Errorf("%d 'write timed out' lines, want 1:\n%s", n, logs.String())
	}
	if e, _ := governor.LoadState(state); len(e) != 1 || e[0].Written != 1<<29 {
		t.Fatalf("blocked write not recorded: %+v", e)
	}
	// The loop keeps stepping while the write hangs.
	for i := 0; i < 3; i++ {
		if err := l.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Close while the write still hangs: the restore cannot go through
	// (same file busy); the knob stays in the state file.
	if err := l.Close(ctx); err == nil {
		t.Errorf("Close restored a knob whose write is still in flight?")
	}
	if e, _ := governor.LoadState(state); len(e) != 1 {
		t.Fatalf("unrestored knob dropped from the state file: %+v", e)
	}
	// The kernel finishes the write late; the next start restores it.
	close(release)
	<-finished
	waitFor(t, func() bool { return readFixture(t, filepath.Join(root, "batch/job/memory.high")) == "536870912" })
	l2 := newLoop(&governor.Policy{})
	if err := l2.Recover(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		if err := l2.Step(ctx); err != nil {
			t.Fatal(err)
		}
		return readFixture(t, filepath.Join(root, "batch/job/memory.high")) == "1073741824"
	})
	if e, _ := governor.LoadState(state); len(e) != 0 {
		t.Errorf("state after restore: %+v", e)
	}
	if err := l2.Close(ctx); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PSI triggers that cannot be armed (a pressure file that is not one —
// epoll refuses a regular file —, a symlinked pressure file, a missing one)
// under a real Loop with the daemon's armer: the loop steps on the tick,
// logs one line per cgroup, leaks no descriptor, and never writes a trigger
// through a symlink.
func TestLoopWithFailingTriggers(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	victim := filepath.Join(outside, "memory.pressure")
	writeFixture(t, victim, "untouched")
	mkCgroup(t, root, "batch", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	mkCgroup(t, root, "batch/a", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n", "memory.pressure": psiFile(0, 0)})
	mkCgroup(t, root, "batch/b", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	mkCgroup(t, root, "batch/c", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	if err := os.Symlink(victim, filepath.Join(root, "batch/b/memory.pressure")); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuf{}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	baseline := fdCount(t)
	src := NewSource(root, SourceOptions{ProcPressureDir: t.TempDir()})
	trig, err := NewTriggers(log)
	if err != nil {
		t.Fatal(err)
	}
	l, err := governor.New(governor.Config{
		Policy: &governor.Policy{
			Classes: []governor.Class{{Name: "batch", Match: []string{"batch/*"}}},
			Rules: []governor.Rule{{Name: "r", Target: "batch", Knob: governor.CPUWeight, Down: true, Step: governor.Step{Percent: 50},
				Trigger: governor.Trigger{When: []governor.Condition{{Scope: governor.ScopeSelf, Signal: governor.MemorySomeAvg10, Op: governor.Above, Value: 10}}}}},
		},
		Sources:  []governor.Source{src},
		Actuator: NewActuator(root, nil), Notifier: trig, Logger: log,
		Armer: Armer{Triggers: trig, Root: root},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := l.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// One line each for the file that is no PSI file and the symlink; a
	// missing file reads as a cgroup that went away (at most one line).
	for cg, want := range map[string][2]int{"batch/a": {1, 1}, "batch/b": {1, 1}, "batch/c": {0, 1}} {
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "cannot arm PSI trigger") && strings.Contains(line, "cgroup="+cg+" ") {
				n++
			}
		}
		if n < want[0] || n > want[1] {
			t.Errorf("%s: %d cannot-arm lines, want %d..%d:\n%s", cg, n, want[0], want[1], logs.String())
		}
	}
	if trig.Len() != 0 {
		t.Errorf("%d triggers armed", trig.Len())
	}
	if got := readFixture(t, victim); got != "untouched" {
		t.Errorf("a trigger was written through a symlink: %q", got)
	}
	l.Close(context.Background())
	trig.Close()
	closeSource(src)
	waitFDs(t, baseline)
}

// closeSource releases what a Source keeps open (cached directory fds,
// inotify), where the Source has a Close.
func closeSource(s any) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

package governor

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Faults the kernel reports on writes, as the cgroup Actuator wraps them:
// the loop keeps running, says so in one clear line naming the cgroup, the
// knob and the error, and never records a knob it did not change.
func TestWriteErrnoFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		logged bool // a vanished cgroup is not an error worth a line
	}{
		{"EBUSY", syscall.EBUSY, true},
		{"EINVAL", syscall.EINVAL, true},
		{"EACCES", syscall.EACCES, true},
		{"EPERM", syscall.EPERM, true},
		{"ENOENT: cgroup removed between read and write", ErrGone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, protectPolicy())
			h.src.add(web, "system.slice/web.service")
			h.src.add(batch, "system.slice/other.service")
			h.act.fail[knobKey{web, MemoryLow}] = fmt.Errorf("write /sys/fs/cgroup/system.slice/web.service/memory.low: %w", tc.err)
			for i := 0; i < 5; i++ {
				h.tick(time.Second)
			}
			if _, ok := h.loop.managed[knobKey{web, MemoryLow}]; ok {
				t.Errorf("failed write recorded as managed")
			}
			for _, e := range mustState(t, h) {
				if e.ID == web {
					t.Errorf("failed write in the state file: %+v", e)
				}
			}
			lines := errorLines(h.logText())
			if tc.logged {
				if len(lines) == 0 || !strings.Contains(lines[0], "system.slice/web.service") ||
					!strings.Contains(lines[0], "memory.low") || !strings.Contains(lines[0], tc.err.Error()) {
					t.Errorf("want an error line naming cgroup, knob and %q; got %q", tc.err, lines)
				}
			} else if len(lines) != 0 {
				t.Errorf("vanished cgroup logged as an error: %q", lines)
			}
			// The other cgroup was governed all along.
			if h.act.get(batch, MemoryLow) != 1<<30 {
				t.Errorf("a failing cgroup stopped the loop for others")
			}
			// Once the fault clears the write goes through and is restored.
			delete(h.act.fail, knobKey{web, MemoryLow})
			h.tick(time.Second)
			if h.act.get(web, MemoryLow) != 1<<30 {
				t.Errorf("no retry after the fault cleared: %v", h.act.writes)
			}
			if err := h.loop.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if h.act.get(web, MemoryLow) != 0 || h.act.get(batch, MemoryLow) != 0 {
				t.Errorf("not restored on close")
			}
		})
	}
}

// restoreFailing is the fake actuator with failing restores.
type restoreFailing struct {
	*fakeActuator
	err error
}

func (r *restoreFailing) Restore(ctx context.Context, cg Ref, k Knob, s Setting) error {
	if r.err != nil {
		return r.err
	}
	return r.fakeActuator.Restore(ctx, cg, k, s)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

func mustState(t *testing.T, h *harness) []StateEntry {
	t.Helper()
	e, err := LoadState(h.cfg.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func errorLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "[ERROR]") {
			out = append(out, l)
		}
	}
	return out
}

// A restore that fails on Close stays in the state file for the next start,
// and that start restores it.
func TestRestoreFailureOnCloseIsKept(t *testing.T) {
	rf := &restoreFailing{}
	h := newHarness(t, protectPolicy(), func(c *Config) {
		rf.fakeActuator = c.Actuator.(*fakeActuator)
		c.Actuator = rf
	})
	h.src.add(web, "system.slice/web.service")
	h.tick(time.Second)
	rf.err = fmt.Errorf("write memory.low: %w", syscall.EBUSY)
	if err := h.loop.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("close: %v, want the EBUSY", err)
	}
	if e := mustState(t, h); len(e) != 1 || e[0].ID != web {
		t.Fatalf("unrestored knob not kept in the state file: %+v", e)
	}
	rf.err = nil
	cfg := h.cfg
	cfg.Policy = &Policy{}
	l2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Recover(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.act.get(web, MemoryLow) != 0 {
		t.Errorf("next start did not restore: %v", h.act.writes)
	}
	if e := mustState(t, h); len(e) != 0 {
		t.Errorf("state file after restore: %+v", e)
	}
}

// A truncated state file (the process died while an older, non-atomic
// writer was writing it, or the disk filled up) at any length: Recover
// reports it, keeps a copy, and the loop runs on.
func TestTruncatedStateFileAtEveryLength(t *testing.T) {
	h := newHarness(t, protectPolicy())
	h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "system.slice/other.service")
	h.tick(time.Second)
	full := mustRead(t, h.cfg.StatePath)
	for n := 0; n < len(full); n += 7 {
		cfg := h.cfg
		if err := writeFile(cfg.StatePath, full[:n]); err != nil {
			t.Fatal(err)
		}
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = l.Recover()
		if n > 0 && (err == nil || !strings.Contains(err.Error(), cfg.StatePath)) {
			t.Fatalf("truncated to %d bytes: Recover = %v, want an error naming the file", n, err)
		}
		if err := l.Step(context.Background()); err != nil {
			t.Fatalf("step after a truncated state file: %v", err)
		}
	}
}

// A policy reload racing the loop (SetPolicy from the control socket or
// SIGHUP while Run steps). Run with -race. The loop must keep stepping and,
// on Close, restore everything whichever policy was last in force.
func TestReloadRacingRun(t *testing.T) {
	a, b := suppressPolicy(), protectPolicy()
	a.Tick, b.Tick = time.Millisecond, time.Millisecond
	a.Classes = append(a.Classes, Class{Name: "other", Match: []string{"system.slice/*"}})
	h := newHarness(t, a, func(c *Config) { c.Clock = SystemClock{} })
	w := h.src.add(web, "system.slice/web.service")
	w.Set(CPUSomeAvg10, 50)
	h.src.add(batch, "batch.slice/job1")
	var steps sync.WaitGroup
	var mu sync.Mutex
	n := 0
	h.loop.cfg.AfterStep = func(StepResult) { mu.Lock(); n++; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.loop.Run(ctx) }()
	steps.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			defer steps.Done()
			for i := 0; i < 500; i++ {
				if i%2 == 0 {
					h.loop.SetPolicy(clonePolicy(a))
				} else {
					h.loop.SetPolicy(clonePolicy(b))
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	steps.Wait()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if n < 5 {
		t.Errorf("only %d steps ran while reloading", n)
	}
	mu.Unlock()
	if err := h.loop.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []CgroupID{web, batch} {
		for k := Knob(0); k < NumKnobs; k++ {
			if got := h.act.get(id, k); got != defaultKnob(k) {
				t.Errorf("cgroup %d %s = %d after close, want %d", id, k, got, defaultKnob(k))
			}
		}
	}
	if e := mustState(t, h); len(e) != 0 {
		t.Errorf("state file after close: %+v", e)
	}
}

func clonePolicy(p *Policy) *Policy {
	c := *p
	return &c
}

// A storm of trigger wake-ups (a PSI trigger firing continuously, or a
// trigger fd that errors and is reported over and over) only makes the loop
// step more often; it neither blocks nor leaks.
type stormNotifier struct{ ch chan Ref }

func (s stormNotifier) Wake() <-chan Ref { return s.ch }

func TestWakeStorm(t *testing.T) {
	p := protectPolicy()
	p.Tick = time.Hour
	storm := stormNotifier{ch: make(chan Ref)}
	h := newHarness(t, p, func(c *Config) { c.Notifier = storm; c.Clock = SystemClock{} })
	h.src.add(web, "system.slice/web.service")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.loop.Run(ctx) }()
	for i := 0; i < 2000; i++ {
		storm.ch <- Ref{ID: CgroupID(i % 7), Path: "gone/or/unknown"}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.act.get(web, MemoryLow) != 1<<30 {
		t.Errorf("loop did not act while woken")
	}
	if c := countWrites(h.act.writes, "system.slice/web.service"); c != 1 {
		t.Errorf("%d writes of the same value under a wake storm, want 1", c)
	}
	h.loop.Close(context.Background())
}

package governor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/cgroup"
	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// These run a Loop with the real cgroupfs Actuator on the host's cgroup2
// hierarchy (/sys/fs/cgroup/unified here), where cgroup.freeze works even
// without the memory or cpu controllers. The signals come from a fixed
// Source: the kernel cannot be made to report memory pressure on demand.

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

func hostRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root, err := cgroup.FindMount()
	if errors.Is(err, cgroup.ErrNoCgroup2) {
		t.Skip("no cgroup2 mount")
	}
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// hostCgroups creates <root>/governor-freeze-test-<pid>-<n>/<name> for each
// name, each holding a sleeping process, and removes them when the test
// ends. It returns the parent's path relative to root.
func hostCgroups(t *testing.T, root string, names ...string) string {
	t.Helper()
	parent := fmt.Sprintf("governor-freeze-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		for _, n := range names {
			d := filepath.Join(root, parent, n)
			os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
			os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, n := range append(names, "") {
			for os.Remove(filepath.Join(root, parent, n)) != nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	for _, n := range names {
		d := filepath.Join(root, parent, n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	return parent
}

func freezeFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel, "cgroup.freeze"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func setFreeze(t *testing.T, root, rel, v string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, rel, "cgroup.freeze"), []byte(v), 0); err != nil {
		t.Fatal(err)
	}
}

func procsIn(t *testing.T, root, rel string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(b)))
}

func hostLoop(t *testing.T, root string, p *governor.Policy, src *govtest.Source, state string, logs *strings.Builder) (*governor.Loop, *stepClock) {
	t.Helper()
	clock := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	l, err := governor.New(governor.Config{
		Policy:    p,
		Sources:   []governor.Source{src},
		Actuator:  cgroup.NewActuator(root, nil),
		Clock:     clock,
		Logger:    log,
		StatePath: state,
		Caps:      governor.Capabilities{Root: root, Controllers: map[string]bool{}, Freeze: true, Kill: true},
		// The audit line, as the daemon writes it.
		OnAction: func(a governor.Action) { governor.LogAction(log.Named("audit"), a) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func lastResortOn(parent string, kill bool) *governor.Policy {
	return &governor.Policy{
		Classes: []governor.Class{{Name: "batch", Match: []string{parent + "/*"}}},
		LastResort: []governor.LastResortController{{Name: "lr", Target: "batch", Grace: 10 * time.Second, Kill: kill,
			Trigger: governor.Trigger{When: []governor.Condition{{Scope: governor.ScopeHost, Signal: governor.MemoryFullAvg10, Op: governor.Above, Value: 40, For: 2 * time.Second}}}}},
	}
}

// Case 13 on the kernel: the operator thaws a last-resort victim by hand;
// the governor hands it back (logged once) and neither kills it nor freezes
// it again in that trigger episode, across a policy reload too.
func TestHostManualThawHandsBack(t *testing.T) {
	root := hostRoot(t)
	for _, kill := range []bool{true, false} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			parent := hostCgroups(t, root, "job")
			job := parent + "/job"
			src := &govtest.Source{}
			src.Host.Set(governor.MemoryFullAvg10, 60)
			s := governor.Sample{Ref: governor.Ref{ID: 7, Path: job}, Populated: true}
			s.Set(governor.MemoryCurrent, 1<<30)
			src.Cgs = []governor.Sample{s}
			var logs strings.Builder
			l, clock := hostLoop(t, root, lastResortOn(parent, kill), src, filepath.Join(t.TempDir(), "state.json"), &logs)
			ctx := context.Background()
			step := func(n int) {
				for i := 0; i < n; i++ {
					clock.t = clock.t.Add(time.Second)
					if err := l.Step(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			step(4)
			if got := freezeFile(t, root, job); got != "1" {
				t.Fatalf("setup: cgroup.freeze = %s, want 1\n%s", got, logs.String())
			}
			setFreeze(t, root, job, "0") // the operator thaws it
			step(30)
			l.SetPolicy(lastResortOn(parent, kill))
			step(10)
			if got := freezeFile(t, root, job); got != "0" {
				t.Errorf("cgroup.freeze = %s after an operator's thaw, want 0 (not frozen again)", got)
			}
			if procsIn(t, root, job) != 1 {
				t.Errorf("the thawed cgroup was killed\n%s", logs.String())
			}
			if n := strings.Count(logs.String(), "thawed by someone else"); n != 1 {
				t.Errorf("hand-back logged %d times, want once\n%s", n, logs.String())
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Case 8 on the kernel: a forged state file naming a protected cgroup's
// cgroup.freeze does not thaw it (the operator froze it).
func TestHostForgedStateDoesNotThawProtected(t *testing.T) {
	root := hostRoot(t)
	parent := hostCgroups(t, root, "web")
	web := parent + "/web"
	setFreeze(t, root, web, "1")
	src := &govtest.Source{Cgs: []governor.Sample{{Ref: governor.Ref{ID: 9, Path: web}, Populated: true}}}
	state := filepath.Join(t.TempDir(), "state.json")
	b, _ := json.Marshal(map[string]any{"version": 1, "entries": []governor.StateEntry{
		{ID: 9, Path: web, Knob: "cgroup.freeze", Original: "0", Written: 1, Owner: "lr"},
	}})
	if err := os.WriteFile(state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := lastResortOn(parent, true)
	p.Classes[0].Protected = true
	var logs strings.Builder
	l, _ := hostLoop(t, root, p, src, state, &logs)
	if err := l.Recover(); err != nil {
		t.Fatal(err)
	}
	if err := l.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := freezeFile(t, root, web); got != "1" {
		t.Errorf("protected cgroup thawed from a forged state file: cgroup.freeze = %s\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "state file entry refused") {
		t.Errorf("refusal not logged\n%s", logs.String())
	}
}

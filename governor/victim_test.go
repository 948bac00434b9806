package governor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mapHints is a HintReader over a map of paths.
type mapHints map[string]Hint

func (m mapHints) VictimHint(cg Ref) (Hint, string, error) {
	if h, ok := m[cg.Path]; ok {
		return h, "test." + h.String(), nil
	}
	return HintNone, "", nil
}

// lastResortRun builds cgroups a, b, c of class batch with the given
// memory, swap and memory pressure, raises host memory pressure and steps
// until one is frozen; it returns the frozen one's path and the audit
// reason of the freeze.
func lastResortRun(t *testing.T, rank VictimRank, hints mapHints, mod ...func(*Config)) (*harness, string, string) {
	t.Helper()
	p := lastResortPolicy(true)
	p.LastResort[0].Rank = rank
	h := newHarness(t, p, append([]func(*Config){func(c *Config) {
		if hints != nil {
			c.Hints = hints
		}
	}}, mod...)...)
	for i, v := range []struct {
		path             string
		mem, swap, press float64
	}{
		{"batch.slice/a", 3 << 30, 0, 1},
		{"batch.slice/b", 1 << 30, 2 << 30, 5},
		{"batch.slice/c", 200 << 20, 1 << 20, 30},
	} {
		s := h.src.add(CgroupID(100+i), v.path)
		s.Set(MemoryCurrent, v.mem)
		s.Set(MemorySwap, v.swap)
		s.Set(MemorySomeAvg10, v.press)
	}
	var reason string
	h.cfg.OnAction = nil
	h.loop.cfg.OnAction = func(a Action) {
		if a.Kind == "freeze" {
			reason = a.Reason
		}
	}
	h.tick(time.Second)
	h.src.host.Set(MemoryFullAvg10, 60)
	for i := 0; i < 4; i++ {
		h.tick(time.Second)
	}
	var frozen []string
	for i, path := range []string{"batch.slice/a", "batch.slice/b", "batch.slice/c"} {
		if h.act.frozen[CgroupID(100+i)] {
			frozen = append(frozen, path)
		}
	}
	if len(frozen) != 1 {
		t.Fatalf("frozen %v, want exactly one; writes %v", frozen, h.act.writes)
	}
	return h, frozen[0], reason
}

func TestLastResortVictimChoice(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rank   VictimRank
		hints  mapHints
		want   string
		reason []string
	}{
		{"largest memory", RankMemory, nil, "batch.slice/a", []string{"rank=memory memory.current=3GiB", "chosen of 3 candidates"}},
		{"largest swap", RankSwap, nil, "batch.slice/b", []string{"rank=swap memory.swap=2GiB"}},
		{"most memory pressure", RankPressure, nil, "batch.slice/c", []string{"rank=pressure memory.some.avg10=30.00%"}},
		{"preferred beats larger", RankMemory, mapHints{"batch.slice/c": HintPrefer}, "batch.slice/c",
			[]string{"memory.current=200MiB hint=prefer (test.prefer)"}},
		{"largest of two preferred", RankMemory, mapHints{"batch.slice/c": HintPrefer, "batch.slice/b": HintPrefer}, "batch.slice/b", nil},
		{"avoided is skipped", RankMemory, mapHints{"batch.slice/a": HintAvoid}, "batch.slice/b", nil},
		{"avoided only when nothing else", RankMemory, mapHints{"batch.slice/a": HintAvoid, "batch.slice/b": HintAvoid, "batch.slice/c": HintAvoid}, "batch.slice/a",
			[]string{"hint=avoid"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, got, reason := lastResortRun(t, tt.rank, tt.hints)
			if got != tt.want {
				t.Errorf("froze %s, want %s (reason %q)", got, tt.want, reason)
			}
			for _, w := range tt.reason {
				if !strings.Contains(reason, w) {
					t.Errorf("audit reason %q lacks %q", reason, w)
				}
			}
		})
	}
}

// errHints fails for every cgroup: the choice goes on without hints.
type errHints struct{}

func (errHints) VictimHint(Ref) (Hint, string, error) { return HintNone, "", errors.New("no xattrs") }

func TestLastResortHintErrorRanksWithout(t *testing.T) {
	h, got, _ := lastResortRun(t, RankMemory, nil, func(c *Config) { c.Hints = errHints{} })
	if got != "batch.slice/a" {
		t.Errorf("froze %s, want the largest", got)
	}
	if !strings.Contains(h.logText(), "cannot read the victim hint") {
		t.Error("hint error not logged")
	}
}

func TestLastResortHookBeforeFreeze(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	var envs [][]string
	var h *harness
	run := func(ctx context.Context, argv, env []string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(h.act.frozen) != 0 {
			t.Errorf("hook ran after a freeze: %v", h.act.writes)
		}
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 3*time.Second {
			t.Errorf("hook context deadline %v (ok %v), want within the 3 s timeout", dl, ok)
		}
		calls, envs = append(calls, argv), append(envs, env)
		return []byte("notified\n"), nil
	}
	p := lastResortPolicy(true)
	p.LastResort[0].Hook = []string{"/usr/local/bin/notify", "--urgent"}
	p.LastResort[0].HookTimeout = 3 * time.Second
	var reason string
	h = newHarness(t, p, func(c *Config) {
		c.RunHook = run
		c.Caps.Root = "/sys/fs/cgroup"
		c.OnAction = func(a Action) {
			if a.Kind == "freeze" {
				reason = a.Reason
			}
		}
	})
	h.src.add(batch, "batch.slice/job").Set(MemoryCurrent, 1<<30)
	h.src.host.Set(MemoryFullAvg10, 60)
	for i := 0; i < 4; i++ {
		h.tick(time.Second)
	}
	if !h.act.frozen[batch] || len(calls) != 1 {
		t.Fatalf("frozen %v after %d hook calls, want frozen after one", h.act.frozen[batch], len(calls))
	}
	if strings.Join(calls[0], " ") != "/usr/local/bin/notify --urgent" {
		t.Errorf("argv %q", calls[0])
	}
	env := strings.Join(envs[0], "\n")
	for _, w := range []string{"GOVERNOR_ACTION=freeze", "GOVERNOR_CONTROLLER=lr", "GOVERNOR_CGROUP=batch.slice/job",
		"GOVERNOR_CGROUP_PATH=/sys/fs/cgroup/batch.slice/job", "GOVERNOR_REASON=last resort (rank=memory", "GOVERNOR_KILL_AT=2026-01-01T00:00:13Z"} {
		if !strings.Contains(env, w) {
			t.Errorf("hook env lacks %q:\n%s", w, env)
		}
	}
	if !strings.Contains(reason, "; hook ok in") {
		t.Errorf("audit reason %q lacks the hook's outcome", reason)
	}
	if !strings.Contains(h.logText(), "output=notified") {
		t.Errorf("hook output not logged:\n%s", h.logText())
	}
}

func TestLastResortHookDryRunNotRun(t *testing.T) {
	p := lastResortPolicy(false)
	p.LastResort[0].Hook = []string{"/bin/true"}
	ran := false
	h := newHarness(t, p, func(c *Config) {
		c.DryRun = true
		c.RunHook = func(context.Context, []string, []string) ([]byte, error) { ran = true; return nil, nil }
	})
	h.src.add(batch, "batch.slice/job").Set(MemoryCurrent, 1<<30)
	h.src.host.Set(MemoryFullAvg10, 60)
	for i := 0; i < 4; i++ {
		h.tick(time.Second)
	}
	if ran {
		t.Error("hook ran in dry-run")
	}
}

// TestExecHookTimeout runs a real command that outlives the timeout and
// leaves a child behind: ExecHook returns at the timeout, not when the
// sleepers would end, and kills the whole process group.
func TestExecHookTimeout(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	pidFile := filepath.Join(t.TempDir(), "child")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := ExecHook(ctx, []string{"/bin/sh", "-c", `echo started; sleep 30 & echo $! > "$1"; sleep 30`, "hook", pidFile}, []string{"PATH=/usr/bin:/bin"})
	took := time.Since(start)
	if err == nil {
		t.Fatal("no error from a hook killed at its timeout")
	}
	if took > 5*time.Second {
		t.Errorf("ExecHook returned after %v, want about the 300ms timeout", took)
	}
	if !strings.Contains(string(out), "started") {
		t.Errorf("output %q", out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break // gone, or a zombie waiting for its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook's background child %s survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecHookOK(t *testing.T) {
	out, err := ExecHook(context.Background(), []string{"/bin/sh", "-c", `echo "$GOVERNOR_CGROUP"`}, []string{"GOVERNOR_CGROUP=batch.slice/x"})
	if err != nil || strings.TrimSpace(string(out)) != "batch.slice/x" {
		t.Errorf("ExecHook = %q, %v", out, err)
	}
	if _, err := ExecHook(context.Background(), []string{"/bin/sh", "-c", "exit 3"}, nil); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("exit 3: %v", err)
	}
}

// TestKillIsLastAction: the kill path thaws the emptied cgroup after
// cgroup.kill; status must still show the kill as the last action.
func TestKillIsLastAction(t *testing.T) {
	h := newHarness(t, lastResortPolicy(true))
	h.src.add(batch, "batch.slice/job").Set(MemoryCurrent, 1<<30)
	h.src.host.Set(MemoryFullAvg10, 60)
	for i := 0; i < 16; i++ {
		h.tick(time.Second)
	}
	if !h.act.killed[batch] {
		t.Fatalf("not killed: %v", h.act.writes)
	}
	st := h.loop.status()
	if len(st.Cgroups) != 1 || st.Cgroups[0].Last == nil || st.Cgroups[0].Last.Kind != "kill" {
		t.Errorf("last action %+v, want the kill", st.Cgroups[0].Last)
	}
}

// TestDisabledControllerNotEvaluated: a controller impossible on this host
// shows no condition values (they would be zeros from no reading).
func TestDisabledControllerNotEvaluated(t *testing.T) {
	h := newHarness(t, suppressPolicy(), func(c *Config) {
		c.Caps = Capabilities{Root: "/sys/fs/cgroup/unified", Controllers: map[string]bool{"pids": true}}
	})
	h.src.add(web, "system.slice/web.service").Set(CPUSomeAvg10, 90)
	h.src.add(batch, "batch.slice/a")
	for i := 0; i < 3; i++ {
		h.tick(time.Second)
	}
	st := h.loop.status()
	if len(st.Controllers) != 1 {
		t.Fatalf("controllers %+v", st.Controllers)
	}
	c := st.Controllers[0]
	if c.Disabled == "" || !strings.HasPrefix(c.Because, "not evaluated (impossible here: ") || strings.Contains(c.Because, "cpu.some.avg10=") {
		t.Errorf("disabled controller's Because %q (disabled %q)", c.Because, c.Disabled)
	}
	out, err := h.loop.explain("batch.slice/a")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(out, "\n")
	if !strings.Contains(text, "  not evaluated (impossible here: ") || strings.Contains(text, "cpu.some.avg10=") {
		t.Errorf("explain of a disabled controller:\n%s", text)
	}
}

// TestActiveTriggerSaysWhatHoldsNow: once the condition that fired stops
// holding (the trigger stays active until recover holds), status and
// explain say what fired, with its value then, and that nothing holds now.
func TestActiveTriggerSaysWhatHoldsNow(t *testing.T) {
	h := newHarness(t, suppressPolicy())
	w := h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "batch.slice/a")
	w.Set(CPUSomeAvg10, 90)
	for i := 0; i < 7; i++ {
		h.tick(time.Second)
	}
	st := h.loop.status()
	if !st.Controllers[0].Active {
		t.Fatalf("not active: %+v", st.Controllers[0])
	}
	if got := st.Controllers[0].Because; !strings.Contains(got, "fired on web:cpu.some.avg10=90.00% > 10.00%") || !strings.Contains(got, "holds now: web:cpu.some.avg10=90.00% > 10.00%") {
		t.Errorf("while holding: %q", got)
	}
	w.Set(CPUSomeAvg10, 5) // below the when threshold, above recover's 2%
	h.tick(time.Second)
	st = h.loop.status()
	got := st.Controllers[0].Because
	if !st.Controllers[0].Active || !strings.Contains(got, "fired on web:cpu.some.avg10=90.00% > 10.00%") ||
		!strings.Contains(got, "holds now: none; active until recover holds: web:cpu.some.avg10=5.00% < 2.00%") {
		t.Errorf("after the condition stopped holding: %q", got)
	}
	out, _ := h.loop.explain("batch.slice/a")
	text := strings.Join(out, "\n")
	if !strings.Contains(text, "holds now: none") || strings.Contains(text, "when web:cpu.some.avg10=5.00% > 10.00%") {
		t.Errorf("explain:\n%s", text)
	}
}

// TestLastResortGraceFromFreeze: the grace period runs from the freeze,
// not from the start of the step whose hook took its time (the VM's
// runaway scenario showed a 3 s grace cut to 1.5 s by a 2 s hook).
func TestLastResortGraceFromFreeze(t *testing.T) {
	p := lastResortPolicy(true) // grace 10s
	p.LastResort[0].Hook = []string{"/bin/slow"}
	var h *harness
	var frozeAt, killedAt time.Time
	h = newHarness(t, p, func(c *Config) {
		c.RunHook = func(context.Context, []string, []string) ([]byte, error) {
			h.clock.Advance(4 * time.Second) // a slow hook
			return nil, nil
		}
		c.OnAction = func(a Action) {
			switch a.Kind {
			case "freeze":
				frozeAt = a.Time
			case "kill":
				killedAt = a.Time
			}
		}
	})
	h.src.add(batch, "batch.slice/job").Set(MemoryCurrent, 1<<30)
	h.src.host.Set(MemoryFullAvg10, 60)
	for i := 0; i < 20 && killedAt.IsZero(); i++ {
		h.tick(time.Second)
	}
	if frozeAt.IsZero() || killedAt.IsZero() {
		t.Fatalf("froze at %v, killed at %v", frozeAt, killedAt)
	}
	if d := killedAt.Sub(frozeAt); d < 10*time.Second {
		t.Errorf("killed %v after the freeze, want at least the 10s grace", d)
	}
}

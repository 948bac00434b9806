package governor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests for the rule that every effect passes the same checks and is
// recorded before it happens, recovered entries of the state file
// included (docs/THREAT-MODEL.md, "The state file and recorded effects").

const initScope CgroupID = 40

func forgedPolicy() *Policy {
	return &Policy{
		Classes: []Class{
			{Name: "web", Match: []string{"system.slice/web.service"}, Protected: true},
			{Name: "batch", Match: []string{"batch.slice/**"}},
		},
		Protect: []ProtectController{{Name: "keep", Target: "web", Low: 1 << 30}},
	}
}

// Case 8: entries of a state file pass the same deny-list and
// protected-class check as fresh actions. A forged file naming a protected
// class's memory.max, init.scope's cpu.weight and a protected cgroup's
// cgroup.freeze changes nothing; an allowed entry (and the protect
// controller's own memory.low on the protected class) is still honoured.
func TestForgedStateEntriesGetTheSameChecks(t *testing.T) {
	h := newHarness(t, forgedPolicy())
	h.src.add(web, "system.slice/web.service")
	h.src.add(initScope, "init.scope")
	h.src.add(batch, "batch.slice/job")
	h.act.frozen[web] = true // frozen by the operator
	h.act.put(web, MemoryLow, 1<<30)
	h.act.put(batch, CPUWeight, 50)
	writeState(t, h.cfg.StatePath,
		StateEntry{ID: web, Path: "system.slice/web.service", Knob: "memory.max", Original: "1", OrigVal: 1, Written: Unlimited, Owner: "evil"},
		StateEntry{ID: web, Path: "system.slice/web.service", Knob: "memory.max", Original: "1", OrigVal: 1, Written: Unlimited, Owner: "evil"},
		StateEntry{ID: web, Path: "system.slice/web.service", Knob: "memory.high", Original: "1", OrigVal: 1, Written: Unlimited, Owner: "keep"},
		StateEntry{ID: initScope, Path: "init.scope", Knob: "cpu.weight", Original: "1", OrigVal: 1, Written: 100, Owner: "evil"},
		StateEntry{ID: web, Path: "system.slice/web.service", Knob: freezeKnob, Original: "0", Written: 1, Owner: "evil"},
		// Allowed: restored (no rule owns them now).
		StateEntry{ID: web, Path: "system.slice/web.service", Knob: "memory.low", Original: "0", OrigVal: 0, Written: 1 << 30, Owner: "keep"},
		StateEntry{ID: batch, Path: "batch.slice/job", Knob: "cpu.weight", Original: "100", OrigVal: 100, Written: 50, Owner: "gone"},
	)
	if err := h.loop.Recover(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		h.tick(time.Second)
	}
	if err := h.loop.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.act.get(web, MemoryMax); got != Unlimited {
		t.Errorf("protected class: memory.max = %d, want max", got)
	}
	if got := h.act.get(web, MemoryHigh); got != Unlimited {
		t.Errorf("protected class: memory.high = %d (the protect controller's name does not reach other knobs)", got)
	}
	if got := h.act.get(initScope, CPUWeight); got != 100 {
		t.Errorf("init.scope cpu.weight = %d, want 100", got)
	}
	if !h.act.frozen[web] {
		t.Errorf("protected cgroup frozen by the operator was thawed")
	}
	if got := h.act.get(batch, CPUWeight); got != 100 {
		t.Errorf("allowed entry: cpu.weight = %d, want the original 100 restored", got)
	}
	for _, w := range h.act.writes {
		if strings.HasPrefix(w, "init.scope") || strings.Contains(w, "cgroup.freeze") ||
			strings.HasPrefix(w, "system.slice/web.service") && !strings.Contains(w, "memory.low") {
			t.Errorf("write outside the rules: %s", w)
		}
	}
	logs := h.logText()
	for _, knob := range []string{"knob=memory.max", "knob=cpu.weight", "knob=cgroup.freeze", "knob=memory.high"} {
		n := 0
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "state file entry refused") && strings.Contains(line, knob) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: refusal logged %d times, want once\n%s", knob, n, logs)
		}
	}
}

// breakState makes every later save of h's state file fail (the directory
// replaced by a regular file: the writes fail as on a full disk).
func breakState(t *testing.T, h *harness) func() {
	t.Helper()
	dir := filepath.Dir(h.cfg.StatePath)
	aside := dir + ".ok"
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(aside, dir); err != nil {
			t.Fatal(err)
		}
	}
}

func inStateDir(t *testing.T) func(*Config) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return func(c *Config) { c.StatePath = filepath.Join(dir, "state.json") }
}

func countLines(s, sub string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// Case 11: when the state cannot be recorded, no effect happens: not a
// freeze, a kill, a knob write or a reclaim; and the daemon says so at most
// once a minute. Once saving works again, effects resume.
func TestNoEffectWithoutRecord(t *testing.T) {
	const notRecorded = "cannot record the change in the state file; not making it"
	t.Run("freeze", func(t *testing.T) {
		h := newHarness(t, lastResortPolicy(true), inStateDir(t))
		h.src.add(batch, "batch.slice/a").Set(MemoryCurrent, 1<<30)
		h.tick(time.Second)
		fix := breakState(t, h)
		h.src.host.Set(MemoryFullAvg10, 60)
		for i := 0; i < 30; i++ {
			h.tick(time.Second)
		}
		if len(h.act.writes) != 0 {
			t.Fatalf("effects without a record: %v", h.act.writes)
		}
		if n := countLines(h.logText(), notRecorded); n != 1 {
			t.Errorf("warned %d times in 30 s, want once", n)
		}
		for i := 0; i < 35; i++ {
			h.tick(time.Second)
		}
		if n := countLines(h.logText(), notRecorded); n != 2 {
			t.Errorf("warned %d times in 65 s, want twice", n)
		}
		fix()
		h.tick(time.Second)
		if !h.act.frozen[batch] {
			t.Fatalf("not frozen once the state can be saved: %v", h.act.writes)
		}
		if e, err := LoadState(h.cfg.StatePath); err != nil || len(e) != 1 || e[0].Knob != freezeKnob {
			t.Errorf("freeze not recorded: %+v %v", e, err)
		}
	})
	t.Run("kill", func(t *testing.T) {
		h := newHarness(t, lastResortPolicy(true), inStateDir(t))
		h.src.add(batch, "batch.slice/a").Set(MemoryCurrent, 1<<30)
		h.src.host.Set(MemoryFullAvg10, 60)
		for i := 0; i < 4; i++ {
			h.tick(time.Second)
		}
		if !h.act.frozen[batch] {
			t.Fatal("setup: not frozen")
		}
		fix := breakState(t, h)
		for i := 0; i < 20; i++ {
			h.tick(time.Second)
		}
		if h.act.killed[batch] {
			t.Fatal("killed while the state could not be saved")
		}
		fix()
		h.tick(time.Second)
		if !h.act.killed[batch] {
			t.Fatalf("not killed once the state can be saved: %v", h.act.writes)
		}
	})
	t.Run("knob write", func(t *testing.T) {
		h := newHarness(t, suppressPolicy(), inStateDir(t))
		h.src.add(web, "system.slice/web.service").Set(CPUSomeAvg10, 50)
		h.src.add(batch, "batch.slice/job")
		fix := breakState(t, h)
		for i := 0; i < 20; i++ {
			h.tick(time.Second)
		}
		if len(h.act.writes) != 0 || len(h.loop.managed) != 0 {
			t.Fatalf("writes without a record: %v, managed %d", h.act.writes, len(h.loop.managed))
		}
		fix()
		h.tick(time.Second)
		if h.act.get(batch, CPUWeight) >= 100 {
			t.Fatalf("no write once the state can be saved: %v", h.act.writes)
		}
		if e, err := LoadState(h.cfg.StatePath); err != nil || len(e) != 1 {
			t.Errorf("write not recorded: %+v %v", e, err)
		}
	})
	t.Run("reclaim while the state is behind", func(t *testing.T) {
		p := suppressPolicy()
		p.Reclaim = []ReclaimController{{Name: "rc", Target: "batch", Signal: MemorySomeAvg10, Goal: 1, Step: Step{Percent: 5}, Interval: time.Second}}
		h := newHarness(t, p, inStateDir(t))
		job := h.src.add(batch, "batch.slice/job")
		job.Set(MemoryCurrent, 1<<30)
		job.Set(MemorySomeAvg10, 0)
		web := h.src.add(web, "system.slice/web.service")
		web.Set(CPUSomeAvg10, 50)
		h.tick(time.Second)
		fix := breakState(t, h)
		for i := 0; i < 10 && countLines(h.logText(), notRecorded) == 0; i++ {
			h.tick(time.Second)
		}
		if countLines(h.logText(), notRecorded) == 0 {
			t.Fatal("setup: the suppress write was never refused")
		}
		// Reclaim is stateless: it went ahead while the state file was
		// current. Now a change is not recorded: no reclaim either.
		h.act.writes = nil
		for i := 0; i < 10; i++ {
			h.tick(time.Second)
		}
		for _, w := range h.act.writes {
			if strings.Contains(w, "memory.reclaim") || strings.Contains(w, "cpu.weight") {
				t.Fatalf("effect while the suppress write could not be recorded: %v", h.act.writes)
			}
		}
		fix()
		h.tick(time.Second)
		if h.act.reclaim[batch] == 0 {
			t.Errorf("no reclaim once the state can be saved: %v", h.act.writes)
		}
	})
}

// Case 13: cgroup.freeze is managed like any knob. Thawed by the operator,
// a last-resort victim is handed back: never killed, never frozen again by
// that trigger episode (a reload does not end it), not shown as frozen.
// Once the trigger is quiet and fires again, it may be frozen again.
func TestManualThawHandsBack(t *testing.T) {
	for _, kill := range []bool{true, false} {
		t.Run(map[bool]string{true: "kill", false: "freeze only"}[kill], func(t *testing.T) {
			h := newHarness(t, lastResortPolicy(kill))
			h.src.add(batch, "batch.slice/a").Set(MemoryCurrent, 1<<30)
			h.src.host.Set(MemoryFullAvg10, 60)
			for i := 0; i < 4; i++ {
				h.tick(time.Second)
			}
			if !h.act.frozen[batch] {
				t.Fatal("setup: not frozen")
			}
			h.act.frozen[batch] = false // the operator thaws it
			h.act.writes = nil
			for i := 0; i < 30; i++ {
				h.tick(time.Second)
			}
			h.loop.SetPolicy(lastResortPolicy(kill)) // a reload mid-episode
			for i := 0; i < 10; i++ {
				h.tick(time.Second)
			}
			if len(h.act.writes) != 0 || h.act.killed[batch] {
				t.Fatalf("acted on a cgroup thawed by hand: %v", h.act.writes)
			}
			if n := countLines(h.logText(), "thawed by someone else"); n != 1 {
				t.Errorf("hand-back logged %d times, want once\n%s", n, h.logText())
			}
			st := h.loop.status()
			for _, c := range st.Cgroups {
				for _, k := range c.Knobs {
					if k.Knob == freezeKnob && !k.HandedBack {
						t.Errorf("status shows %s frozen: %+v", c.Path, k)
					}
				}
			}
			if e, _ := LoadState(h.cfg.StatePath); len(e) != 0 {
				t.Errorf("state still names the handed-back freeze: %+v", e)
			}
			// The trigger clears, then fires again: a new episode.
			h.src.host.Set(MemoryFullAvg10, 0)
			for i := 0; i < 3; i++ {
				h.tick(time.Second)
			}
			h.src.host.Set(MemoryFullAvg10, 60)
			for i := 0; i < 4; i++ {
				h.tick(time.Second)
			}
			if !h.act.frozen[batch] {
				t.Errorf("not frozen in the next episode: %v", h.act.writes)
			}
		})
	}
}

// Case 13, the other direction: a cgroup the operator froze before the last
// resort chose it is not taken over (so not thawed when the trigger
// recovers, nor killed).
func TestLastResortLeavesAnOperatorsFreeze(t *testing.T) {
	h := newHarness(t, lastResortPolicy(true))
	h.src.add(batch, "batch.slice/a").Set(MemoryCurrent, 1<<30)
	h.act.frozen[batch] = true
	h.src.host.Set(MemoryFullAvg10, 60)
	for i := 0; i < 20; i++ {
		h.tick(time.Second)
	}
	h.src.host.Set(MemoryFullAvg10, 0)
	for i := 0; i < 3; i++ {
		h.tick(time.Second)
	}
	if len(h.act.writes) != 0 || !h.act.frozen[batch] {
		t.Errorf("took over an operator's freeze: %v", h.act.writes)
	}
}

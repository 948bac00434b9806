package record

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func actionLines(as []Action) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s %s %s %s %s->%s %s", a.Time.Format("15:04:05"), a.Controller, a.Cgroup, a.Kind, a.Knob, a.Old, a.New, a.Reason))
	}
	return out
}

func TestReplaySamePolicyReproducesLive(t *testing.T) {
	dir := t.TempDir()
	pol := defaultPolicy(t, nil)
	live := recordRun(t, dir, pol, newScenario(20), 120, Options{})
	kinds := map[string]int{}
	for _, a := range live {
		kinds[a.Controller+"/"+a.Kind]++
	}
	// The scenario must exercise the policy: squeezes, their release,
	// reclaim and a hand-back.
	for _, k := range []string{"batch-yields-cpu/write", "batch-yields-cpu/restore", "batch-proactive/reclaim", "batch-yields-cpu/hand-back"} {
		if kinds[k] == 0 {
			t.Fatalf("live run has no %s action: %v", k, kinds)
		}
	}
	// Reclaim measured its writes and ramped its step (which needs the
	// memory readings, recorded and served back to the replay).
	ramped := false
	for _, a := range live {
		ramped = ramped || a.Kind == "reclaim" && strings.Contains(a.Reason, "step x")
	}
	if !ramped {
		t.Fatal("live reclaim never ramped its step: its writes were not measured")
	}
	res, err := Replay(context.Background(), dir, ReplayOptions{Policy: defaultPolicy(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ticks != 120 {
		t.Errorf("replayed %d ticks, want 120", res.Ticks)
	}
	want, got := actionLines(live), actionLines(res.Actions)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("replay differs from live\nlive:\n%s\nreplay:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
	if rec := actionLines(res.Recorded); strings.Join(rec, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded actions differ from live\nlive:\n%s\nrecorded:\n%s", strings.Join(want, "\n"), strings.Join(rec, "\n"))
	}
	if len(res.Missing) > 0 || len(res.Unsupported) > 0 {
		t.Errorf("same policy replay reports missing %v, unsupported %v", res.Missing, res.Unsupported)
	}
}

func TestReplayMovedThresholdChangesActions(t *testing.T) {
	dir := t.TempDir()
	live := recordRun(t, dir, defaultPolicy(t, nil), newScenario(5), 120, Options{})
	// The services' pressure peaks at 30 %: with the threshold at 50 %
	// the suppress controller never triggers; reclaim is untouched.
	moved := defaultPolicy(t, func(s string) string {
		if !strings.Contains(s, `above  = "10%"`) {
			t.Fatal("default.hcl no longer has the threshold this test moves")
		}
		return strings.Replace(s, `above  = "10%"`, `above  = "50%"`, 1)
	})
	res, err := Replay(context.Background(), dir, ReplayOptions{Policy: moved})
	if err != nil {
		t.Fatal(err)
	}
	count := func(as []Action, ctl string) int {
		n := 0
		for _, a := range as {
			if a.Controller == ctl {
				n++
			}
		}
		return n
	}
	if n := count(live, "batch-yields-cpu"); n == 0 {
		t.Fatal("live run never suppressed")
	}
	if n := count(res.Actions, "batch-yields-cpu"); n != 0 {
		t.Errorf("threshold 50%%: replay still suppresses (%d actions):\n%s", n, strings.Join(actionLines(res.Actions), "\n"))
	}
	if a, b := count(live, "batch-proactive"), count(res.Actions, "batch-proactive"); a != b || a == 0 {
		t.Errorf("reclaim actions: live %d, replay %d (want equal, > 0)", a, b)
	}
	// A threshold of 20 % still triggers, at the same time as live.
	lower := defaultPolicy(t, func(s string) string { return strings.Replace(s, `above  = "10%"`, `above  = "20%"`, 1) })
	res2, err := Replay(context.Background(), dir, ReplayOptions{Policy: lower})
	if err != nil {
		t.Fatal(err)
	}
	if count(res2.Actions, "batch-yields-cpu") == 0 {
		t.Error("threshold 20%: replay never suppresses, though pressure reached 30%")
	}
}

// Knobs the recorded host lacked are reported as such, and knobs the live
// policy never read are reported as missing: the replay invents neither.
func TestReplayReportsKnobsItCannotKnow(t *testing.T) {
	dir := t.TempDir()
	sc := newScenario(3)
	sc.act.unsupported = map[memKey]bool{{4, "cpu.max"}: true}
	live := recordRun(t, dir, defaultPolicy(t, nil), sc, 60, Options{})
	for _, a := range live {
		if a.Knob == "cpu.max" {
			t.Fatalf("live run wrote cpu.max the host lacks: %+v", a)
		}
	}
	withIO := defaultPolicy(t, func(s string) string {
		return strings.Replace(s, `  knob "cpu.max" {`, "  knob \"io.weight\" {\n    step     = \"50%\"\n    min      = 1\n    cooldown = \"5s\"\n  }\n  knob \"cpu.max\" {", 1)
	})
	res, err := Replay(context.Background(), dir, ReplayOptions{Policy: withIO})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unsupported) != 1 || !strings.HasPrefix(res.Unsupported[0], "batch.slice cpu.max (first at ") {
		t.Errorf("unsupported %q, want batch.slice cpu.max", res.Unsupported)
	}
	if len(res.Missing) != 1 || !strings.HasPrefix(res.Missing[0], "batch.slice io.weight (first at ") {
		t.Errorf("missing %q, want batch.slice io.weight", res.Missing)
	}
	for _, a := range res.Actions {
		if a.Knob == "io.weight" || a.Knob == "cpu.max" {
			t.Errorf("replay acted on a knob it has no value for: %+v", a)
		}
	}
}

package record

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/governor-dev/governor/governor"
)

// blamePolicy is the default policy with batch-yields-cpu blaming by
// preemption, and batch.slice's jobs in the batch class.
func blamePolicy(t *testing.T) *governor.Policy {
	return defaultPolicy(t, func(src string) string {
		src = strings.Replace(src, `match = ["batch.slice"]`, `match = ["batch.slice", "batch.slice/*"]`, 1)
		return strings.Replace(src, "suppress \"batch-yields-cpu\" {\n  target = \"batch\"\n",
			"suppress \"batch-yields-cpu\" {\n  target = \"batch\"\n  blame = \"preemption\"\n  blame_min_share = \"5%\"\n", 1)
	})
}

// The preemptors of each sample are recorded and read back exactly, by
// the hand-written decoder and by encoding/json.
func TestRecordPreemptedByRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sc := newBlameScenario(3)
	recordRun(t, dir, defaultPolicy(t, nil), sc, 30, Options{BlockTicks: 10})
	ticks, _, err := readAll(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 30 {
		t.Fatalf("%d ticks, want 30", len(ticks))
	}
	// Tick 20 as the scenario produced it.
	want := newBlameScenario(3)
	want.tick = 19
	var snap governor.Snapshot
	if err := want.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	sigs := ticks[0].Meta.SignalMap()
	tk := ticks[19]
	if len(tk.Cgroups) != len(snap.Cgroups) {
		t.Fatalf("%d cgroups recorded, want %d", len(tk.Cgroups), len(snap.Cgroups))
	}
	withBy := 0
	for i := range tk.Cgroups {
		c := &tk.Cgroups[i]
		var got governor.Sample
		c.Sample(&got, sigs)
		w := snap.Cgroups[i]
		if !reflect.DeepEqual(got.PreemptedBy, w.PreemptedBy) {
			t.Errorf("%s: PreemptedBy %+v, want %+v", c.Path, got.PreemptedBy, w.PreemptedBy)
		}
		if x, _ := got.Get(governor.RunqPreemptedByOthers); x != w.Values[governor.RunqPreemptedByOthers] {
			t.Errorf("%s: runq.preempted %g, want %g", c.Path, x, w.Values[governor.RunqPreemptedByOthers])
		}
		if len(c.By) > 0 {
			withBy++
		}
		// encoding/json reads what the writer wrote, and writes it
		// back the same.
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			By []Preemptor `json:"by"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v in %s", c.Path, err, b)
		}
		if !reflect.DeepEqual(back.By, c.By) {
			t.Errorf("%s: json round trip %+v, want %+v", c.Path, back.By, c.By)
		}
	}
	if withBy != 3 {
		t.Errorf("%d cgroups with preemptors, want the 3 services", withBy)
	}
	// Bad lists are rejected with a position.
	for _, bad := range []string{`{"id":1,"p":"a","by":[[1]]}`, `{"id":1,"p":"a","by":[[1,2,3]]}`, `{"id":1,"p":"a","by":[[-1,2]]}`, `{"id":1,"p":"a","by":[[1,null]]}`} {
		var c Cgroup
		if err := c.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// A blaming policy replays exactly: the shares come from recorded data.
func TestReplayBlameReproducesLive(t *testing.T) {
	dir := t.TempDir()
	live := recordRun(t, dir, blamePolicy(t), newBlameScenario(3), 90, Options{})
	var culprit, givenBack, idle bool
	for _, a := range live {
		culprit = culprit || a.Cgroup == "batch.slice/job-1.scope" && a.Kind == "write" && strings.Contains(a.Reason, "blame: batch.slice/job-1.scope: ")
		givenBack = givenBack || a.Cgroup == "batch.slice/job-2.scope" && strings.Contains(a.Reason, "is not a culprit")
		idle = idle || a.Cgroup == "batch.slice" && a.Kind == "write"
	}
	if !culprit || !givenBack || idle {
		t.Fatalf("live run: culprit squeezed %v, job-2 given back %v, batch.slice (share under 5%%) written %v:\n%s",
			culprit, givenBack, idle, strings.Join(actionLines(live), "\n"))
	}
	res, err := Replay(context.Background(), dir, ReplayOptions{Policy: blamePolicy(t)})
	if err != nil {
		t.Fatal(err)
	}
	want, got := actionLines(live), actionLines(res.Actions)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("replay differs from live\nlive:\n%s\nreplay:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

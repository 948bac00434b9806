package governor

import (
	"context"
	"maps"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStatusExplainAndActionsFromRunningLoop(t *testing.T) {
	var mu sync.Mutex
	var actions []Action
	h := newHarness(t, suppressPolicy(), func(c *Config) {
		c.OnAction = func(a Action) { mu.Lock(); actions = append(actions, a); mu.Unlock() }
	})
	h.loop.policy.Tick = 10 * time.Millisecond
	w := h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "batch.slice/job1")
	w.Set(CPUSomeAvg10, 50)
	for i := 0; i < 7; i++ { // squeeze once before Run takes over
		h.tick(time.Second)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.loop.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	st, err := h.loop.Status(qctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cgroups) != 2 || st.Cgroups[0].Path != "batch.slice/job1" || st.Cgroups[0].Class != "batch" {
		t.Fatalf("status cgroups: %+v", st.Cgroups)
	}
	ks := st.Cgroups[0].Knobs
	if len(ks) != 1 || ks[0].Knob != "cpu.weight" || ks[0].Original != "100" || ks[0].Owner != "squeeze" {
		t.Errorf("knob status: %+v", ks)
	}
	if !st.Cgroups[1].Protected || st.Cgroups[1].Denied == "" {
		t.Errorf("web should be protected: %+v", st.Cgroups[1])
	}
	if len(st.Controllers) != 1 || !st.Controllers[0].Active || !strings.Contains(st.Controllers[0].Because, "web:cpu.some.avg10=50.00%") {
		t.Errorf("controller status: %+v", st.Controllers)
	}

	lines, err := h.loop.Explain(qctx, "batch.slice/job1")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{`class "batch"`, "cpu.weight = 50 (original 100, set by squeeze)", `suppress "squeeze" targets it`, "trigger active", "next: cpu.weight: set to 25"} {
		if !strings.Contains(text, want) {
			t.Errorf("explain lacks %q:\n%s", want, text)
		}
	}
	lines, _ = h.loop.Explain(qctx, "system.slice/web.service")
	if text := strings.Join(lines, "\n"); !strings.Contains(text, "never acted on") || !strings.Contains(text, "reads its signals") {
		t.Errorf("explain of the protected cgroup:\n%s", text)
	}
	if _, err := h.loop.Explain(qctx, "nope"); err == nil {
		t.Errorf("explain of an unknown cgroup must fail")
	}
	// VisitStatus hands over the same cgroups, one at a time, reusing its
	// CgroupStatus and Signals map (the visitor copies what it keeps).
	vst, err := h.loop.VisitStatus(qctx, func(cs *CgroupStatus) {
		c := *cs
		c.Signals = maps.Clone(cs.Signals)
		st.Cgroups = append(st.Cgroups, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	visited := st.Cgroups[2:]
	sort.Slice(visited, func(i, j int) bool { return visited[i].Path < visited[j].Path })
	if !reflect.DeepEqual(visited, st.Cgroups[:2]) || vst.Cgroups != nil || len(vst.Controllers) != 1 {
		t.Errorf("VisitStatus: %+v (status without cgroups %+v); Status: %+v", visited, vst, st.Cgroups[:2])
	}
	// With only, just those signals (of the ones a cgroup has).
	only := []Signal{CPUSomeAvg10, RunqP99, MemorySomeAvg10}
	withSome := 0
	if _, err := h.loop.VisitStatus(qctx, func(cs *CgroupStatus) {
		var full map[string]float64
		for _, c := range st.Cgroups[:2] {
			if c.Path == cs.Path {
				full = c.Signals
			}
		}
		want := map[string]float64{}
		for _, sig := range only {
			if v, ok := full[sig.Name()]; ok {
				want[sig.Name()] = v
			}
		}
		if len(want) > 0 {
			withSome++
		}
		if !reflect.DeepEqual(cs.Signals, want) && !(len(cs.Signals) == 0 && len(want) == 0) {
			t.Errorf("VisitStatus with only %v: %s has %v, want %v", only, cs.Path, cs.Signals, want)
		}
	}, only...); err != nil {
		t.Fatal(err)
	}
	if withSome == 0 {
		t.Errorf("no cgroup has any of %v: the check above proves nothing", only)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(actions) == 0 || actions[0].Kind != "write" || actions[0].Knob != "cpu.weight" || actions[0].Old != "100" || actions[0].New != "50" || actions[0].Reason == "" {
		t.Errorf("actions: %+v", actions)
	}
}

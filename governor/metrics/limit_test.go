package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// cgs builds governed cgroups for the limit's tests: "path" alone is idle;
// "path@P" has P % cpu.some.avg10; "path+knob" holds a knob changed by
// squeeze; "path-hb" a handed-back knob only; "path!T" was last acted on T
// seconds after a fixed time.
func cgs(specs ...string) []governor.CgroupStatus {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []governor.CgroupStatus
	for i, spec := range specs {
		cs := governor.CgroupStatus{Class: "batch", Signals: map[string]float64{}}
		for _, sig := range []governor.Signal{governor.CPUSomeAvg10, governor.MemorySomeAvg10, governor.IOSomeAvg10} {
			cs.Signals[sig.Name()] = 0
		}
		path, rest, _ := strings.Cut(spec, " ")
		for _, f := range strings.Fields(rest) {
			switch {
			case f == "+knob":
				cs.Knobs = append(cs.Knobs, governor.KnobStatus{Knob: "cpu.weight", Value: "50", Original: "100", Owner: "squeeze", ID: governor.CPUWeight, Held: 50, Orig: 100})
			case f == "-hb":
				cs.Knobs = append(cs.Knobs, governor.KnobStatus{Knob: "memory.high", HandedBack: true, ID: governor.MemoryHigh})
			case f[0] == '@':
				var p float64
				fmt.Sscan(f[1:], &p)
				cs.Signals[governor.MemorySomeAvg10.Name()] = p
			case f[0] == '!':
				var s int
				fmt.Sscan(f[1:], &s)
				cs.Last = &governor.Action{Time: t0.Add(time.Duration(s) * time.Second), Controller: "reclaimer", Kind: "reclaim"}
			}
		}
		cs.Ref = governor.Ref{ID: governor.CgroupID(100 + i), Path: path}
		out = append(out, cs)
	}
	return out
}

func TestCgroupLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cgs   []governor.CgroupStatus
		limit int
		want  []string // exported, by path
	}{
		{"no limit", cgs("a", "b @5", "c"), 0, []string{"a", "b", "c"}},
		{"under the limit", cgs("a", "b", "c"), 3, []string{"a", "b", "c"}},
		{"highest pressure first", cgs("a @1", "b", "c @30", "d @2", "e"), 2, []string{"c", "d"}},
		{"idle ties go to the smaller path", cgs("d", "b", "c", "a"), 2, []string{"a", "b"}},
		{"changed knobs before pressure", cgs("a @90", "b +knob", "c @50", "d +knob"), 3, []string{"a", "b", "d"}},
		{"changed knobs before the last acted on", cgs("a !9", "b +knob", "c !5"), 2, []string{"a", "b"}},
		{"most recently acted on first", cgs("a !1 @80", "b !7", "c !3", "d @99"), 2, []string{"b", "c"}},
		{"acted on before pressure", cgs("a @99", "b !1", "c @98"), 2, []string{"a", "b"}},
		{"handed back alone counts for nothing", cgs("a -hb", "b @1", "c"), 1, []string{"b"}},
		{"more changed knobs than the limit: highest pressure", cgs("a +knob @1", "b +knob @3", "c +knob @2", "d @90"), 2, []string{"b", "c"}},
		{"limit one", cgs("a", "b @1", "c"), 1, []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The loop hands cgroups over in no particular order: forwards
			// and backwards must export the same.
			for _, order := range []string{"forwards", "backwards"} {
				in := slices.Clone(tc.cgs)
				if order == "backwards" {
					slices.Reverse(in)
				}
				sel := &selector{limit: tc.limit}
				for i := range in {
					sel.add(&in[i])
				}
				var got []string
				for _, r := range sel.kept() {
					got = append(got, r.ref.Path)
				}
				if !slices.Equal(got, tc.want) || sel.total != len(tc.cgs) {
					t.Errorf("%s: exported %v of %d, want %v of %d", order, got, sel.total, tc.want, len(tc.cgs))
				}
			}
		})
	}
}

// A scrape with the limit: only the chosen cgroups have series, the rest
// are counted, and the totals (governed, managed, handed back) cover every
// cgroup. Status and Visit (the loop's two ways) give the same scrape.
func TestScrapeCgroupLimit(t *testing.T) {
	all := cgs("idle1", "idle2", "busy @40", "squeezed +knob", "reclaimed !1", "handedback -hb", "warm @3")
	status := func(context.Context) (governor.Status, error) {
		return governor.Status{Cgroups: slices.Clone(all)}, nil
	}
	visit := func(_ context.Context, f func(*governor.CgroupStatus), _ ...governor.Signal) (governor.Status, error) {
		var cs governor.CgroupStatus // reused, as the loop does
		for i := len(all) - 1; i >= 0; i-- {
			cs = all[i]
			f(&cs)
		}
		return governor.Status{}, nil
	}
	act := govtest.NewActuator()
	scrape := func(src Source, limit int) string {
		m := New(src, time.Second)
		m.SetCgroupLimit(limit)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	for _, tc := range []struct {
		limit    int
		exported []string
	}{
		{0, []string{"busy", "handedback", "idle1", "idle2", "reclaimed", "squeezed", "warm"}},
		{3, []string{"busy", "reclaimed", "squeezed"}},
		{4, []string{"busy", "reclaimed", "squeezed", "warm"}},
		{5, []string{"busy", "handedback", "reclaimed", "squeezed", "warm"}},
	} {
		t.Run(fmt.Sprint("limit ", tc.limit), func(t *testing.T) {
			text := scrape(Source{Status: status, Via: act.Via}, tc.limit)
			if v := scrape(Source{Visit: visit, Via: act.Via}, tc.limit); stateSeries(v) != stateSeries(text) {
				t.Errorf("Visit and Status scrapes differ:\n%s\n---\n%s", stateSeries(v), stateSeries(text))
			}
			var got []string
			for _, l := range strings.Split(text, "\n") {
				if p, ok := strings.CutPrefix(l, `governor_cgroup_info{cgroup="`); ok {
					got = append(got, p[:strings.IndexByte(p, '"')])
				}
			}
			if !slices.Equal(got, tc.exported) {
				t.Errorf("cgroup_info for %v, want %v", got, tc.exported)
			}
			for _, want := range []string{
				"governor_cgroups_governed 7",
				fmt.Sprintf("governor_metrics_cgroups_omitted %d", len(all)-len(tc.exported)),
				`governor_knobs_managed{controller="squeeze"} 1`,
				"governor_knobs_handed_back 1",
				// The value the status holds (Value "50"), not a read of the
				// actuator (which, never written, would say its default 100).
				`governor_knob_value{cgroup="squeezed",class="batch",controller="squeeze",knob="cpu.weight"} 50`,
				`governor_knob_original_value{cgroup="squeezed",class="batch",controller="squeeze",knob="cpu.weight"} 100`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("scrape lacks %q", want)
				}
			}
			pressure := strings.Count(text, "governor_cgroup_pressure_avg10_ratio{")
			if pressure != 3*len(tc.exported) {
				t.Errorf("%d pressure series for %d cgroups", pressure, len(tc.exported))
			}
			if !strings.Contains(text, `governor_cgroup_pressure_avg10_ratio{cgroup="busy",class="batch",kind="some",resource="memory"} 0.4`) {
				t.Errorf("no pressure of the busy cgroup:\n%s", text)
			}
			promtoolCheck(t, []byte(text))
		})
	}
}

// stateSeries is the exposition without the process's and Go runtime's own
// series, which move between two scrapes.
func stateSeries(text string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "process_") || strings.Contains(l, "go_") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// BenchmarkScrape10k scrapes a running loop governing 10,000 idle cgroups
// (all PSI and usage signals present) with the default cgroup limit, the
// loop handing the cgroups over through VisitStatus as in the daemon:
// B/op is what one scrape allocates (BENCHMARKS.md).
func BenchmarkScrape10k(b *testing.B) { benchScrape(b, 10000) }

// BenchmarkScrape100 is BenchmarkScrape10k at 100 cgroups, every one of
// them exported: what a scrape costs a small host.
func BenchmarkScrape100(b *testing.B) { benchScrape(b, 100) }

func benchScrape(b *testing.B, n int) {
	src := govtest.IdleSource(n, func(i int) string {
		kind := "svc"
		if i%2 == 1 {
			kind = "batch"
		}
		return fmt.Sprintf("bench/%s.slice/g%03d.slice/%s-%05d", kind, i/200, kind, i)
	})
	act := govtest.NewActuator()
	loop, err := governor.New(governor.Config{
		Policy: &governor.Policy{Tick: time.Second, Classes: []governor.Class{
			{Name: "svc", Match: []string{"bench/svc.slice/**"}, Protected: true},
			{Name: "batch", Match: []string{"bench/batch.slice/*/*"}},
		}},
		Sources: []governor.Source{src}, Actuator: act, NumCPU: 2,
		Caps: governor.Capabilities{Controllers: map[string]bool{"cpu": true, "memory": true, "io": true}},
	})
	if err != nil {
		b.Fatal(err)
	}
	m := New(Source{Status: loop.Status, Visit: loop.VisitStatus, Admission: loop.Admission, Via: act.Via}, 10*time.Second)
	govtest.Run(b, loop, n)
	h := m.Handler()
	var size int
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip") // as Prometheus asks
		h.ServeHTTP(rec, req)
		size = rec.Body.Len()
		io.Copy(io.Discard, rec.Body)
	}
	// The process's CPU time (every thread: the handler, the collectors'
	// goroutines, the loop, GC) per scrape; ns/op is wall time.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "gzip-bytes/scrape")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

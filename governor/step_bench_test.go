package governor

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Benchmarks of the loop's hot path, without I/O: a whole Step over 10,000
// cgroups served by a source that reuses its samples (as cgroup.Source
// does), and condition evaluation. allocs/op of BenchmarkStep10k divided by
// 10,000 is the per-cgroup, per-tick allocation figure of BENCHMARKS.md.

// reusingSource serves a fixed set of cgroups from samples it owns.
type reusingSource struct {
	host Sample
	cgs  []Sample
	tick int
}

func (r *reusingSource) Name() string { return "bench" }

func (r *reusingSource) Sample(_ context.Context, snap *Snapshot) error {
	r.tick++
	snap.Host = &r.host
	for i := range r.cgs {
		s := &r.cgs[i]
		// Some movement so conditions are really evaluated.
		s.Set(CPUSomeAvg10, float64((i+r.tick)%7))
		snap.Cgroups = append(snap.Cgroups, s)
	}
	return nil
}

// benchPolicy mirrors cmd/governor-bench's: a protected service class read
// by a suppress condition, a batch class suppressed and reclaimed.
func benchPolicy() *Policy {
	return &Policy{
		Tick:        time.Second,
		ReportEvery: time.Minute,
		Classes: []Class{
			{Name: "svc", Match: []string{"bench/svc.slice/**"}, Protected: true},
			{Name: "batch", Match: []string{"bench/batch.slice/*/*"}},
			{Name: "other", Match: []string{"**"}, Protected: true},
		},
		Suppress: []SuppressController{{
			Name:   "squeeze",
			Target: "batch",
			Trigger: Trigger{
				When:    []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeAvg10, Op: Above, Value: 10, For: 5 * time.Second}},
				Recover: []Condition{{Scope: ScopeClass, Class: "svc", Signal: CPUSomeAvg10, Op: Below, Value: 2, For: 30 * time.Second}},
			},
			Knobs: []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 1, Cooldown: 5 * time.Second}}},
		}},
		Reclaim: []ReclaimController{{
			Name: "proactive", Target: "batch", Signal: MemorySomeStall, Goal: 0.1,
			Interval: 6 * time.Second, Step: Step{Percent: 0.5}, MaxStep: 32 << 20, MinSize: 64 << 20,
		}},
	}
}

func newBenchSource(n int) *reusingSource {
	src := &reusingSource{cgs: make([]Sample, 0, n+3)}
	add := func(id int, path string) {
		s := Sample{Ref: Ref{ID: CgroupID(id), Path: path}, Populated: true}
		s.Set(MemoryCurrent, 16<<20) // below min_size: reclaim has nothing to do
		s.Set(MemorySomeStall, 0)
		src.cgs = append(src.cgs, s)
	}
	add(1, "")
	add(2, "bench")
	for i := 0; i < n; i++ {
		kind := "svc"
		if i%2 == 1 {
			kind = "batch"
		}
		add(100+i, fmt.Sprintf("bench/%s.slice/g%03d.slice/%s-%05d", kind, i/200, kind, i))
	}
	return src
}

func BenchmarkStep10k(b *testing.B) {
	const n = 10000
	src := newBenchSource(n)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l, err := New(Config{Policy: benchPolicy(), Sources: []Source{src}, Actuator: newFakeActuator(), Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ { // first sight: classification, state
		clk.Advance(time.Second)
		if err := l.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clk.Advance(time.Second)
		if err := l.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/cgroup")
}

// BenchmarkTriggerUpdate is one trigger evaluation over a class of 5,000
// cgroups (the suppress condition above).
func BenchmarkTriggerUpdate(b *testing.B) {
	src := newBenchSource(10000)
	p := benchPolicy()
	v := &View{Now: time.Unix(1_700_000_000, 0), Snap: &Snapshot{}, Members: map[string][]*Sample{}}
	for i := range src.cgs {
		s := &src.cgs[i]
		if len(s.Path) > 10 && s.Path[:10] == "bench/svc." {
			v.Members["svc"] = append(v.Members["svc"], s)
		}
	}
	tr := newTriggers(&p.Suppress[0].Trigger)
	b.ReportAllocs()
	for b.Loop() {
		v.Now = v.Now.Add(time.Second)
		tr.global.update(v, tr.t, nil)
	}
}

// BenchmarkMatchPath classifies one path against the bench policy.
func BenchmarkClassify(b *testing.B) {
	l, err := New(Config{Policy: benchPolicy(), Sources: []Source{&reusingSource{}}, Actuator: newFakeActuator()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if l.classify("bench/batch.slice/g007.slice/batch-01401") != 1 {
			b.Fatal("misclassified")
		}
	}
}

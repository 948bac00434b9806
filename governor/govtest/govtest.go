// Package govtest holds what tests and benchmarks of the packages around
// the loop share: a source of fixed samples and a running loop over many
// idle cgroups.
package govtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// Source hands the loop the same samples every tick: a copy of Host as
// the host's, and of each of Cgs.
type Source struct {
	mu   sync.Mutex
	Host governor.Sample
	Cgs  []governor.Sample
}

func (s *Source) Name() string { return "govtest" }

func (s *Source) Sample(_ context.Context, snap *governor.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.Host
	snap.Host = &h
	for i := range s.Cgs {
		c := s.Cgs[i]
		snap.Cgroups = append(snap.Cgroups, &c)
	}
	return nil
}

// IdleSource is a Source of n idle cgroups named by path, each with every
// PSI and usage signal at zero (the BPF ones absent), as a quiet host's.
func IdleSource(n int, path func(i int) string) *Source {
	src := &Source{}
	for i := range n {
		s := governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(100 + i), Path: path(i)}}
		for sig := governor.Signal(0); sig < governor.RunqP50; sig++ {
			s.Set(sig, 0)
		}
		src.Cgs = append(src.Cgs, s)
	}
	return src
}

// Run starts loop until the test ends and waits until it governs n
// cgroups; the context it returns ends with the test.
func Run(tb testing.TB, loop *governor.Loop, n int) context.Context {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(time.Minute)
	for st, _ := loop.Status(ctx); len(st.Cgroups) < n; st, _ = loop.Status(ctx) {
		if time.Now().After(deadline) {
			tb.Fatalf("the loop governs %d cgroups after a minute, want %d", len(st.Cgroups), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ctx
}

// Actuator keeps knob values in memory, as a cgroupfs would: a knob never
// written reads 100 (cpu.max: "max 100000"). Reclaim, freeze and kill do
// nothing. Safe for concurrent use.
type Actuator struct {
	mu   sync.Mutex
	vals map[string]int64
}

// NewActuator returns an Actuator with every knob at its default.
func NewActuator() *Actuator { return &Actuator{vals: map[string]int64{}} }

func key(cg governor.Ref, k governor.Knob) string { return cg.Path + k.String() }

// Read returns the knob's value, with cpu.max's raw content as the kernel
// writes it (quota and period).
func (a *Actuator) Read(_ context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.vals[key(cg, k)]
	if !ok {
		v = 100
		if k == governor.CPUMax {
			v = governor.Unlimited
		}
	}
	raw := fmt.Sprint(v)
	if k == governor.CPUMax {
		raw = "max 100000"
		if v != governor.Unlimited {
			raw = fmt.Sprintf("%d 100000", v/10)
		}
	}
	return governor.Setting{Value: v, Raw: raw}, nil
}

func (a *Actuator) Write(_ context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.vals[key(cg, k)] = v
	return nil
}

func (a *Actuator) Restore(ctx context.Context, cg governor.Ref, k governor.Knob, s governor.Setting) error {
	return a.Write(ctx, cg, k, s.Value)
}
func (a *Actuator) Reclaim(context.Context, governor.Ref, int64) error { return nil }
func (a *Actuator) Freeze(context.Context, governor.Ref, bool) error   { return nil }
func (a *Actuator) Kill(context.Context, governor.Ref) error           { return nil }

// Via says every cgroup is written through cgroupfs.
func (a *Actuator) Via(governor.Ref) string { return "cgroupfs" }

// Squeeze is the policy the tests around the loop share: web
// (system.slice/web.service) is protected, batch (batch.slice/**) has its
// knobs moved down while web's cpu.some.avg10 is above 10%: cpu.weight by
// 50% (floor 1, one step an hour) unless knobs says otherwise.
func Squeeze(tick time.Duration, knobs ...governor.SuppressKnob) *governor.Policy {
	if len(knobs) == 0 {
		knobs = []governor.SuppressKnob{{Knob: governor.CPUWeight, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1, Cooldown: time.Hour}}}
	}
	return &governor.Policy{
		Tick: tick,
		Classes: []governor.Class{
			{Name: "web", Match: []string{"system.slice/web.service"}, Protected: true},
			{Name: "batch", Match: []string{"batch.slice/**"}},
		},
		Suppress: []governor.SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: governor.Trigger{When: []governor.Condition{{Scope: governor.ScopeClass, Class: "web", Signal: governor.CPUSomeAvg10, Op: governor.Above, Value: 10}}},
			Knobs:   knobs,
		}},
	}
}

package record

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/policies"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// scenario is a small node: services under system.slice and user.slice,
// batch.slice with jobs. Its CPU pressure rises for a while (the default
// policy's suppress controller squeezes batch.slice), batch.slice holds
// 1 GiB (its reclaim controller hands memory back), and at one tick
// someone else sets batch.slice's cpu.weight (a hand-back).
type scenario struct {
	// blame: the services report who preempted them (the BPF sensor's
	// PreemptedBy and runq.preempted), and batch.slice has a second job.
	blame bool
	tick  int
	cgs   []*governor.Sample
	host  governor.Sample
	act   *memKnobs
}

func newScenario(nServices int) *scenario {
	s := &scenario{act: &memKnobs{vals: map[memKey]int64{}}}
	add := func(id int, path string) {
		s.cgs = append(s.cgs, &governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(id), Path: path}, Populated: true})
	}
	add(1, "")
	add(2, "system.slice")
	add(3, "user.slice")
	add(4, "batch.slice")
	add(5, "batch.slice/job-1.scope")
	for i := 0; i < nServices; i++ {
		add(100+i, fmt.Sprintf("system.slice/svc-%03d.service", i))
	}
	return s
}

// newBlameScenario is newScenario with preemption data: job-1 preempts
// the services throughout, job-2 until tick 25, batch.slice itself a
// little, system.slice the rest.
func newBlameScenario(nServices int) *scenario {
	s := newScenario(nServices)
	s.blame = true
	s.cgs = append(s.cgs, &governor.Sample{Ref: governor.Ref{ID: 6, Path: "batch.slice/job-2.scope"}, Populated: true})
	return s
}

func (s *scenario) preemptions(c *governor.Sample, i int) {
	c.PreemptedBy = nil
	if !strings.HasPrefix(c.Path, "system.slice/svc-") {
		return
	}
	job1 := 60 + float64(s.tick%5)/7 + float64(i)/100
	job2 := 0.0
	if s.tick < 25 {
		job2 = 35 + float64(s.tick%3)/3
	}
	c.PreemptedBy = []governor.Preemptor{{Cgroup: 5, PerSecond: job1}}
	if job2 > 0 {
		c.PreemptedBy = append(c.PreemptedBy, governor.Preemptor{Cgroup: 6, PerSecond: job2})
	}
	c.PreemptedBy = append(c.PreemptedBy, governor.Preemptor{Cgroup: 2, PerSecond: 5.5}, governor.Preemptor{Cgroup: 4, PerSecond: 2.25})
	c.Set(governor.RunqPreemptedByOthers, job1+job2+5.5+2.25+1)
}

func (s *scenario) Name() string { return "scenario" }

func (s *scenario) Sample(_ context.Context, snap *governor.Snapshot) error {
	s.tick++
	// cpu pressure of the services: 30 % from tick 10 to 40, else 1 %.
	p := 1.0
	if s.tick >= 10 && s.tick < 40 {
		p = 30
	}
	// An outside change of batch.slice's weight (hand-back).
	if s.tick == 70 {
		s.act.vals[memKey{4, "cpu.weight"}] = 77
	}
	s.host.Set(governor.CPUSomeAvg10, p/2)
	snap.Host = &s.host
	for i, c := range s.cgs {
		c.Set(governor.CPUSomeAvg10, p+float64(i%3)/100)
		c.Set(governor.CPUSomeAvg60, p/3)
		c.Set(governor.CPUSomeStall, p/100+float64((s.tick*7+i)%11)/1000)
		c.Set(governor.MemorySomeStall, float64((s.tick+i)%5)/10000)
		c.Set(governor.MemorySomeAvg10, 0.01)
		c.Set(governor.MemoryCurrent, float64(1<<30-int64(s.tick)*(1<<20)))
		c.Set(governor.MemoryFile, float64(600<<20))
		c.Set(governor.MemoryAnon, float64(400<<20))
		c.Set(governor.CPUUsage, 0.25+float64(i%4)/10)
		c.Set(governor.RunqP99, 0.001*float64(1+(s.tick+i)%9))
		c.Set(governor.IOSomeAvg10, 0)
		if s.blame {
			s.preemptions(c, i)
		}
		cp := *c
		snap.Cgroups = append(snap.Cgroups, &cp)
	}
	return nil
}

// memKnobs is a kernel's knobs in memory, and its memory accounting: each
// cgroup holds 1 GiB of anonymous memory until reclaim takes some (the
// kernel frees what was asked, to swap).
type memKnobs struct {
	vals        map[memKey]int64
	writes      []string
	unsupported map[memKey]bool // knobs this host lacks
	freed       map[uint64]int64
}

func (m *memKnobs) ReadMemory(_ context.Context, cg governor.Ref) (governor.MemoryState, error) {
	cur := int64(1<<30) - m.freed[uint64(cg.ID)]
	return governor.MemoryState{Current: cur, Anon: cur, Pgscan: uint64(m.freed[uint64(cg.ID)] / 4096),
		Pgsteal: uint64(m.freed[uint64(cg.ID)] / 4096), SwapRoom: governor.Unlimited, SwapTotal: 4 << 30,
		SwapFree: 4<<30 - m.freed[uint64(cg.ID)]}, nil
}

func knobDefault(k string) int64 {
	switch k {
	case "cpu.weight", "io.weight":
		return 100
	case "memory.low", "memory.min", "cpu.idle", "cgroup.freeze":
		return 0
	}
	return governor.Unlimited
}

func (m *memKnobs) Read(_ context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error) {
	if m.unsupported[memKey{uint64(cg.ID), k.String()}] {
		return governor.Setting{}, fmt.Errorf("%s/%s: %w", cg.Path, k, governor.ErrUnsupported)
	}
	v, ok := m.vals[memKey{uint64(cg.ID), k.String()}]
	if !ok {
		v = knobDefault(k.String())
	}
	return governor.Setting{Value: v, Raw: rawOf(v)}, nil
}

func (m *memKnobs) Write(_ context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	m.vals[memKey{uint64(cg.ID), k.String()}] = v
	m.writes = append(m.writes, fmt.Sprintf("%s %s=%s", cg.Path, k, rawOf(v)))
	return nil
}

func (m *memKnobs) Restore(ctx context.Context, cg governor.Ref, k governor.Knob, s governor.Setting) error {
	return m.Write(ctx, cg, k, s.Value)
}

func (m *memKnobs) Reclaim(_ context.Context, cg governor.Ref, n int64) error {
	if m.freed == nil {
		m.freed = map[uint64]int64{}
	}
	m.freed[uint64(cg.ID)] += n
	return nil
}
func (m *memKnobs) Freeze(context.Context, governor.Ref, bool) error { return nil }
func (m *memKnobs) Kill(context.Context, governor.Ref) error         { return nil }

func defaultPolicy(t testing.TB, edit func(string) string) *governor.Policy {
	t.Helper()
	src := string(policies.DefaultSource())
	if edit != nil {
		src = edit(src)
	}
	r := policies.LoadSource("default.hcl", []byte(src))
	if r.Diags.HasErrors() {
		var b strings.Builder
		_ = r.WriteDiagnostics(&b, false)
		t.Fatal(b.String())
	}
	return r.Policy
}

var testCaps = governor.Capabilities{Root: "/fake", Controllers: map[string]bool{"memory": true, "cpu": true, "io": true}, Reclaim: true, Freeze: true, Kill: true}

// recordRun runs pol over the scenario for ticks ticks with a recorder in
// dir (rec nil: no recorder) and returns the live actions.
func recordRun(t testing.TB, dir string, pol *governor.Policy, sc *scenario, ticks int, opt Options) []Action {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var live []Action
	cfg := governor.Config{
		Policy: pol, Sources: []governor.Source{sc}, Actuator: sc.act, Clock: clk, Caps: testCaps, NumCPU: 4,
		OnAction: func(a governor.Action) { live = append(live, FromAction(a)) },
	}
	var rec *Recorder
	if dir != "" {
		opt.Dir = dir
		if opt.Size == 0 {
			opt.Size = DefaultSize
		}
		opt.Meta = NewMeta(cfg, "test")
		var err error
		rec, err = Open(opt)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Recorder = rec
		cfg.Actuator = rec.Wrap(sc.act)
	}
	loop, err := governor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ticks; i++ {
		clk.t = clk.t.Add(time.Second)
		if err := loop.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if rec != nil {
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return live
}

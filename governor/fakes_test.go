package governor

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// fakeSource serves whatever cgroups and signal values the test sets.
type fakeSource struct {
	host   Sample
	cgs    []*Sample
	failOn int
}

func (f *fakeSource) Name() string { return "fake" }

func (f *fakeSource) Sample(_ context.Context, snap *Snapshot) error {
	h := f.host
	snap.Host = &h
	for _, c := range f.cgs {
		cp := *c
		snap.Cgroups = append(snap.Cgroups, &cp)
	}
	return nil
}

func (f *fakeSource) add(id CgroupID, path string) *Sample {
	s := &Sample{Ref: Ref{ID: id, Path: path}, Populated: true}
	f.cgs = append(f.cgs, s)
	return s
}

func (f *fakeSource) remove(id CgroupID) {
	out := f.cgs[:0]
	for _, c := range f.cgs {
		if c.ID != id {
			out = append(out, c)
		}
	}
	f.cgs = out
}

// fakeActuator keeps knob values in memory, like a cgroupfs would.
type fakeActuator struct {
	mu      sync.Mutex
	vals    map[knobKey]int64
	writes  []string
	frozen  map[CgroupID]bool
	killed  map[CgroupID]bool
	reclaim map[CgroupID]int64
	fail    map[knobKey]error
	gone    map[CgroupID]bool
}

func newFakeActuator() *fakeActuator {
	return &fakeActuator{
		vals: map[knobKey]int64{}, frozen: map[CgroupID]bool{}, killed: map[CgroupID]bool{},
		reclaim: map[CgroupID]int64{}, fail: map[knobKey]error{}, gone: map[CgroupID]bool{},
	}
}

func defaultKnob(k Knob) int64 {
	switch k {
	case CPUWeight, IOWeight:
		return 100
	case MemoryLow, MemoryMin, CPUIdle:
		return 0
	}
	return Unlimited
}

func raw(k Knob, v int64) string {
	if v == Unlimited {
		return "max"
	}
	return fmt.Sprint(v)
}

func (f *fakeActuator) get(id CgroupID, k Knob) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.vals[knobKey{id, k}]; ok {
		return v
	}
	return defaultKnob(k)
}

func (f *fakeActuator) put(id CgroupID, k Knob, v int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vals[knobKey{id, k}] = v
}

func (f *fakeActuator) Read(_ context.Context, cg Ref, k Knob) (Setting, error) {
	if f.gone[cg.ID] {
		return Setting{}, fmt.Errorf("read %s/%s: %w", cg.Path, k, ErrGone)
	}
	v := f.get(cg.ID, k)
	return Setting{Value: v, Raw: raw(k, v)}, nil
}

func (f *fakeActuator) Write(_ context.Context, cg Ref, k Knob, v int64) error {
	if err := f.fail[knobKey{cg.ID, k}]; err != nil {
		return err
	}
	if f.gone[cg.ID] {
		return fmt.Errorf("write %s/%s: %w", cg.Path, k, ErrGone)
	}
	f.put(cg.ID, k, v)
	f.writes = append(f.writes, fmt.Sprintf("%s %s=%s", cg.Path, k, raw(k, v)))
	return nil
}

func (f *fakeActuator) Restore(ctx context.Context, cg Ref, k Knob, s Setting) error {
	if f.gone[cg.ID] {
		return fmt.Errorf("restore %s/%s: %w", cg.Path, k, ErrGone)
	}
	f.put(cg.ID, k, s.Value)
	f.writes = append(f.writes, fmt.Sprintf("%s %s=%s (restore)", cg.Path, k, s.Raw))
	return nil
}

func (f *fakeActuator) Reclaim(_ context.Context, cg Ref, bytes int64) error {
	f.reclaim[cg.ID] += bytes
	f.writes = append(f.writes, fmt.Sprintf("%s memory.reclaim=%d", cg.Path, bytes))
	return nil
}

func (f *fakeActuator) Freeze(_ context.Context, cg Ref, on bool) error {
	f.frozen[cg.ID] = on
	f.writes = append(f.writes, fmt.Sprintf("%s cgroup.freeze=%v", cg.Path, on))
	return nil
}

// FreezeState reads back cgroup.freeze (governor.FreezeReader).
func (f *fakeActuator) FreezeState(_ context.Context, cg Ref) (bool, error) {
	if f.gone[cg.ID] {
		return false, fmt.Errorf("read %s/cgroup.freeze: %w", cg.Path, ErrGone)
	}
	return f.frozen[cg.ID], nil
}

func (f *fakeActuator) Kill(_ context.Context, cg Ref) error {
	f.killed[cg.ID] = true
	f.writes = append(f.writes, cg.Path+" cgroup.kill")
	return nil
}

// harness ties a loop to fakes.
type harness struct {
	t     *testing.T
	clock *fakeClock
	src   *fakeSource
	act   *fakeActuator
	loop  *Loop
	logs  *strings.Builder
	cfg   Config
	// actions are those the loop handed to Config.OnAction (the audit
	// trail), unless a test sets its own hook.
	actions []Action
}

func newHarness(t *testing.T, p *Policy, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		clock: &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		src:   &fakeSource{},
		act:   newFakeActuator(),
		logs:  &strings.Builder{},
	}
	h.cfg = Config{
		Policy:    p,
		Sources:   []Source{h.src},
		Actuator:  h.act,
		Clock:     h.clock,
		Logger:    hclog.New(&hclog.LoggerOptions{Output: syncWriter{b: h.logs}, Level: hclog.Debug}),
		StatePath: filepath.Join(t.TempDir(), "state.json"),
		Caps:      Capabilities{Root: "/fake", Controllers: map[string]bool{"memory": true, "cpu": true, "io": true}, Reclaim: true, Freeze: true, Kill: true},
		NumCPU:    4,
		// As the daemon does: each action is one audit line in the log.
		OnAction: func(a Action) {
			h.actions = append(h.actions, a)
			LogAction(h.cfg.Logger.Named("audit"), a)
		},
	}
	for _, m := range mod {
		m(&h.cfg)
	}
	l, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.loop = l
	return h
}

type syncWriter struct{ b *strings.Builder }

var logMu sync.Mutex

func (w syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.b.Write(p)
}

// tick advances the clock by d and runs one Step.
func (h *harness) tick(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	if err := h.loop.Step(context.Background()); err != nil {
		h.t.Fatalf("step: %v", err)
	}
}

func (h *harness) sortedWrites() []string {
	w := append([]string(nil), h.act.writes...)
	sort.Strings(w)
	return w
}

// action returns the first action of kind on cgroup path, or nil.
func (h *harness) action(kind, path string) *Action {
	for i := range h.actions {
		if a := &h.actions[i]; a.Kind == kind && a.Cgroup.Path == path {
			return a
		}
	}
	return nil
}

func (h *harness) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return h.logs.String()
}

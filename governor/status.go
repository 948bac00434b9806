package governor

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Action is one thing the governor did, or in dry-run would have done. The
// loop hands every action to Config.OnAction (metrics, audit trail).
type Action struct {
	Time       time.Time
	Controller string
	Cgroup     Ref
	Kind       string // "write", "restore", "reclaim", "freeze", "thaw", "kill", "hand-back"
	Knob       string
	Old, New   string
	Reason     string
	DryRun     bool
	Err        error
	// Repeat marks a failure that repeats the previous failure of the same
	// knob (no write of it has worked since): the audit line logs it at
	// debug, so a stuck knob is one error line, not one a tick.
	Repeat bool
	// Reclaim, for Kind "reclaim", is what the write asked for and what it
	// measurably freed.
	Reclaim *ReclaimResult
}

// emit records an action for status and passes it to the hook.
func (l *Loop) emit(a Action) {
	a.Time = l.clock.Now()
	a.DryRun = l.cfg.DryRun
	// The thaw that follows a kill (the kill path thaws the emptied
	// cgroup) is clean-up: the cgroup's last action stays the kill.
	if cg := l.cgs[a.Cgroup.ID]; cg != nil && !(a.Kind == "thaw" && a.Err == nil && cg.last != nil && cg.last.Kind == "kill" && cg.last.Err == nil) {
		cp := a
		cg.last = &cp
	}
	if l.cfg.OnAction != nil {
		l.cfg.OnAction(a)
	}
}

// Status is a point-in-time view of the loop for the control socket and
// metrics.
type Status struct {
	Time        time.Time
	DryRun      bool
	LastStep    StepResult
	Host        map[string]float64
	Cgroups     []CgroupStatus
	Controllers []ControllerStatus
}

// CgroupStatus describes one governed cgroup (one that belongs to a class).
type CgroupStatus struct {
	Ref
	Class     string
	Protected bool
	Denied    string // why the governor never acts on it ("" if it may)
	Signals   map[string]float64
	Knobs     []KnobStatus
	Last      *Action
	// Stalled: the pressure files' cumulative totals (for the metrics'
	// counters; not part of the JSON status).
	Stalled PSITotals `json:"-"`
}

// KnobStatus is a knob the governor manages or has handed back.
type KnobStatus struct {
	Knob       string    `json:"knob"`
	Value      string    `json:"value"`
	Original   string    `json:"original"`
	Owner      string    `json:"owner"`
	HandedBack bool      `json:"handed_back"`
	Since      time.Time `json:"since"`
	// The same as values, for programs (metrics): the knob (NumKnobs for
	// cgroup.freeze), the value the loop holds in force (verified against
	// the kernel every tick) and the original, in the knob's units
	// (Unlimited for "max"). Zero for a handed-back knob.
	ID   Knob  `json:"-"`
	Held int64 `json:"-"`
	Orig int64 `json:"-"`
}

// ControllerStatus describes one controller of the policy.
type ControllerStatus struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Target   string `json:"target"`
	Disabled string `json:"disabled,omitempty"` // why it cannot act on this host
	Active   bool   `json:"active"`             // trigger active (global triggers only)
	Because  string `json:"because,omitempty"`  // its conditions and their current values
}

// Do runs f on the loop's goroutine between two Steps, so f may read the
// loop's state. It fails if the loop is not running (Run) when ctx ends.
func (l *Loop) Do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case l.doCh <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns the loop's current status (see Do).
func (l *Loop) Status(ctx context.Context) (Status, error) {
	var st Status
	err := l.Do(ctx, func() { st = l.status() })
	return st, err
}

// Explain describes, for one cgroup path, its class, the controllers that
// target it, their conditions' current values and what each would do next.
func (l *Loop) Explain(ctx context.Context, path string) ([]string, error) {
	var out []string
	var err error
	if e := l.Do(ctx, func() { out, err = l.explain(path) }); e != nil {
		return nil, e
	}
	return out, err
}

// ErrNoCgroup: Explain was asked about a cgroup the loop does not know.
var ErrNoCgroup = errors.New("no such cgroup")

// VisitStatus is Status without its Cgroups list: each governed cgroup is
// passed to visit instead, one at a time and in no particular order, on the
// loop's goroutine (see Do). The *CgroupStatus and its Signals map are
// reused from one call to the next — copy what is kept; its Knobs and Last
// may be kept. Metrics use it so that a scrape does not build a status of
// every cgroup (at 10,000 cgroups, Status allocates about 20 MB, most of it
// the per-cgroup Signals maps).
//
// With only, a cgroup's Signals holds only those signals (when it has them):
// at 100 cgroups, filling all of them was half of a metrics scrape.
func (l *Loop) VisitStatus(ctx context.Context, visit func(*CgroupStatus), only ...Signal) (Status, error) {
	var st Status
	err := l.Do(ctx, func() {
		st = l.statusHead()
		cs := CgroupStatus{Signals: make(map[string]float64, NumSignals)}
		for _, cg := range l.cgs {
			if cg.class < 0 {
				continue
			}
			l.cgroupStatus(&cs, cg, only)
			visit(&cs)
		}
	})
	return st, err
}

func signalMap(s *Sample) map[string]float64 {
	m := make(map[string]float64)
	fillSignals(m, s)
	return m
}

// fillSignals replaces m's content with the signals s has (of only, when
// it is not empty).
func fillSignals(m map[string]float64, s *Sample, only ...Signal) {
	clear(m)
	if s == nil {
		return
	}
	for _, sig := range only {
		if v, ok := s.Get(sig); ok {
			m[sig.Name()] = v
		}
	}
	if len(only) > 0 {
		return
	}
	for sig := Signal(0); sig < NumSignals; sig++ {
		if v, ok := s.Get(sig); ok {
			m[sig.Name()] = v
		}
	}
}

// cgroupStatus fills cs (keeping its Signals map) for cg, a governed cgroup,
// with every signal or only those given.
func (l *Loop) cgroupStatus(cs *CgroupStatus, cg *cgState, only []Signal) {
	cl := &l.policy.Classes[cg.class]
	m := cs.Signals
	if m == nil {
		m = make(map[string]float64)
	}
	fillSignals(m, cg.sample, only...)
	*cs = CgroupStatus{Ref: cg.ref, Class: cl.Name, Protected: cl.Protected, Denied: l.denied(cg), Signals: m, Last: cg.last, Knobs: l.knobStatus(cg)}
	if cg.sample != nil {
		cs.Stalled = cg.sample.Stalled
	}
}

func (l *Loop) status() Status {
	st := l.statusHead()
	for _, cg := range l.cgs {
		if cg.class < 0 {
			continue
		}
		var cs CgroupStatus
		l.cgroupStatus(&cs, cg, nil)
		st.Cgroups = append(st.Cgroups, cs)
	}
	sort.Slice(st.Cgroups, func(i, j int) bool { return st.Cgroups[i].Path < st.Cgroups[j].Path })
	return st
}

// statusHead is the status without its cgroups.
func (l *Loop) statusHead() Status {
	st := Status{Time: l.snap.Time, DryRun: l.cfg.DryRun, LastStep: l.result, Host: signalMap(l.snap.Host)}
	for _, c := range l.ctrls {
		cs := ControllerStatus{Name: c.name(), Kind: c.kind(), Target: c.target(), Disabled: l.disabled[c.name()]}
		if tr := c.trigger(); tr != nil && !tr.perCG {
			switch {
			case cs.Disabled != "":
				cs.Because = notEvaluated(cs.Disabled)
			case tr.global.active:
				cs.Active = true
				cs.Because = tr.global.describeActive(tr.t)
				if b, ok := c.(interface{ blameSummary(*Snapshot) string }); ok {
					if why := b.blameSummary(&l.snap); why != "" {
						cs.Because += "; blame: " + why
					}
				}
			default:
				cs.Because = tr.global.describe(tr.t, false)
			}
		}
		st.Controllers = append(st.Controllers, cs)
	}
	return st
}

func (l *Loop) knobStatus(cg *cgState) []KnobStatus {
	var out []KnobStatus
	for k := Knob(0); k < NumKnobs; k++ {
		if m := l.managed[knobKey{cg.ref.ID, k}]; m != nil {
			out = append(out, KnobStatus{Knob: k.String(), Value: k.FormatValue(m.written), Original: m.orig.Raw, Owner: m.owner, Since: m.changed,
				ID: k, Held: m.written, Orig: m.orig.Value})
		} else if cg.handedBack[k] {
			out = append(out, KnobStatus{Knob: k.String(), HandedBack: true, ID: k})
		}
	}
	if f := l.frozen[cg.ref.ID]; f != nil {
		out = append(out, KnobStatus{Knob: freezeKnob, Value: "1", Original: "0", Owner: f.owner, Since: f.since, ID: noKnob, Held: 1})
	}
	return out
}

func (l *Loop) explain(path string) ([]string, error) {
	var cg *cgState
	for _, c := range l.cgs {
		if c.ref.Path == path {
			cg = c
			break
		}
	}
	if cg == nil {
		return nil, fmt.Errorf("%w: %q is not in the cgroup2 hierarchy the governor watches", ErrNoCgroup, path)
	}
	out := []string{fmt.Sprintf("cgroup %s (id %d)", cg.ref.String(), cg.ref.ID)}
	if cg.class < 0 {
		return append(out, "no class matches it: the governor observes it and never acts on it"), nil
	}
	cl := &l.policy.Classes[cg.class]
	out = append(out, fmt.Sprintf("class %q (%s)", cl.Name, cl.Origin))
	if why := l.denied(cg); why != "" {
		out = append(out, "never acted on: "+why)
	}
	for _, ks := range l.knobStatus(cg) {
		if ks.HandedBack {
			out = append(out, fmt.Sprintf("%s: handed back after someone else wrote it; left alone", ks.Knob))
			continue
		}
		out = append(out, fmt.Sprintf("%s = %s (original %s, set by %s)", ks.Knob, ks.Value, ks.Original, ks.Owner))
	}
	n := 0
	for _, c := range l.ctrls {
		if c.target() != cl.Name && !c.reads(cl.Name) {
			continue
		}
		n++
		role := "targets it"
		if c.target() != cl.Name {
			role = "reads its signals"
		}
		line := fmt.Sprintf("%s %q %s", c.kind(), c.name(), role)
		why := l.disabled[c.name()]
		if why != "" {
			line += "; impossible here: " + why
		}
		out = append(out, line)
		if why != "" {
			// Its conditions are not evaluated: their values would be
			// zeros from no reading at all.
			out = append(out, "  "+notEvaluated(why))
			continue
		}
		if tr := c.trigger(); tr != nil {
			ts := tr.state(cg.ref.ID)
			if ts.active {
				out = append(out, "  trigger active since "+ts.changedAt.Format(time.RFC3339)+": "+ts.describeActive(tr.t))
			} else {
				out = append(out, "  trigger inactive: when "+ts.describe(tr.t, false))
			}
			if len(tr.t.Recover) > 0 {
				out = append(out, "  recover: "+ts.describe(tr.t, true))
			}
		}
		if c.target() == cl.Name {
			out = append(out, "  next: "+c.next(l, cg))
		}
	}
	if n == 0 {
		out = append(out, "no controller targets or reads this class")
	}
	return out, nil
}

// notEvaluated is what status and explain say of a disabled controller's
// conditions.
func notEvaluated(why string) string {
	return "not evaluated (impossible here: " + why + ")"
}

// RankKey orders governed cgroups by what an operator looks at first, for
// views that show only some of them (the metrics' cgroup limit, governor
// top). In order of precedence:
//
//  1. cgroups whose knobs the governor holds changed (or frozen): what it
//     did and what it will restore;
//  2. cgroups it has acted on (a last action), the most recent first;
//  3. the rest by pressure: the highest PSI avg10 of cpu, memory or io.
//
// Ties go to the smaller path, so the idle cgroups shown stay the same from
// one look to the next.
type RankKey struct {
	Tier     uint8   // 0 knobs held changed, 1 acted on, 2 neither
	Last     int64   // the last action's time (Unix ns)
	Pressure float64 // the highest PSI some/full avg10
	Path     string
}

var rankSignals = [...]string{
	CPUSomeAvg10.Name(), CPUFullAvg10.Name(), MemorySomeAvg10.Name(),
	MemoryFullAvg10.Name(), IOSomeAvg10.Name(), IOFullAvg10.Name(),
}

// Rank returns cs's key.
func (cs *CgroupStatus) Rank() RankKey {
	k := RankKey{Tier: 2, Path: cs.Path}
	for _, s := range rankSignals {
		k.Pressure = max(k.Pressure, cs.Signals[s])
	}
	if cs.Last != nil {
		k.Tier, k.Last = 1, cs.Last.Time.UnixNano()
	}
	for _, ks := range cs.Knobs {
		if !ks.HandedBack {
			k.Tier = 0
			break
		}
	}
	return k
}

// Before reports whether a comes before b.
func (a *RankKey) Before(b *RankKey) bool {
	if a.Tier != b.Tier {
		return a.Tier < b.Tier
	}
	if a.Tier == 1 && a.Last != b.Last {
		return a.Last > b.Last
	}
	if a.Pressure != b.Pressure {
		return a.Pressure > b.Pressure
	}
	return a.Path < b.Path
}

// Top keeps the first n of the items offered to it by RankKey (every one
// when n <= 0), as views that show only some cgroups need: the items come
// one at a time and only those kept are built, in a heap whose root is the
// one to drop next, so it holds n items however many are offered.
type Top[T any] struct {
	n     int
	seen  int
	keys  []RankKey
	items []T
}

// NewTop returns a Top that keeps n items (every one when n <= 0).
func NewTop[T any](n int) *Top[T] {
	t := &Top[T]{n: n}
	if c := min(n, 4096); c > 0 { // n may come from a client
		t.keys, t.items = make([]RankKey, 0, c), make([]T, 0, c)
	}
	return t
}

// Offer ranks one more item; item builds it, and is called only when it is
// kept (for now: a later offer can push it out).
func (t *Top[T]) Offer(k RankKey, item func() T) {
	t.seen++
	switch {
	case t.n <= 0 || len(t.keys) < t.n:
		t.keys, t.items = append(t.keys, k), append(t.items, item())
		if len(t.keys) == t.n {
			heap.Init(topHeap[T]{t})
		}
	case k.Before(&t.keys[0]):
		t.keys[0], t.items[0] = k, item()
		heap.Fix(topHeap[T]{t}, 0)
	}
}

// Seen is how many items were offered.
func (t *Top[T]) Seen() int { return t.seen }

// Items returns the kept items in no particular order.
func (t *Top[T]) Items() []T { return t.items }

// Ranked returns the kept items, first first.
func (t *Top[T]) Ranked() []T {
	sort.Sort(byRank[T]{t})
	return t.items
}

// topHeap orders a Top's items worst first; Push and Pop are never called
// (the heap is only initialised and fixed in place).
type topHeap[T any] struct{ t *Top[T] }

func (h topHeap[T]) Len() int           { return len(h.t.keys) }
func (h topHeap[T]) Less(i, j int) bool { return h.t.keys[j].Before(&h.t.keys[i]) }
func (h topHeap[T]) Swap(i, j int)      { h.t.swap(i, j) }
func (h topHeap[T]) Push(any)           { panic("governor.Top: Push") }
func (h topHeap[T]) Pop() any           { panic("governor.Top: Pop") }

type byRank[T any] struct{ t *Top[T] }

func (b byRank[T]) Len() int           { return len(b.t.keys) }
func (b byRank[T]) Less(i, j int) bool { return b.t.keys[i].Before(&b.t.keys[j]) }
func (b byRank[T]) Swap(i, j int)      { b.t.swap(i, j) }

func (t *Top[T]) swap(i, j int) {
	t.keys[i], t.keys[j] = t.keys[j], t.keys[i]
	t.items[i], t.items[j] = t.items[j], t.items[i]
}

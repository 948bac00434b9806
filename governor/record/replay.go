package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
)

// ReplayOptions select what to replay.
type ReplayOptions struct {
	Policy *governor.Policy
	// From, To bound the replayed ticks (zero: unbounded).
	From, To time.Time
	Logger   hclog.Logger
}

// ReplayResult is what a replay found.
type ReplayResult struct {
	Ticks int
	First time.Time
	Last  time.Time
	// Actions are the replaying loop's actions; Recorded the live loop's
	// over the same ticks.
	Actions  []Action
	Recorded []Action
	// Missing: knobs the replaying loop read that the recording has no
	// value for (the live policy never read them), by "cgroup knob";
	// the replay treats them as absent rather than inventing a value.
	Missing []string
	// Unsupported: knobs the recorded host did not have.
	Unsupported []string
	Warnings    []string
}

// Replay runs opt.Policy over the recording at path with the same
// Loop.Step code the daemon runs, with no kernel access.
func Replay(ctx context.Context, path string, opt ReplayOptions) (*ReplayResult, error) {
	rd, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	// Decompressing and decoding run on their own goroutine, ahead of
	// the Steps (a replay has little else to do with a second core). A
	// few ticks ahead are enough to smooth a block's decompression, and
	// a tick of 10,000 cgroups is megabytes.
	ticks := make(chan readResult, 16)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(ticks)
		for {
			t, err := rd.Next()
			select {
			case ticks <- readResult{t, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	stopped := false
	finish := func() { // before rd.Close, and before reading rd.Warnings
		if !stopped {
			close(stop)
			stopped = true
		}
		<-readerDone
	}
	defer finish()
	p := &player{next: func() (*Tick, error) {
		r, ok := <-ticks
		if !ok {
			return nil, io.EOF
		}
		return r.t, r.err
	}, from: opt.From, to: opt.To, res: &ReplayResult{}}
	p.act = newMemActuator(p)
	// The first tick in range carries (or follows) the host's Meta.
	if err := p.advance(); err != nil {
		if err == io.EOF {
			finish()
			p.res.Warnings = rd.Warnings
			return p.res, nil
		}
		return nil, err
	}
	m := p.meta
	if m == nil {
		m = &Meta{}
	}
	caps := governor.Capabilities{Root: m.Root, Controllers: m.Controllers, Reclaim: m.Reclaim, Freeze: m.Freeze, Kill: m.Kill, NoCPUIdle: m.NoCPUIdle}
	p.act.enables = m.Enables
	var loopErr error
	loop, err := governor.New(governor.Config{
		Policy:       opt.Policy,
		Sources:      []governor.Source{p},
		Actuator:     p.act,
		Clock:        p,
		Logger:       opt.Logger,
		DryRun:       m.DryRun,
		Caps:         caps,
		SelfPath:     m.SelfPath,
		AllowSystemd: m.AllowSystemd,
		NumCPU:       m.NumCPU,
		OnAction:     func(a governor.Action) { p.res.Actions = append(p.res.Actions, FromAction(a)) },
		RunHook: func(context.Context, []string, []string) ([]byte, error) {
			return nil, errors.New("hooks are not run in a replay")
		},
	})
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p.res.Ticks++
		p.res.Last = p.cur.Time
		p.res.Recorded = append(p.res.Recorded, p.cur.Actions...)
		if p.cur.Cgroups != nil || p.cur.Host != nil {
			if loopErr = loop.Step(ctx); loopErr != nil {
				return nil, fmt.Errorf("replay at %s: %w", p.cur.Time.Format(time.RFC3339Nano), loopErr)
			}
		}
		if err := p.advance(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
	}
	finish()
	p.res.Warnings = rd.Warnings
	p.res.Missing = p.act.sortedNotes(p.act.missing)
	p.res.Unsupported = p.act.sortedNotes(p.act.unsupported)
	return p.res, nil
}

type readResult struct {
	t   *Tick
	err error
}

// player feeds recorded ticks to a Loop: it is its Source and Clock.
type player struct {
	next     func() (*Tick, error)
	from, to time.Time
	cur      *Tick
	meta     *Meta
	act      *memActuator
	res      *ReplayResult
	samples  []governor.Sample
	host     governor.Sample
	sigs     []governor.Signal
}

// advance moves to the next tick in range; io.EOF past the last.
func (p *player) advance() error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		if t.Meta != nil {
			p.meta = t.Meta
			p.sigs = t.Meta.SignalMap()
		}
		if !p.from.IsZero() && t.Time.Before(p.from) {
			continue
		}
		if !p.to.IsZero() && t.Time.After(p.to) {
			return io.EOF
		}
		if p.res.Ticks == 0 {
			p.res.First = t.Time
		}
		p.cur = t
		p.act.load(t)
		return nil
	}
}

// Now is the current tick's recorded time.
func (p *player) Now() time.Time { return p.cur.Time }

func (p *player) Name() string { return "replay" }

// Sample yields the current tick's snapshot.
func (p *player) Sample(_ context.Context, snap *governor.Snapshot) error {
	t := p.cur
	if t.Host != nil {
		t.Host.Sample(&p.host, p.sigs)
		snap.Host = &p.host
	}
	if cap(p.samples) < len(t.Cgroups) {
		p.samples = make([]governor.Sample, len(t.Cgroups))
	}
	p.samples = p.samples[:len(t.Cgroups)]
	for i := range t.Cgroups {
		t.Cgroups[i].Sample(&p.samples[i], p.sigs)
		snap.Cgroups = append(snap.Cgroups, &p.samples[i])
	}
	return nil
}

type memKey struct {
	id   uint64
	knob string
}

// memActuator holds knob values in memory: seeded with (and, at each
// tick, corrected to) the values the live loop read, changed by the
// replaying loop's writes. Reads and effects fail where they failed live.
type memActuator struct {
	p       *player
	vals    map[memKey]governor.Setting
	tick    map[memKey]Read
	fx      map[memKey]Effect
	paths   map[uint64]string
	enables []string
	// mems: the tick's memory readings per cgroup, served in order.
	mems map[uint64][]MemRead
	// notes: "path knob" -> first time
	missing     map[string]time.Time
	unsupported map[string]time.Time
}

func newMemActuator(p *player) *memActuator {
	return &memActuator{p: p, vals: map[memKey]governor.Setting{}, tick: map[memKey]Read{}, fx: map[memKey]Effect{},
		paths: map[uint64]string{}, missing: map[string]time.Time{}, unsupported: map[string]time.Time{},
		mems: map[uint64][]MemRead{}}
}

// load takes in a tick's recorded reads and effects.
func (m *memActuator) load(t *Tick) {
	clear(m.tick)
	clear(m.fx)
	for _, c := range t.Cgroups {
		m.paths[c.ID] = c.Path
	}
	for _, r := range t.Reads {
		k := memKey{r.ID, r.Knob}
		if _, seen := m.tick[k]; !seen { // the first read of the tick is the kernel's before any write
			m.tick[k] = r
		}
	}
	for _, e := range t.Effects {
		m.fx[memKey{e.ID, e.Op + ":" + e.Knob}] = e
	}
	clear(m.mems)
	for _, r := range t.Memory {
		m.mems[r.ID] = append(m.mems[r.ID], r)
	}
}

// ReadMemory implements governor.MemoryReader: the live loop's readings
// of this tick, in order. Where there is none (a recording from before
// they were recorded, or a policy that reclaims where the live one did
// not) reclaim goes on unmeasured, as it would without a reader.
func (m *memActuator) ReadMemory(_ context.Context, cg governor.Ref) (governor.MemoryState, error) {
	q := m.mems[uint64(cg.ID)]
	if len(q) == 0 {
		return governor.MemoryState{}, fmt.Errorf("memory accounting of %s is not in the recording at this tick: %w", m.paths[uint64(cg.ID)], governor.ErrUnsupported)
	}
	r := q[0]
	m.mems[uint64(cg.ID)] = q[1:]
	return r.State(), kindErr(r.ErrKind, r.Err)
}

func kindErr(kind, msg string) error {
	var base error
	switch kind {
	case "":
		return nil
	case ErrKindGone:
		base = governor.ErrGone
	case ErrKindUnsupported:
		base = governor.ErrUnsupported
	case ErrKindTimeout:
		base = governor.ErrTimeout
	case ErrKindInProgress:
		return fmt.Errorf("recorded: %s: %w: %w", msg, governor.ErrTimeout, governor.ErrInProgress)
	default:
		return fmt.Errorf("recorded: %s", msg)
	}
	return fmt.Errorf("recorded: %s: %w", msg, base)
}

func (m *memActuator) note(set map[string]time.Time, id uint64, knob string) {
	key := m.paths[id] + " " + knob
	if _, ok := set[key]; !ok {
		set[key] = m.p.cur.Time
	}
}

func (m *memActuator) sortedNotes(set map[string]time.Time) []string {
	out := make([]string, 0, len(set))
	for k, t := range set {
		out = append(out, k+" (first at "+t.UTC().Format(time.RFC3339)+")")
	}
	sort.Strings(out)
	return out
}

func (m *memActuator) readKey(id uint64, knob string) (governor.Setting, error) {
	k := memKey{id, knob}
	if r, ok := m.tick[k]; ok {
		delete(m.tick, k) // later reads this tick see our own writes
		if r.ErrKind != "" {
			if r.ErrKind == ErrKindUnsupported {
				m.note(m.unsupported, id, knob)
			}
			return governor.Setting{}, kindErr(r.ErrKind, r.Err)
		}
		s := governor.Setting{Value: r.Value, Raw: r.Raw}
		m.vals[k] = s
		return s, nil
	}
	if s, ok := m.vals[k]; ok {
		return s, nil
	}
	m.note(m.missing, id, knob)
	return governor.Setting{}, fmt.Errorf("%s of %s is not in the recording: %w", knob, m.paths[id], governor.ErrUnsupported)
}

// Read implements governor.Actuator.
func (m *memActuator) Read(_ context.Context, cg governor.Ref, k governor.Knob) (governor.Setting, error) {
	return m.readKey(uint64(cg.ID), k.String())
}

// recorded returns the live outcome of the same effect at this tick.
func (m *memActuator) recorded(id uint64, op, knob string) error {
	if e, ok := m.fx[memKey{id, op + ":" + knob}]; ok {
		return kindErr(e.ErrKind, e.Err)
	}
	return nil
}

func rawOf(v int64) string {
	if v == governor.Unlimited {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// kernelPage is the unit the kernel keeps memory limits in: it stores
// memory.high, .max, .low and .min as a count of pages, rounded down, and a
// read gives that back in bytes. (4 KiB: x86-64 and the usual arm64
// kernels.)
const kernelPage = 4096

// Write implements governor.Actuator. It holds what the kernel would: a
// memory limit rounded down to whole pages. The live loop reads a knob back
// after writing it and keeps the kernel's value; holding the unrounded one
// here, the replay saw the next tick's recorded (rounded) value as someone
// else's change and handed the knob back (found replaying memhigh's
// recording from the test bed).
func (m *memActuator) Write(_ context.Context, cg governor.Ref, k governor.Knob, v int64) error {
	if err := m.recorded(uint64(cg.ID), "write", k.String()); err != nil {
		return err
	}
	if k.Controller() == "memory" && v > 0 && v != governor.Unlimited {
		v -= v % kernelPage
	}
	m.vals[memKey{uint64(cg.ID), k.String()}] = governor.Setting{Value: v, Raw: rawOf(v)}
	return nil
}

// Restore implements governor.Actuator.
func (m *memActuator) Restore(_ context.Context, cg governor.Ref, k governor.Knob, s governor.Setting) error {
	if err := m.recorded(uint64(cg.ID), "restore", k.String()); err != nil {
		return err
	}
	m.vals[memKey{uint64(cg.ID), k.String()}] = s
	return nil
}

// Reclaim implements governor.Actuator.
func (m *memActuator) Reclaim(_ context.Context, cg governor.Ref, _ int64) error {
	return m.recorded(uint64(cg.ID), "reclaim", "memory.reclaim")
}

// Freeze implements governor.Actuator.
func (m *memActuator) Freeze(_ context.Context, cg governor.Ref, frozen bool) error {
	op := "freeze"
	if !frozen {
		op = "thaw"
	}
	if err := m.recorded(uint64(cg.ID), op, "cgroup.freeze"); err != nil {
		return err
	}
	v := int64(0)
	if frozen {
		v = 1
	}
	m.vals[memKey{uint64(cg.ID), "cgroup.freeze"}] = governor.Setting{Value: v}
	return nil
}

// Kill implements governor.Actuator.
func (m *memActuator) Kill(_ context.Context, cg governor.Ref) error {
	return m.recorded(uint64(cg.ID), "kill", "cgroup.kill")
}

// FreezeState implements governor.FreezeReader.
func (m *memActuator) FreezeState(_ context.Context, cg governor.Ref) (bool, error) {
	s, err := m.readKey(uint64(cg.ID), "cgroup.freeze")
	return s.Value == 1, err
}

// EnablesController implements governor.ControllerEnabler as the
// recorded actuator did.
func (m *memActuator) EnablesController(ctl string) bool {
	for _, e := range m.enables {
		if e == ctl {
			return true
		}
	}
	return false
}

package governor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config is everything a Loop needs. New does no I/O with it.
type Config struct {
	Policy *Policy
	// Sources: the first is the primary (enumerates cgroups), the rest add
	// signals by cgroup id.
	Sources  []Source
	Actuator Actuator
	// Notifier, optional, wakes the loop between ticks.
	Notifier Notifier
	Clock    Clock
	Logger   hclog.Logger
	// DryRun logs every action and writes nothing (and keeps no state file).
	DryRun bool
	// StatePath is where originals are recorded for crash recovery; "" keeps
	// them in memory only.
	StatePath string
	// Caps tells which controllers exist; nil Controllers means unknown
	// (assume present, errors will tell).
	Caps Capabilities
	// SelfPath is the governor's own cgroup (relative to the root): it and
	// its ancestors are never acted on.
	SelfPath string
	// AllowSystemd names systemd's own services ("systemd-oomd.service")
	// that policies may limit, freeze or kill anyway; see systemdUnit.
	AllowSystemd []string
	// NumCPU sizes percent steps on an unlimited cpu.max (default
	// runtime.NumCPU()).
	NumCPU int
	// WriteTimeout bounds each actuator call (default 5 s).
	WriteTimeout time.Duration
	// AfterStep, optional, runs after every Step (watchdog pings, metrics).
	AfterStep func(StepResult)
	// OnAction, optional, receives every action (metrics, audit trail).
	OnAction func(Action)
	// Armer, optional, arms PSI triggers on watched cgroups; MaxTriggers
	// bounds how many (default 256).
	Armer       Armer
	MaxTriggers int
	// Hints, optional, reads operators' victim hints for last_resort
	// (cgroup xattrs); RunHook runs last_resort hooks (default ExecHook).
	Hints   HintReader
	RunHook HookRunner
	// Recorder, optional, records every tick and action (recorder.go).
	Recorder Recorder
}

// StepResult summarises one Step.
type StepResult struct {
	Time     time.Time
	Duration time.Duration
	Cgroups  int
	Actions  int
	Errors   int
}

// Loop is the control loop. All its state is owned by the goroutine calling
// Step/Run; SetPolicy is the only method safe to call from others.
type Loop struct {
	cfg   Config
	log   hclog.Logger
	act   Actuator
	clock Clock

	policy   *Policy
	ctrls    []controller
	disabled map[string]string // controller name -> why it cannot act here
	// knobOff: knobs no controller can write on this host, and why; plan
	// is what each controller can do (reportCapabilities logs it).
	knobOff map[Knob]string
	plan    []Feasibility
	watch   map[string][]armSpec
	// protectors are the protect controllers: the only ones allowed to
	// write (memory.low/min) to protected classes.
	protectors map[string]bool
	armed      int

	snap    Snapshot
	cgs     map[CgroupID]*cgState
	members map[string][]*Sample
	managed map[knobKey]*managedKnob
	frozen  map[CgroupID]*frozenCG
	adopt   []StateEntry // from the state file, resolved on the first Step
	dirty   bool         // state file needs saving
	plans   []plan
	tick    uint64

	lastReport time.Time
	warned     map[string]bool
	// Effects not made because the state file could not be saved: when
	// that was last said, and how many since.
	unrecordedAt time.Time
	unrecorded   int
	policyCh     chan *Policy
	doCh         chan func()
	result       StepResult
	adm          *admission // batch admission verdict (admission.go)
}

type knobKey struct {
	id   CgroupID
	knob Knob
}

// managedKnob is a knob the governor has changed and will restore.
type managedKnob struct {
	ref      Ref
	knob     Knob
	orig     Setting
	written  int64
	previous int64
	pending  bool // a write timed out: either written or previous may be in force
	// releasing: the timed-out write was a restore of the original.
	releasing bool
	owner     string
	changed   time.Time
	recovered bool // adopted from an earlier run's state file
}

type frozenCG struct {
	ref       Ref
	owner     string
	since     time.Time
	recovered bool // named by an earlier run's state file
	thawing   bool // a thaw failed or timed out; cgroup.freeze 0 is ours
}

// FreezeReader is implemented by actuators that can read cgroup.freeze
// back (the state asked for, which changes at once, not cgroup.events'
// "frozen"). With it the loop treats cgroup.freeze like the knobs it
// manages: a cgroup thawed by someone else is handed back, and one frozen
// by someone else is not taken over.
type FreezeReader interface {
	FreezeState(ctx context.Context, cg Ref) (bool, error)
}

type cgState struct {
	ref         Ref
	sample      *Sample
	class       int // index into policy.Classes, -1 none
	seen        uint64
	handedBack  [NumKnobs]bool
	unsupported [NumKnobs]bool
	failing     [NumKnobs]bool // last write failed (repeats logged at debug)
	refused     bool           // logged that it is on the deny list
	// freezeBack: thawed (or frozen) by someone else while a last resort
	// held it; no last resort freezes or kills it until its trigger is
	// quiet again (lastResortCtl.handedBack).
	freezeBack bool
	reads      [NumKnobs]cachedRead
	last       *Action         // the last action on this cgroup
	armed      bool            // PSI triggers armed on it
	armTried   bool            // arming attempted (not retried every tick)
	warned     map[string]bool // warn-once flags about this cgroup
	nArmed     int
}

type cachedRead struct {
	tick uint64
	s    Setting
	err  error
}

// New builds a loop. It does no I/O.
func New(cfg Config) (*Loop, error) {
	if cfg.Policy == nil {
		return nil, errors.New("governor: no policy")
	}
	if len(cfg.Sources) == 0 {
		return nil, errors.New("governor: no source")
	}
	if cfg.Actuator == nil {
		return nil, errors.New("governor: no actuator")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.NumCPU <= 0 {
		cfg.NumCPU = runtime.NumCPU()
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.Recorder != nil {
		cfg.OnAction = teeActions(cfg.Recorder, cfg.OnAction)
	}
	l := &Loop{
		cfg:      cfg,
		log:      cfg.Logger,
		act:      cfg.Actuator,
		clock:    cfg.Clock,
		cgs:      make(map[CgroupID]*cgState),
		members:  make(map[string][]*Sample),
		managed:  make(map[knobKey]*managedKnob),
		frozen:   make(map[CgroupID]*frozenCG),
		warned:   make(map[string]bool),
		policyCh: make(chan *Policy, 1),
		doCh:     make(chan func()),
	}
	if cfg.DryRun {
		l.act = dryRun{Actuator: cfg.Actuator, log: cfg.Logger.Named("dry-run")}
	}
	l.setPolicy(cfg.Policy)
	return l, nil
}

// Recover reads the state file left by an earlier run. Its entries are
// resolved on the next Step: knobs still holding the value the governor
// wrote are re-adopted (their originals remembered, restored on exit or when
// no rule wants them any more); knobs someone changed since are left alone;
// cgroups that were frozen are thawed.
func (l *Loop) Recover() error {
	if l.cfg.StatePath == "" || l.cfg.DryRun {
		return nil
	}
	entries, err := LoadState(l.cfg.StatePath)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		l.log.Info("found state of an earlier run; will re-adopt or restore its changes", "file", l.cfg.StatePath, "entries", len(entries))
	}
	l.adopt = entries
	return nil
}

// SetPolicy replaces the policy; the loop picks it up before its next Step.
// Knobs no controller of the new policy claims are restored.
func (l *Loop) SetPolicy(p *Policy) {
	for {
		select {
		case l.policyCh <- p:
			return
		default:
			select {
			case <-l.policyCh:
			default:
			}
		}
	}
}

func (l *Loop) setPolicy(p *Policy) {
	if p.Tick <= 0 {
		p.Tick = time.Second
	}
	if p.ReportEvery <= 0 {
		p.ReportEvery = time.Minute
	}
	l.policy = p
	l.ctrls = buildControllers(p)
	l.disabled = make(map[string]string)
	l.knobOff = make(map[Knob]string)
	l.plan = l.plan[:0]
	for _, c := range l.ctrls {
		f := feasibility(c, l.cfg.Caps, l.cfg.Actuator)
		l.plan = append(l.plan, f)
		if f.Whole != "" {
			l.disabled[c.name()] = f.Whole
		}
		for _, o := range f.Off {
			l.knobOff[o.Knob] = o.Why
		}
	}
	l.watch = watchSpecs(p, l.ctrls)
	l.protectors = make(map[string]bool)
	for _, c := range l.ctrls {
		if c.kind() == "protect" {
			l.protectors[c.name()] = true
		}
	}
	for _, cg := range l.cgs {
		l.disarm(cg)
		cg.class = l.classify(cg.ref.Path)
	}
	l.lastReport = time.Time{}
	l.adm = newAdmission(p, l.adm, l.clock.Now())
}

// Policy returns the policy in force.
func (l *Loop) Policy() *Policy { return l.policy }

// Run calls Step every tick and on notifier wake-ups until ctx ends. It does
// not restore anything: call Close for that.
func (l *Loop) Run(ctx context.Context) error {
	l.reportCapabilities()
	var wake <-chan Ref
	if l.cfg.Notifier != nil {
		wake = l.cfg.Notifier.Wake()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-l.policyCh:
			l.setPolicy(p)
			l.reportCapabilities()
			l.log.Info("policy replaced", "classes", len(p.Classes), "controllers", len(l.ctrls))
			continue
		case f := <-l.doCh:
			f()
			continue
		case ref := <-wake:
			l.log.Debug("woken by pressure trigger", "cgroup", ref.String())
		case <-t.C:
		}
		if err := l.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // shutting down in the middle of a Step
			}
			l.log.Error("step failed", "error", err)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(l.policy.Tick)
	}
}

// reportCapabilities logs once per policy which controllers cannot act at
// all, and, for those that act with some of their knobs, which knobs they
// cannot use and why (one line per controller).
func (l *Loop) reportCapabilities() {
	for _, f := range l.plan {
		switch {
		case f.Whole != "":
			l.log.Warn("policy action impossible on this host; observing only", "controller", f.Controller, "why", f.Whole)
		case len(f.Off) > 0:
			var whys []string
			for _, o := range f.Off {
				whys = append(whys, o.Knob.String()+": "+o.Why)
			}
			l.log.Warn("some knobs of this controller are impossible on this host; acting with the others",
				"controller", f.Controller, "impossible", f.OffNames(), "why", strings.Join(whys, "; "))
		}
		if len(f.Via) > 0 {
			var ks, ctls []string
			for _, v := range f.Via {
				ks = append(ks, v.Knob.String())
				if !slices.Contains(ctls, v.Why) {
					ctls = append(ctls, v.Why)
				}
			}
			l.log.Info("controller not enabled in the hierarchy yet; systemd enables it for the units these knobs are set on (and drops it again on restore)",
				"controller", f.Controller, "knobs", strings.Join(ks, " "), "cgroup_controllers", strings.Join(ctls, " "))
		}
	}
}

// Step runs one whole tick: sample, reconcile cgroups, check managed knobs,
// evaluate every controller, then record and apply the planned writes.
func (l *Loop) Step(ctx context.Context) error {
	select {
	case p := <-l.policyCh:
		l.setPolicy(p)
	default:
	}
	start := l.clock.Now()
	l.tick++
	l.result = StepResult{Time: start}
	defer func() {
		l.result.Duration = l.clock.Now().Sub(start)
		l.result.Cgroups = len(l.cgs)
		if l.cfg.AfterStep != nil {
			l.cfg.AfterStep(l.result)
		}
	}()

	l.snap.Reset(start)
	for i, src := range l.cfg.Sources {
		if err := src.Sample(ctx, &l.snap); err != nil {
			if i == 0 {
				return fmt.Errorf("source %s: %w", src.Name(), err)
			}
			l.warnOnce("source:"+src.Name(), "source failed; continuing without its signals", "source", src.Name(), "error", err)
		}
	}
	l.reconcile()
	if l.adopt != nil {
		l.adoptState(ctx)
	}
	l.checkManaged(ctx)

	v := &view{now: start, snap: &l.snap, members: l.members}
	for _, c := range l.ctrls {
		if _, off := l.disabled[c.name()]; off {
			continue
		}
		c.step(ctx, l, v)
	}
	l.adm.step(l, v)
	l.apply(ctx)
	l.releaseUnclaimed(ctx)
	if l.cfg.Recorder != nil {
		l.recordTick()
	}
	if l.dirty {
		l.save()
	}
	if start.Sub(l.lastReport) >= l.policy.ReportEvery {
		l.report()
		l.lastReport = start
	}
	return nil
}

// reconcile updates the cgroup table from the snapshot: new cgroups are
// classified, vanished ones are forgotten everywhere.
func (l *Loop) reconcile() {
	for k, s := range l.members {
		clear(s) // no stale pointers past the length keep old snapshots alive
		l.members[k] = s[:0]
	}
	for _, s := range l.snap.Cgroups {
		cg := l.cgs[s.ID]
		if cg == nil {
			cg = &cgState{ref: s.Ref, class: l.classify(s.Path)}
			l.cgs[s.ID] = cg
		} else if cg.ref.Path != s.Path {
			l.disarm(cg)
			cg.ref.Path = s.Path // renamed (rare): keep id, reclassify
			cg.class = l.classify(s.Path)
		}
		l.arm(cg)
		cg.sample = s
		cg.seen = l.tick
		if cg.class >= 0 {
			name := l.policy.Classes[cg.class].Name
			l.members[name] = append(l.members[name], s)
		}
	}
	for id, cg := range l.cgs {
		if cg.seen != l.tick {
			l.forget(id, "cgroup removed")
		}
	}
}

// forget drops everything known about a cgroup.
func (l *Loop) forget(id CgroupID, why string) {
	cg := l.cgs[id]
	if cg == nil {
		return
	}
	for k := Knob(0); k < NumKnobs; k++ {
		if _, ok := l.managed[knobKey{id, k}]; ok {
			delete(l.managed, knobKey{id, k})
			l.dirty = true
		}
	}
	if _, ok := l.frozen[id]; ok {
		delete(l.frozen, id)
		l.dirty = true
	}
	for _, c := range l.ctrls {
		c.forget(id)
	}
	l.disarm(cg)
	delete(l.cgs, id)
	l.log.Debug("forgetting cgroup", "cgroup", cg.ref.String(), "why", why)
}

func (l *Loop) classify(p string) int { return l.policy.ClassOf(p) }

// ClassOf is the index of the class the loop puts cgroup path p in: the
// first whose match and none of whose exclude patterns match p; -1 for
// none.
func (pol *Policy) ClassOf(p string) int {
	for i := range pol.Classes {
		c := &pol.Classes[i]
		if matchAny(c.Match, p) && !matchAny(c.Exclude, p) {
			return i
		}
	}
	return -1
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if MatchPath(pat, p) {
			return true
		}
	}
	return false
}

// warnOnceCG is warnOnce for a warning about one cgroup: the flag lives in
// the cgroup's state and goes with it.
func (l *Loop) warnOnceCG(cg *cgState, key, msg string, args ...interface{}) {
	if cg.warned[key] {
		return
	}
	if cg.warned == nil {
		cg.warned = make(map[string]bool)
	}
	cg.warned[key] = true
	l.log.Warn(msg, args...)
}

func (l *Loop) warnOnce(key, msg string, args ...interface{}) {
	if l.warned[key] {
		return
	}
	l.warned[key] = true
	l.log.Warn(msg, args...)
}

// denied says why the governor must never act on a cgroup ("" if it may).
func (l *Loop) denied(cg *cgState) string {
	if why := l.deniedAlways(cg); why != "" {
		return why
	}
	if cg.class >= 0 && l.policy.Classes[cg.class].Protected {
		return fmt.Sprintf("its class %q is protected", l.policy.Classes[cg.class].Name)
	}
	if u := systemdUnit(cg.ref.Path); u != "" && !slices.Contains(l.cfg.AllowSystemd, u) {
		return fmt.Sprintf("it is systemd's own %s (Config.AllowSystemd lifts this)", u)
	}
	return ""
}

// systemdUnit returns the unit if p is, or is inside, one of the services
// systemd and the rest of the system rely on to manage (and recover) the
// machine: a systemd-*.service or the D-Bus broker directly in system.slice,
// or in a slice there (templated units: system-systemd\x2dfsck.slice).
// Limiting, freezing or killing them can hang logins, logging, device
// handling or systemctl itself. Deeper names do not count, so a delegated
// subtree (system.slice/docker.service/...) cannot name a child
// "systemd-x.service" to escape the policy. Protection (memory.low/min) may
// still reach them.
func systemdUnit(p string) string {
	rest, ok := strings.CutPrefix(p, "system.slice/")
	if !ok {
		return ""
	}
	e := strings.Split(rest, "/")
	if len(e) > 1 && strings.HasSuffix(e[0], ".slice") {
		e = e[1:]
	}
	if e[0] == "dbus.service" || e[0] == "dbus-broker.service" ||
		strings.HasPrefix(e[0], "systemd-") && strings.HasSuffix(e[0], ".service") {
		return e[0]
	}
	return ""
}

// deniedAlways covers what even protection may not touch: the root,
// init.scope and the governor's own cgroup and its ancestors.
func (l *Loop) deniedAlways(cg *cgState) string {
	p := cg.ref.Path
	switch {
	case p == "":
		return "it is the root cgroup"
	case p == "init.scope" || strings.HasSuffix(p, "/init.scope"):
		return "it is init.scope"
	case l.cfg.SelfPath != "" && (p == l.cfg.SelfPath || strings.HasPrefix(l.cfg.SelfPath, p+"/")):
		return "it holds the governor itself"
	}
	return ""
}

// deniedFor says why owner may not cause an effect on knob k of cg ("" if
// it may): the deny list and protected classes, except that a protect
// controller may raise memory.low/min of a protected class. k is noKnob for
// reclaim, freeze and kill. It is the one check for every effect: planned
// writes (set), the executor (exec) and the entries of an earlier run's
// state file (adoptState) all use it.
func (l *Loop) deniedFor(cg *cgState, k Knob, owner string) string {
	if l.protectors[owner] && (k == MemoryLow || k == MemoryMin) {
		return l.deniedAlways(cg)
	}
	return l.denied(cg)
}

// allowed reports whether the governor may act on cg at all, logging a
// refusal once per cgroup.
func (l *Loop) allowed(cg *cgState) bool {
	return l.refuse(cg, l.denied(cg))
}

func (l *Loop) refuse(cg *cgState, why string) bool {
	if why == "" {
		return true
	}
	if !cg.refused {
		cg.refused = true
		l.log.Warn("refusing to act on cgroup", "cgroup", cg.ref.String(), "why", why)
	}
	return false
}

// mayTouch reports whether a controller may change knob k of cg now.
func (l *Loop) mayTouch(cg *cgState, k Knob) bool {
	return l.knobOff[k] == "" && l.allowed(cg) && !cg.handedBack[k] && !cg.unsupported[k]
}

// mayProtect is mayTouch for protection (memory.low/memory.min raised by a
// protect block): a protected class may receive protection, never limits.
func (l *Loop) mayProtect(cg *cgState, k Knob) bool {
	return l.knobOff[k] == "" && l.refuse(cg, l.deniedAlways(cg)) && !cg.handedBack[k] && !cg.unsupported[k]
}

// read returns a knob's current value, at most one read per cgroup, knob
// and tick.
func (l *Loop) read(ctx context.Context, cg *cgState, k Knob) (Setting, error) {
	r := &cg.reads[k]
	if r.tick == l.tick {
		return r.s, r.err
	}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	s, err := l.act.Read(cctx, cg.ref, k)
	cancel()
	*r = cachedRead{tick: l.tick, s: s, err: err}
	return s, err
}

// current returns the value in force: what the governor wrote for a knob it
// manages (verified each tick by checkManaged), else a fresh read.
func (l *Loop) current(ctx context.Context, cg *cgState, k Knob) (int64, bool) {
	if m := l.managed[knobKey{cg.ref.ID, k}]; m != nil {
		return m.written, true
	}
	s, err := l.read(ctx, cg, k)
	if err != nil {
		l.readFailed(cg, k, err)
		return 0, false
	}
	return s.Value, true
}

func (l *Loop) readFailed(cg *cgState, k Knob, err error) {
	switch {
	case errors.Is(err, ErrGone):
		// The next snapshot will not list it; nothing to do.
	case errors.Is(err, ErrUnsupported):
		if !cg.unsupported[k] {
			cg.unsupported[k] = true
			l.log.Warn("knob not available for cgroup; not acting on it", "cgroup", cg.ref.String(), "knob", k.String(), "error", err)
		}
	default:
		l.warnOnceCG(cg, "read:"+k.String(), "cannot read knob", "cgroup", cg.ref.String(), "knob", k.String(), "error", err)
	}
}

// readFreeze reads cgroup.freeze; ErrUnsupported without a FreezeReader.
func (l *Loop) readFreeze(ctx context.Context, cg *cgState) (bool, error) {
	fr, ok := l.act.(FreezeReader)
	if !ok || l.cfg.DryRun {
		return false, ErrUnsupported
	}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	return fr.FreezeState(cctx, cg.ref)
}

// checkManaged verifies, every tick, that each managed knob still holds the
// value the governor wrote. If someone else changed it, the governor hands it
// back: it forgets the knob (no restore) and leaves it alone for the life of
// the cgroup. cgroup.freeze of a cgroup it froze is checked alike: thawed by
// someone else, it is handed back (no thaw, no kill) and no last resort
// freezes it again until its trigger is quiet (cgState.freezeBack).
func (l *Loop) checkManaged(ctx context.Context) {
	if l.cfg.DryRun {
		return
	}
	for id, f := range l.frozen {
		cg := l.cgs[id]
		if cg == nil {
			continue
		}
		on, err := l.readFreeze(ctx, cg)
		if err != nil {
			if !errors.Is(err, ErrGone) && !errors.Is(err, ErrUnsupported) {
				l.warnOnceCG(cg, "read:"+freezeKnob, "cannot read knob", "cgroup", cg.ref.String(), "knob", freezeKnob, "error", err)
			}
			continue
		}
		if on {
			continue
		}
		delete(l.frozen, id)
		l.dirty = true
		if f.thawing {
			l.log.Info("late thaw completed", "cgroup", f.ref.String())
			continue
		}
		cg.freezeBack = true
		// One line, the audit's (a hand-back is a warning there).
		l.emit(Action{Controller: f.owner, Cgroup: f.ref, Kind: "hand-back", Knob: freezeKnob, Old: "1", New: "0",
			Reason: "thawed by someone else after " + l.clock.Now().Sub(f.since).String() + " frozen; handed back: not killed or frozen again until its trigger is quiet"})
	}
	for key, m := range l.managed {
		cg := l.cgs[key.id]
		if cg == nil {
			continue
		}
		s, err := l.read(ctx, cg, key.knob)
		if err != nil {
			if errors.Is(err, ErrGone) {
				continue
			}
			l.readFailed(cg, key.knob, err)
			continue
		}
		if m.pending && m.releasing && s.Value == m.orig.Value {
			l.log.Info("late restore completed", "cgroup", m.ref.String(), "knob", key.knob.String(), "value", m.orig.Raw)
			delete(l.managed, key)
			l.dirty = true
			continue
		}
		if m.pending && (s.Value == m.written || s.Value == m.previous) {
			m.written, m.pending, m.releasing = s.Value, false, false
			l.dirty = true
			continue
		}
		if s.Value != m.written {
			delete(l.managed, key)
			cg.handedBack[key.knob] = true
			l.dirty = true
			l.emit(Action{Controller: m.owner, Cgroup: m.ref, Kind: "hand-back", Knob: key.knob.String(),
				Old: key.knob.FormatValue(m.written), New: key.knob.FormatValue(s.Value), Reason: "changed by someone else; handed back, left alone (original " + m.orig.Raw + ")"})
		}
	}
}

// adoptState resolves entries of the state file against the first snapshot.
// Each entry passes the same check as a fresh effect of its owner
// (deniedFor): one the deny list or a protected class refuses is logged
// once and its cgroup left untouched, never adopted, restored or thawed.
func (l *Loop) adoptState(ctx context.Context) {
	entries := l.adopt
	l.adopt = nil
	for _, e := range entries {
		cg := l.cgs[e.ID]
		if cg == nil || cg.ref.Path != e.Path {
			l.log.Info("cgroup of an earlier change is gone; nothing to restore", "cgroup", e.Path, "knob", e.Knob)
			continue
		}
		if e.Knob == freezeKnob {
			if _, held := l.frozen[e.ID]; held {
				continue // a duplicate entry
			}
			f := &frozenCG{ref: cg.ref, owner: e.Owner, since: l.clock.Now(), recovered: true}
			err := l.exec(ctx, effect{kind: effThaw, cg: cg, owner: e.Owner, recovered: true})
			if errors.Is(err, errRefused) {
				continue
			}
			if err != nil && !errors.Is(err, ErrGone) {
				l.log.Error("cannot thaw cgroup frozen by an earlier run", "cgroup", e.Path, "error", err)
				l.frozen[e.ID] = f
				continue
			}
			l.log.Info("thawed cgroup frozen by an earlier run", "cgroup", e.Path)
			continue
		}
		k, ok := KnobByName(e.Knob)
		if !ok {
			l.log.Warn("unknown knob in state file; ignoring", "knob", e.Knob, "cgroup", e.Path)
			continue
		}
		if why := l.deniedFor(cg, k, e.Owner); why != "" {
			l.refuseRecovered(cg, cg.ref, e.Knob, e.Owner, why)
			continue
		}
		s, err := l.read(ctx, cg, k)
		if err != nil {
			l.log.Error("cannot read knob recorded by an earlier run", "cgroup", e.Path, "knob", e.Knob, "error", err)
			continue
		}
		if s.Value != e.Written && s.Value != e.Previous {
			l.log.Warn("knob recorded by an earlier run was changed since; handing it back and leaving it alone", "cgroup", e.Path, "knob", e.Knob, "now", s.Raw, "original", e.Original)
			cg.handedBack[k] = true
			continue
		}
		l.managed[knobKey{e.ID, k}] = &managedKnob{
			ref: cg.ref, knob: k, orig: Setting{Value: e.OrigVal, Raw: e.Original},
			written: s.Value, previous: e.Previous, owner: e.Owner, changed: l.clock.Now(), recovered: true,
		}
		l.log.Info("re-adopted knob changed by an earlier run", "cgroup", e.Path, "knob", e.Knob, "value", s.Raw, "original", e.Original, "owner", e.Owner)
	}
	l.dirty = true
}

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
	// Watcher, optional, is the BPF fast path: the loop gives it the
	// cgroups its run-queue and stall conditions watch, and runs a Step
	// when it wakes.
	Watcher Watcher
	Clock   Clock
	Logger  hclog.Logger
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
	fast    map[string]Watch
	// protectors are the protect controllers: the only ones allowed to
	// write (memory.low/min) to protected classes.
	protectors map[string]bool
	deny       *DenyList
	armed      int
	watched    int

	snap    Snapshot
	cgs     map[CgroupID]*cgState
	byPos   []*cgState // reconcile's cache of cgs by snapshot position
	members map[string][]*Sample

	// selfPrev: cgroups self-throttled at the tick before (View.
	// SelfThrottled); selfSpare: the other map, reused.
	selfPrev, selfSpare map[CgroupID]bool

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
	want         wants      // what the controllers read this tick (prepare)
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

type cgState struct {
	ref         Ref
	sample      *Sample
	class       int // index into policy.Classes, -1 none
	seen        uint64
	handedBack  [NumKnobs]bool
	unsupported [NumKnobs]bool
	failing     [NumKnobs]bool // last write failed (repeats logged at debug)
	refused     bool           // logged that it is on the deny list
	// deny and denyAlways: what the deny list says of it (classifyCG).
	deny, denyAlways string
	// freezeBack: thawed (or frozen) by someone else while a last resort
	// held it; no last resort freezes or kills it until its trigger is
	// quiet again (lastResortCtl.handedBack).
	freezeBack bool
	cache      *cgCache        // this tick's reads; nil until the first (most cgroups are never read)
	last       *Action         // the last action on this cgroup
	armed      bool            // PSI triggers armed on it
	watched    bool            // on the fast path (Config.Watcher)
	armTried   bool            // arming attempted (not retried every tick)
	warned     map[string]bool // warn-once flags about this cgroup
	nArmed     int
	gone       bool // forgotten: no longer in Loop.cgs (byPos may still hold it)
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
	l.fast = fastSpecs(p, l.ctrls)
	l.deny = newDenyList(p, l.cfg.SelfPath, l.cfg.AllowSystemd)
	l.protectors = make(map[string]bool)
	for _, c := range l.ctrls {
		if c.kind() == "protect" {
			l.protectors[c.name()] = true
		}
	}
	for _, cg := range l.cgs {
		l.disarm(cg)
		l.classifyCG(cg)
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
	var wake, fast <-chan Ref
	if l.cfg.Notifier != nil {
		wake = l.cfg.Notifier.Wake()
	}
	if l.cfg.Watcher != nil {
		fast = l.cfg.Watcher.Wake()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var (
		due     = time.Now() // when t fires
		lastEnd time.Time    // when the last Step returned
		lastDur time.Duration
	)
	// early handles a wake-up: a Step now, unless the last one ended less
	// than wakeGap (or its own duration) ago, in which case t is brought
	// forward to that point. Steps woken early thus take at most half the
	// loop's time, and wake-ups in between are not lost.
	early := func() bool {
		now := time.Now()
		hold := lastEnd.Add(max(wakeGap, lastDur)).Sub(now)
		if hold <= 0 {
			return true
		}
		if now.Add(hold).Before(due) {
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(hold)
			due = now.Add(hold)
		}
		return false
	}
	pendingFast := false // a fast-path wake-up is held or due
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
			if !early() {
				continue
			}
		case ref := <-fast:
			if cg := l.cgs[ref.ID]; cg != nil {
				l.log.Debug("woken by the BPF fast path", "cgroup", cg.ref.String())
			} else {
				l.log.Debug("woken by the BPF fast path", "cgroup_id", uint64(ref.ID))
			}
			pendingFast = true
			if !early() {
				continue
			}
		case <-t.C:
		}
		start := time.Now()
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
		lastEnd = time.Now()
		lastDur = lastEnd.Sub(start)
		// A Step woken by the fast path a few milliseconds into a stall
		// sees a window (since the previous Step) that is mostly not the
		// stall yet: look again one FastWindow later, when the window is
		// short and mostly the stall, without waiting for another alert.
		next := l.policy.Tick
		if pendingFast {
			next = min(next, FastWindow)
			pendingFast = false
		}
		t.Reset(next)
		due = lastEnd.Add(next)
	}
}

// wakeGap is the least time between the end of a Step and a Step woken
// early by a notifier.
const wakeGap = 25 * time.Millisecond

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

// Step runs one whole tick: sample, reconcile cgroups, check managed knobs
// (hand-back), let every controller observe the signals, read what they
// will need (prepare), have each decide and apply its intents (reclaim,
// freeze, thaw, kill at once), then record and apply the batch of knob
// writes.
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

	v := &View{Now: start, Snap: &l.snap, Members: l.members, Deny: l.deny, SelfThrottled: l.selfPrev}
	for _, c := range l.ctrls {
		if _, off := l.disabled[c.name()]; !off {
			c.observe(l, v)
		}
	}
	l.prepare(ctx, v)
	for _, c := range l.ctrls {
		if _, off := l.disabled[c.name()]; !off {
			l.applyIntents(ctx, c, v, c.decide(l, v))
		}
	}
	l.adm.step(l, v)
	// This tick's judgement is the next tick's "was" (two maps, swapped).
	l.selfPrev, l.selfSpare = SelfThrottledSet(&l.snap, l.selfPrev, l.selfSpare), l.selfPrev
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
	// byPos: the table's entries by position in the last snapshot, which
	// the next one mostly repeats (a map lookup only where it does not);
	// seen: how many entries this snapshot names, so that the sweep for
	// vanished ones runs only when some are.
	if n := len(l.snap.Cgroups); len(l.byPos) < n {
		l.byPos = append(l.byPos, make([]*cgState, n-len(l.byPos))...)
	}
	seen := 0
	for i, s := range l.snap.Cgroups {
		cg := l.byPos[i]
		if cg == nil || cg.gone || cg.ref.ID != s.ID {
			cg = l.cgs[s.ID]
		}
		if cg == nil {
			cg = &cgState{ref: s.Ref}
			l.classifyCG(cg)
			l.cgs[s.ID] = cg
		} else if cg.ref.Path != s.Path {
			l.disarm(cg)
			cg.ref.Path = s.Path // renamed (rare): keep id, reclassify
			l.classifyCG(cg)
		}
		l.arm(cg)
		l.byPos[i] = cg
		cg.sample = s
		if cg.seen != l.tick {
			seen++
		}
		cg.seen = l.tick
		if cg.class >= 0 {
			name := l.policy.Classes[cg.class].Name
			l.members[name] = append(l.members[name], s)
		}
	}
	clear(l.byPos[len(l.snap.Cgroups):])
	if seen == len(l.cgs) {
		return
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
	cg.gone = true
	delete(l.cgs, id)
	l.log.Debug("forgetting cgroup", "cgroup", cg.ref.String(), "why", why)
}

func (l *Loop) classify(p string) int { return l.policy.ClassOf(p) }

// classifyCG puts cg in its class and notes what the deny list says of
// it (both change only with its path or the policy).
func (l *Loop) classifyCG(cg *cgState) {
	cg.class = l.classify(cg.ref.Path)
	cg.deny = l.deny.Denied(cg.ref.Path, l.className(cg))
	cg.denyAlways = l.deny.Always(cg.ref.Path)
}

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

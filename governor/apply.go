package governor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// apply is the only code that calls the Actuator: it carries out the
// intents the controllers decided (applyIntents: knob writes and restores
// are batched, recorded once, then made; reclaim, freeze, thaw and kill
// happen at once), each checked against the deny list, recorded in the
// state file before it happens, then audited (emit); and it makes the
// reads prepare and the hand-back checks ask for. Dry-run is the wrapper
// New puts around the Actuator here.

// applyIntents carries out what controller c decided this tick.
func (l *Loop) applyIntents(ctx context.Context, c controller, v *View, ins []Intent) {
	reclaimed := false // a memory.reclaim was written already
	for i := range ins {
		in := &ins[i]
		cg := l.cgs[in.Cgroup.ID]
		if cg == nil {
			continue
		}
		switch in.Kind {
		case IntentWrite:
			l.set(cg, in.Knob, in.Value, in.Controller, in.Reason)
		case IntentRestore:
			l.release(cg, in.Knob, in.Controller, in.Reason)
		case IntentReclaim:
			if rc, ok := c.(*reclaimCtl); ok {
				l.applyReclaim(ctx, rc, cg, in, reclaimed)
				reclaimed = true
			}
		case IntentFreeze:
			ok := l.freeze(ctx, cg, in.Controller, l.withHook(ctx, c, cg, in.Reason))
			l.tell(c, in, ok, l.clock.Now(), cg)
		case IntentThaw:
			if f := l.frozen[cg.ref.ID]; f != nil {
				l.thaw(ctx, f, in.Reason)
			}
			l.tell(c, in, true, v.Now, cg)
		case IntentKill:
			l.tell(c, in, l.kill(ctx, cg, in), v.Now, cg)
		}
	}
}

// tell reports an intent's outcome to a controller that keeps state on it.
func (l *Loop) tell(c controller, in *Intent, ok bool, at time.Time, cg *cgState) {
	if lr, is := c.(*lastResortCtl); is {
		lr.applied(in, ok, at, cg)
	}
}

// withHook runs a last resort's hook before its freeze and returns the
// reason with the hook's outcome.
func (l *Loop) withHook(ctx context.Context, c controller, cg *cgState, reason string) string {
	lr, ok := c.(*lastResortCtl)
	if !ok {
		return reason
	}
	if out := l.runHook(ctx, lr.c, cg.ref, reason); out != "" {
		reason += "; " + out
	}
	return reason
}

// applyReclaim writes memory.reclaim, measures what it freed and audits it.
// After an earlier write this tick (which may have reclaimed from this
// cgroup too, a member nested in another) the accounting is read again
// just before the write, so the result counts this write alone.
func (l *Loop) applyReclaim(ctx context.Context, rc *reclaimCtl, cg *cgState, in *Intent, again bool) {
	p := planOf(in)
	if b := in.Reclaim; b != nil && b.Earlier != nil {
		l.reportEarlierReclaim(rc, cg, in.Controller, b.Earlier, p)
	}
	if in.Value <= 0 {
		return
	}
	if again && p.measured {
		if m, err := l.readMemory(ctx, cg); err == nil {
			p.before = m
		}
	}
	err := l.exec(ctx, effect{kind: effReclaim, cg: cg, value: in.Value, owner: in.Controller})
	if errors.Is(err, errRefused) {
		return
	}
	if errors.Is(err, ErrInProgress) {
		// The write before has not finished: nothing was written now.
		l.log.Debug("reclaim skipped: the previous write still runs in the kernel", "controller", in.Controller, "cgroup", cg.ref.String())
		return
	}
	l.result.Actions++
	var after MemoryState
	measured := false
	if err == nil && p.measured {
		if m, rerr := l.readMemory(ctx, cg); rerr == nil {
			after, measured = m, true
		}
	}
	if errors.Is(err, ErrTimeout) {
		// memory.reclaim works synchronously in the writer: on a busy host
		// or with slow swap a large request outlives the write deadline.
		// That is no failure; the kernel goes on, and the next look
		// measures what it freed.
		rc.stateOf(cg.ref.ID).slow = &EarlierReclaim{Requested: in.Value, Usage: p.usage, Pressure: p.pressure, Reason: in.Reason,
			Before: p.before, Measured: p.measured, At: l.clock.Now()}
		l.log.Info("reclaim write outlived its deadline; the kernel goes on with it and the next look measures it",
			"controller", in.Controller, "cgroup", cg.ref.String(), "requested", FormatBytes(in.Value), "deadline", l.cfg.WriteTimeout.String())
		return
	}
	res := rc.measure(l, cg, p, err, after, measured) // reclaim.go: what it achieved
	if err != nil {
		l.result.Errors++
		l.emit(Action{Controller: in.Controller, Cgroup: cg.ref, Kind: "reclaim", Knob: "memory.reclaim", New: FormatBytes(in.Value), Err: err, Reclaim: res})
		return
	}
	l.emit(Action{Controller: in.Controller, Cgroup: cg.ref, Kind: "reclaim", Knob: "memory.reclaim", Old: FormatBytes(p.usage), New: FormatBytes(in.Value), Reason: in.Reason, Reclaim: res})
}

// reportEarlierReclaim audits a write that outlived its deadline at an
// earlier look, measured against what this look read (p.before): its
// action line comes now, with what it freed, and its result feeds the
// ramp and the futility count as a prompt write's would.
func (l *Loop) reportEarlierReclaim(rc *reclaimCtl, cg *cgState, controller string, e *EarlierReclaim, now reclaimPlan) {
	was := reclaimPlan{amount: e.Requested, usage: e.Usage, pressure: e.Pressure, why: e.Reason, before: e.Before, measured: e.Measured}
	res := rc.measure(l, cg, was, nil, now.before, now.measured)
	l.emit(Action{Controller: controller, Cgroup: cg.ref, Kind: "reclaim", Knob: "memory.reclaim", Old: FormatBytes(e.Usage), New: FormatBytes(e.Requested),
		Reason: e.Reason + "; the write outlived its deadline at " + e.At.UTC().Format(time.RFC3339) + " and is measured at the next look", Reclaim: res})
}

// kill kills a frozen victim, audits it and thaws the emptied cgroup. It
// reports whether the kill was made.
func (l *Loop) kill(ctx context.Context, cg *cgState, in *Intent) bool {
	err := l.exec(ctx, effect{kind: effKill, cg: cg, owner: in.Controller})
	if errors.Is(err, errRefused) {
		return false // not recorded: stays frozen, tried again next tick
	}
	l.result.Actions++
	if err != nil {
		l.result.Errors++
		l.emit(Action{Controller: in.Controller, Cgroup: cg.ref, Kind: "kill", Knob: "cgroup.kill", New: "1", Err: err})
		return false
	}
	l.emit(Action{Controller: in.Controller, Cgroup: cg.ref, Kind: "kill", Knob: "cgroup.kill", New: "1", Reason: in.Reason})
	if f := l.frozen[cg.ref.ID]; f != nil {
		l.thaw(ctx, f, "killed; thawing the empty cgroup")
	}
	return true
}

// read returns a knob's current value, at most one read per cgroup, knob
// and tick.
func (l *Loop) read(ctx context.Context, cg *cgState, k Knob) (Setting, error) {
	r := &cg.cached().reads[k]
	if r.tick == l.tick {
		return r.s, r.err
	}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	s, err := l.act.Read(cctx, cg.ref, k)
	cancel()
	*r = cachedRead{tick: l.tick, s: s, err: err}
	return s, err
}

// errNoMemoryReader: the actuator cannot read memory accounting (or
// dry-run: nothing is written, so there is nothing to measure).
var errNoMemoryReader = errors.New("no memory reader")

// readMemory reads a cgroup's memory accounting.
func (l *Loop) readMemory(ctx context.Context, cg *cgState) (MemoryState, error) {
	mr := l.memReader()
	if mr == nil {
		return MemoryState{}, errNoMemoryReader
	}
	rctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	return mr.ReadMemory(rctx, cg.ref)
}

// plan is a knob write decided by a controller, applied after every
// controller has run so the state file is saved once before the batch.
type plan struct {
	cg      *cgState
	knob    Knob
	value   int64
	owner   string
	reason  string // rule and signal values, for the log line
	release bool   // write the original back and stop managing
}

// set plans a write of knob k on cg. Controllers call it; it enforces the
// deny list, hand-backs and ownership.
func (l *Loop) set(cg *cgState, k Knob, v int64, owner, reason string) {
	if !l.refuse(cg, l.deniedFor(cg, k, owner)) || cg.handedBack[k] || cg.unsupported[k] {
		return
	}
	if m := l.managed[knobKey{cg.ref.ID, k}]; m != nil && m.owner != owner {
		l.warnOnceCG(cg, "owner:"+k.String(), "two controllers want the same knob; the first keeps it",
			"cgroup", cg.ref.String(), "knob", k.String(), "owner", m.owner, "other", owner)
		return
	}
	l.plans = append(l.plans, plan{cg: cg, knob: k, value: v, owner: owner, reason: reason})
}

// release plans restoring a managed knob's original value.
func (l *Loop) release(cg *cgState, k Knob, owner, reason string) {
	m := l.managed[knobKey{cg.ref.ID, k}]
	if m == nil || m.owner != owner {
		return
	}
	l.plans = append(l.plans, plan{cg: cg, knob: k, owner: owner, reason: reason, release: true})
}

// managedBy returns the record of a knob the governor manages, or nil.
func (l *Loop) managedBy(cg *cgState, k Knob) *managedKnob {
	return l.managed[knobKey{cg.ref.ID, k}]
}

// apply records every planned write in the state file, then performs them.
func (l *Loop) apply(ctx context.Context) {
	if len(l.plans) == 0 {
		return
	}
	// A knob changes at the tick that decided it: cooldowns run from tick
	// to tick, as a replay (whose clock stands still within a tick) sees
	// them. With the wall clock at the write, a step that took 50 ms put a
	// 2 s cooldown past the tick 2 s later, and a replay raised memory.high
	// one tick before the live loop had.
	now := l.result.Time
	if now.IsZero() {
		now = l.clock.Now()
	}
	type step struct {
		p      plan
		m      *managedKnob
		isNew  bool
		oldVal int64
	}
	steps := make([]step, 0, len(l.plans))
	for _, p := range l.plans {
		key := knobKey{p.cg.ref.ID, p.knob}
		m := l.managed[key]
		if p.release {
			if m != nil {
				steps = append(steps, step{p: p, m: m, oldVal: m.written})
			}
			continue
		}
		if m == nil {
			s, err := l.read(ctx, p.cg, p.knob)
			if err != nil {
				l.readFailed(p.cg, p.knob, err)
				continue
			}
			if s.Value == p.value {
				continue
			}
			m = &managedKnob{ref: p.cg.ref, knob: p.knob, orig: s, written: s.Value, owner: p.owner}
			l.managed[key] = m
			steps = append(steps, step{p: p, m: m, isNew: true, oldVal: s.Value})
		} else {
			if m.written == p.value {
				continue
			}
			steps = append(steps, step{p: p, m: m, oldVal: m.written})
		}
		m.previous, m.written, m.changed = m.written, p.value, now
	}
	l.plans = l.plans[:0]
	if len(steps) == 0 {
		return
	}
	// Every entry of the batch is in l.managed now: the executor's first
	// write saves them all, so a crash from there on leaves a state file
	// that names every knob that may have changed.
	l.dirty = true

	for _, st := range steps {
		p, m := st.p, st.m
		key := knobKey{p.cg.ref.ID, p.knob}
		e := effect{kind: effWrite, cg: p.cg, knob: p.knob, value: p.value, owner: p.owner}
		if p.release {
			e = effect{kind: effRestore, cg: p.cg, knob: p.knob, orig: m.orig, owner: p.owner, recovered: m.recovered}
		}
		err := l.exec(ctx, e)
		if errors.Is(err, errRefused) {
			// Not recorded (or refused): nothing was written, so the
			// record of it goes again.
			if !p.release {
				if st.isNew {
					delete(l.managed, key)
				} else {
					m.written = m.previous
				}
				l.dirty = true
			}
			continue
		}
		l.result.Actions++
		if p.release {
			if errors.Is(err, ErrTimeout) {
				// The restore may still complete in the kernel: accept
				// either value on the next tick, and forget the knob if
				// the original is what lands.
				l.result.Errors++
				m.previous, m.pending, m.releasing = m.orig.Value, true, true
				l.dirty = true
				l.log.Error("restoring knob timed out; will check what the kernel holds on the next tick", "cgroup", p.cg.ref.String(), "knob", p.knob.String(), "original", m.orig.Raw, "error", err)
				continue
			}
			if err != nil && !errors.Is(err, ErrGone) {
				l.result.Errors++
				l.log.Error("restoring knob failed; will retry", "cgroup", p.cg.ref.String(), "knob", p.knob.String(), "original", m.orig.Raw, "error", err)
				continue
			}
			delete(l.managed, key)
			l.dirty = true
			l.emit(Action{Controller: p.owner, Cgroup: p.cg.ref, Kind: "restore", Knob: p.knob.String(), Old: p.knob.FormatValue(st.oldVal), New: m.orig.Raw, Reason: p.reason})
			continue
		}
		switch {
		case err == nil:
			if p.cg.failing[p.knob] {
				p.cg.failing[p.knob] = false
				l.log.Info("write works again", "cgroup", p.cg.ref.String(), "knob", p.knob.String())
			}
			if !l.cfg.DryRun {
				// The kernel rounds some values (memory to pages, cpu.max
				// to whole microseconds of quota): remember what it holds.
				p.cg.cached().reads[p.knob].tick = 0
				if s, rerr := l.read(ctx, p.cg, p.knob); rerr == nil && s.Value != m.written {
					m.written = s.Value
					l.dirty = true
				}
			}
			l.emit(Action{Controller: p.owner, Cgroup: p.cg.ref, Kind: "write", Knob: p.knob.String(), Old: p.knob.FormatValue(st.oldVal), New: p.knob.FormatValue(p.value), Reason: p.reason})
		case errors.Is(err, ErrTimeout):
			l.result.Errors++
			m.pending = true
			l.log.Error("write timed out; will check what the kernel holds on the next tick", "cgroup", p.cg.ref.String(), "knob", p.knob.String(), "value", p.knob.FormatValue(p.value), "error", err)
		default:
			l.result.Errors++
			// The audit line is the one line a failure gets: an error the
			// first time, debug for repeats of the same knob's failure
			// until a write of it works again (and for a cgroup that
			// vanished under the write).
			repeat := p.cg.failing[p.knob] || errors.Is(err, ErrGone)
			if !errors.Is(err, ErrGone) {
				p.cg.failing[p.knob] = true
			}
			l.emit(Action{Controller: p.owner, Cgroup: p.cg.ref, Kind: "write", Knob: p.knob.String(), Old: p.knob.FormatValue(st.oldVal), New: p.knob.FormatValue(p.value), Reason: p.reason, Err: err, Repeat: repeat})
			if errors.Is(err, ErrUnsupported) {
				p.cg.unsupported[p.knob] = true
			}
			if st.isNew {
				delete(l.managed, key)
			} else {
				m.written = m.previous
			}
			l.dirty = true
		}
	}
}

// releaseUnclaimed restores knobs whose owner no longer exists in the policy
// or whose cgroup is no longer in the owner's target class (after a reload
// or a policy change across a restart).
func (l *Loop) releaseUnclaimed(ctx context.Context) {
	targets := make(map[string]string, len(l.ctrls))
	for _, c := range l.ctrls {
		targets[c.name()] = c.target()
	}
	for key, m := range l.managed {
		cg := l.cgs[key.id]
		if cg == nil {
			continue
		}
		target, ok := targets[m.owner]
		_, off := l.disabled[m.owner]
		if ok && !off && cg.class >= 0 && l.policy.Classes[cg.class].Name == target {
			continue
		}
		l.plans = append(l.plans, plan{cg: cg, knob: key.knob, owner: m.owner, reason: "no rule of the current policy manages it", release: true})
	}
	for id, f := range l.frozen {
		target, ok := targets[f.owner]
		cg := l.cgs[id]
		if ok && cg != nil && cg.class >= 0 && l.policy.Classes[cg.class].Name == target {
			continue
		}
		l.thaw(ctx, f, "no rule of the current policy froze it")
	}
	l.apply(ctx)
}

// Close restores every knob the governor changed and thaws what it froze.
// It returns the first error; knobs it could not restore stay in the state
// file for the next start.
func (l *Loop) Close(ctx context.Context) error {
	var first error
	keys := make([]knobKey, 0, len(l.managed))
	for k := range l.managed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].id != keys[j].id {
			return keys[i].id < keys[j].id
		}
		return keys[i].knob < keys[j].knob
	})
	restored := 0
	for _, key := range keys {
		m := l.managed[key]
		wctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
		if !l.cfg.DryRun {
			if s, err := l.act.Read(wctx, m.ref, key.knob); err == nil && s.Value != m.written && !(m.pending && s.Value == m.previous) {
				cancel()
				l.log.Warn("knob changed by someone else; not restoring it", "cgroup", m.ref.String(), "knob", key.knob.String(), "now", s.Raw, "original", m.orig.Raw)
				delete(l.managed, key)
				continue
			}
		}
		cancel()
		err := l.exec(ctx, effect{kind: effRestore, cg: l.cgs[key.id], ref: m.ref, knob: key.knob, orig: m.orig, owner: m.owner, recovered: m.recovered})
		if errors.Is(err, errRefused) {
			delete(l.managed, key) // a recovered entry the checks refuse: left untouched
			continue
		}
		if err != nil && !errors.Is(err, ErrGone) {
			l.log.Error("cannot restore knob", "cgroup", m.ref.String(), "knob", key.knob.String(), "original", m.orig.Raw, "error", err)
			if first == nil {
				first = fmt.Errorf("restore %s of %s: %w", key.knob, m.ref, err)
			}
			continue
		}
		delete(l.managed, key)
		restored++
		l.emit(Action{Controller: m.owner, Cgroup: m.ref, Kind: "restore", Knob: key.knob.String(), Old: key.knob.FormatValue(m.written), New: m.orig.Raw, Reason: "governor stopping"})
	}
	for _, f := range l.frozen {
		l.thaw(ctx, f, "governor stopping")
	}
	if len(l.frozen) > 0 && first == nil {
		first = errors.New("some cgroups could not be thawed")
	}
	l.log.Info("restored every changed knob", "restored", restored, "left", len(l.managed)+len(l.frozen))
	l.save()
	return first
}

// save writes the state file (not in dry-run), warning once while it
// cannot.
func (l *Loop) save() {
	if err := l.record(); err != nil {
		l.warnOnce("save-state", "cannot save state file; no new change is made until it can be recorded", "file", l.cfg.StatePath, "error", err)
		return
	}
	delete(l.warned, "save-state")
}

// record writes the state file: every knob the governor holds changed and
// every cgroup it froze (nothing in dry-run or without a state path).
func (l *Loop) record() error {
	l.dirty = false
	if l.cfg.StatePath == "" || l.cfg.DryRun {
		return nil
	}
	entries := make([]StateEntry, 0, len(l.managed)+len(l.frozen))
	for key, m := range l.managed {
		prev := m.previous
		entries = append(entries, StateEntry{ID: key.id, Path: m.ref.Path, Knob: key.knob.String(),
			Original: m.orig.Raw, OrigVal: m.orig.Value, Written: m.written, Previous: prev, Owner: m.owner})
	}
	for id, f := range l.frozen {
		entries = append(entries, StateEntry{ID: id, Path: f.ref.Path, Knob: freezeKnob, Original: "0", Written: 1, Owner: f.owner})
	}
	if err := saveState(l.cfg.StatePath, entries, l.clock.Now()); err != nil {
		l.dirty = true
		return err
	}
	return nil
}

// ---------------------------------------------------------------------------
// The executor: every effect on a cgroup goes through exec, which checks it
// against the deny list and protected classes and records it in the state
// file before it happens.

// effectKind is what an effect does.
type effectKind uint8

const (
	effWrite   effectKind = iota // a knob set to a value
	effRestore                   // a knob set back to its original
	effReclaim                   // memory.reclaim
	effFreeze                    // cgroup.freeze 1
	effThaw                      // cgroup.freeze 0
	effKill                      // cgroup.kill
)

var effectKnobs = [...]string{effReclaim: "memory.reclaim", effFreeze: freezeKnob, effThaw: freezeKnob, effKill: "cgroup.kill"}

// undo reports whether the effect only takes back a change the state file
// already names (a restore or thaw). Undoing needs no new record and is not
// held back by a state file that cannot be saved: after a crash the entry
// still on disk finds the original (or a thawed cgroup) and does nothing.
func (k effectKind) undo() bool { return k == effRestore || k == effThaw }

// noKnob stands for effects that are not a Knob (reclaim, freeze, kill) in
// deniedFor.
const noKnob = NumKnobs

// effect is one change to a cgroup, as a value: what a controller (or the
// recovery of an earlier run's state) decided, carried out by exec.
type effect struct {
	kind  effectKind
	cg    *cgState // nil only for undoing on a cgroup no longer listed
	ref   Ref      // defaults to cg.ref
	knob  Knob     // write, restore
	value int64    // write: the value; reclaim: bytes
	orig  Setting  // restore
	owner string
	// recovered: an undo of an entry from an earlier run's state file,
	// which is checked like a fresh effect (the file may be forged).
	recovered bool
}

func (e *effect) knobName() string {
	if e.kind == effWrite || e.kind == effRestore {
		return e.knob.String()
	}
	return effectKnobs[e.kind]
}

// errRefused: exec did not carry out the effect (refused by the deny list
// or a protected class, or not recordable); it has said why.
var errRefused = errors.New("effect refused")

// recordWarnEvery spaces the warnings about effects not made because the
// state file cannot be saved.
const recordWarnEvery = time.Minute

// exec carries out one effect. Its rule: an effect that changes a cgroup
// (knob write, memory.reclaim, freeze, kill) happens only once the state
// file on disk names every change the governor holds, this one included
// (the caller puts a new knob or freeze in l.managed/l.frozen first, which
// marks the state dirty). A kill adds no entry, but it cannot be undone:
// the state is saved before every kill, so none happens while the state
// file cannot be written. A reclaim adds no entry and restores nothing; it
// waits only for an unsaved state (saving before every reclaim would cost
// an fsync each). When the state cannot be saved the effect does not
// happen, and a warning says so at most once per recordWarnEvery.
// Restores and thaws (undo) go ahead regardless.
func (l *Loop) exec(ctx context.Context, e effect) error {
	if e.cg != nil && e.ref == (Ref{}) {
		e.ref = e.cg.ref
	}
	if !e.kind.undo() || e.recovered {
		k := e.knob
		if e.kind != effWrite && e.kind != effRestore {
			k = noKnob
		}
		var why string
		if e.cg == nil {
			why = "the cgroup is not in the current snapshot"
		} else {
			why = l.deniedFor(e.cg, k, e.owner)
		}
		if why != "" {
			if e.recovered {
				l.refuseRecovered(e.cg, e.ref, e.knobName(), e.owner, why)
			} else if e.cg != nil {
				l.refuse(e.cg, why)
			}
			return errRefused
		}
	}
	if !e.kind.undo() && (l.dirty || e.kind == effKill) {
		if err := l.record(); err != nil {
			l.unrecorded++
			if now := l.clock.Now(); l.unrecordedAt.IsZero() || now.Sub(l.unrecordedAt) >= recordWarnEvery {
				l.log.Warn("cannot record the change in the state file; not making it", "cgroup", e.ref.String(), "knob", e.knobName(),
					"controller", e.owner, "file", l.cfg.StatePath, "error", err, "not_made_since_last_warning", l.unrecorded)
				l.unrecordedAt, l.unrecorded = now, 0
			}
			return errRefused
		}
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	switch e.kind {
	case effWrite:
		return l.act.Write(wctx, e.ref, e.knob, e.value)
	case effRestore:
		return l.act.Restore(wctx, e.ref, e.knob, e.orig)
	case effReclaim:
		return l.act.Reclaim(wctx, e.ref, e.value)
	case effFreeze:
		return l.act.Freeze(wctx, e.ref, true)
	case effThaw:
		return l.act.Freeze(wctx, e.ref, false)
	case effKill:
		return l.act.Kill(wctx, e.ref)
	}
	return fmt.Errorf("unknown effect %d", e.kind)
}

// freeze records, then freezes a cgroup. A cgroup someone else froze
// already is left alone (and to them) for this trigger episode.
func (l *Loop) freeze(ctx context.Context, cg *cgState, owner, reason string) bool {
	if !l.allowed(cg) {
		return false
	}
	if on, err := l.readFreeze(ctx, cg); err == nil && on {
		cg.freezeBack = true
		l.log.Warn("cgroup already frozen by someone else; leaving it to them", "controller", owner, "cgroup", cg.ref.String())
		return false
	}
	f := &frozenCG{ref: cg.ref, owner: owner, since: l.clock.Now()}
	l.frozen[cg.ref.ID] = f
	l.dirty = true
	err := l.exec(ctx, effect{kind: effFreeze, cg: cg, owner: owner})
	if errors.Is(err, errRefused) {
		delete(l.frozen, cg.ref.ID)
		l.dirty = true
		return false
	}
	l.result.Actions++
	if err != nil {
		l.result.Errors++
		l.emit(Action{Controller: owner, Cgroup: cg.ref, Kind: "freeze", Knob: "cgroup.freeze", Old: "0", New: "1", Reason: reason, Err: err})
		// It may be partly frozen: keep the record so it gets thawed.
		return false
	}
	l.emit(Action{Controller: owner, Cgroup: cg.ref, Kind: "freeze", Knob: "cgroup.freeze", Old: "0", New: "1", Reason: reason})
	return true
}

// thaw unfreezes a cgroup the governor froze and forgets the record.
func (l *Loop) thaw(ctx context.Context, f *frozenCG, reason string) {
	err := l.exec(ctx, effect{kind: effThaw, cg: l.cgs[f.ref.ID], ref: f.ref, owner: f.owner, recovered: f.recovered})
	if errors.Is(err, errRefused) {
		delete(l.frozen, f.ref.ID) // a recovered entry the checks refuse: left untouched
		l.dirty = true
		return
	}
	l.result.Actions++
	if err != nil && !errors.Is(err, ErrGone) {
		l.result.Errors++
		f.thawing = true
		l.log.Error("thaw failed; will retry", "cgroup", f.ref.String(), "error", err)
		return
	}
	delete(l.frozen, f.ref.ID)
	l.dirty = true
	l.emit(Action{Controller: f.owner, Cgroup: f.ref, Kind: "thaw", Knob: "cgroup.freeze", Old: "1", New: "0", Reason: reason})
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

// memReader returns the reader of memory accounting, or nil (none, or
// dry-run: nothing is written, so there is nothing to measure).
func (l *Loop) memReader() MemoryReader {
	if l.cfg.DryRun {
		return nil
	}
	mr, _ := l.cfg.Actuator.(MemoryReader)
	return mr
}

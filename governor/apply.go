package governor

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

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
	ok := l.mayTouch(cg, k)
	if l.protectors[owner] && (k == MemoryLow || k == MemoryMin) {
		ok = l.mayProtect(cg, k)
	}
	if !ok {
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
	now := l.clock.Now()
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
	// Record intent before touching anything: a crash from here on leaves
	// a state file that names every knob that may have changed.
	l.save()

	for _, st := range steps {
		p, m := st.p, st.m
		key := knobKey{p.cg.ref.ID, p.knob}
		wctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
		var err error
		if p.release {
			err = l.act.Restore(wctx, p.cg.ref, p.knob, m.orig)
		} else {
			err = l.act.Write(wctx, p.cg.ref, p.knob, p.value)
		}
		cancel()
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
				p.cg.reads[p.knob].tick = 0
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
			l.emit(Action{Controller: p.owner, Cgroup: p.cg.ref, Kind: "write", Knob: p.knob.String(), Old: p.knob.FormatValue(st.oldVal), New: p.knob.FormatValue(p.value), Reason: p.reason, Err: err})
			if errors.Is(err, ErrUnsupported) {
				p.cg.unsupported[p.knob] = true
			}
			if !errors.Is(err, ErrGone) {
				// The first failure is an error; repeats of the same knob's
				// failure stay at debug until a write succeeds again.
				logf := l.log.Error
				if p.cg.failing[p.knob] {
					logf = l.log.Debug
				}
				p.cg.failing[p.knob] = true
				logf("write failed", "controller", p.owner, "cgroup", p.cg.ref.String(), "knob", p.knob.String(), "value", p.knob.FormatValue(p.value), "error", err)
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
		err := l.act.Restore(wctx, m.ref, key.knob, m.orig)
		cancel()
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

// save writes the state file (not in dry-run).
func (l *Loop) save() {
	l.dirty = false
	if l.cfg.StatePath == "" || l.cfg.DryRun {
		return
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
		l.warnOnce("save-state", "cannot save state file; changes may not be restorable after a crash", "file", l.cfg.StatePath, "error", err)
		return
	}
	delete(l.warned, "save-state")
}

// freezeCall freezes or thaws with the write timeout.
func (l *Loop) freezeCall(ctx context.Context, ref Ref, on bool) error {
	wctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	return l.act.Freeze(wctx, ref, on)
}

// freeze records, then freezes a cgroup.
func (l *Loop) freeze(ctx context.Context, cg *cgState, owner, reason string) bool {
	if !l.allowed(cg) {
		return false
	}
	f := &frozenCG{ref: cg.ref, owner: owner, since: l.clock.Now()}
	l.frozen[cg.ref.ID] = f
	l.save()
	l.result.Actions++
	if err := l.freezeCall(ctx, cg.ref, true); err != nil {
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
	l.result.Actions++
	if err := l.freezeCall(ctx, f.ref, false); err != nil && !errors.Is(err, ErrGone) {
		l.result.Errors++
		l.log.Error("thaw failed; will retry", "cgroup", f.ref.String(), "error", err)
		return
	}
	delete(l.frozen, f.ref.ID)
	l.dirty = true
	l.emit(Action{Controller: f.owner, Cgroup: f.ref, Kind: "thaw", Knob: "cgroup.freeze", Old: "1", New: "0", Reason: reason})
}

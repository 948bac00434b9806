package governor

import (
	"context"
	"errors"
)

// Crash adoption: the state file of an earlier run is resolved against the
// first snapshot (knobs re-adopted or handed back, frozen cgroups thawed).

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

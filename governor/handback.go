package governor

import (
	"context"
	"errors"
)

// Hand-back: every tick the loop checks that each knob it manages (and
// each cgroup it froze) still holds what it wrote; one someone else changed
// is handed back and left alone.

// FreezeReader is implemented by actuators that can read cgroup.freeze
// back (the state asked for, which changes at once, not cgroup.events'
// "frozen"). With it the loop treats cgroup.freeze like the knobs it
// manages: a cgroup thawed by someone else is handed back, and one frozen
// by someone else is not taken over.
type FreezeReader interface {
	FreezeState(ctx context.Context, cg Ref) (bool, error)
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
		if m.pending && (landed(key.knob, s.Value, m.written) || s.Value == m.previous) {
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

// landed tells whether got is what a write of want that timed out may have
// left: want itself, or want as the way there rounds it. A successful write
// is read back (the loop remembers what the kernel holds); a timed-out one
// is only known as asked, so a value rounded on the way must not be taken
// for someone else's: memory limits go to whole pages, and the systemd
// actuator rounds a unit's cpu.max quota to whole percent of a CPU
// (systemd keeps CPUQuota= so). Seen on Debian 12: a SetUnitProperties of
// 0.203cpu timed out during a daemon-reload, 0.2cpu landed, the knob was
// handed back and never restored.
func landed(k Knob, got, want int64) bool {
	if got == want {
		return true
	}
	if got == Unlimited || want == Unlimited {
		return false
	}
	d := got - want
	if d < 0 {
		d = -d
	}
	switch k {
	case CPUMax:
		return d < 10000 // 1 % of a CPU, in µs per second
	case MemoryHigh, MemoryMax, MemoryLow, MemoryMin:
		return d < 4096*16 // a page, up to 64 KiB ones
	}
	return false
}

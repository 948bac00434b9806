package governor

import (
	"context"
	"errors"
)

// Knob reads: at most one read per cgroup, knob and tick.

type cachedRead struct {
	tick uint64
	s    Setting
	err  error
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

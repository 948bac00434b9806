package governor

import (
	"context"
	"errors"
)

// Before any controller decides, the loop reads what they will need this
// tick (prepare): knob values, memory accounting, victim hints, each at
// most once. decide and explain then read only these values.

type cachedRead struct {
	tick uint64
	s    Setting
	err  error
}

type cachedMem struct {
	tick uint64
	m    MemoryState
	err  error
}

// cgCache holds what was read of a cgroup (at most once a tick).
type cgCache struct {
	reads [NumKnobs]cachedRead
	mem   cachedMem // memory accounting read for reclaim (prepare)
}

// cached returns cg's read cache, made on first use.
func (cg *cgState) cached() *cgCache {
	if cg.cache == nil {
		cg.cache = new(cgCache)
	}
	return cg.cache
}

// wants collects what the controllers will read this tick, and keeps the
// View's slices of what was read for reuse.
type wants struct {
	knobs []knobWant
	mems  []*cgState
	hints [][]candidate

	knobVals []KnobValue
	memVals  []MemoryValue
}

type knobWant struct {
	cg *cgState
	k  Knob
}

func (w *wants) knob(cg *cgState, k Knob) { w.knobs = append(w.knobs, knobWant{cg, k}) }
func (w *wants) memory(cg *cgState)       { w.mems = append(w.mems, cg) }

func (w *wants) reset() {
	clear(w.knobs)
	clear(w.mems)
	clear(w.hints)
	w.knobs, w.mems, w.hints = w.knobs[:0], w.mems[:0], w.hints[:0]
}

// prepare asks every enabled controller what it will read this tick and
// reads it.
func (l *Loop) prepare(ctx context.Context, v *View) {
	w := &l.want
	w.reset()
	for _, c := range l.ctrls {
		if _, off := l.disabled[c.name()]; !off {
			c.wants(l, v, w)
		}
	}
	v.Knobs, v.Memory = w.knobVals[:0], w.memVals[:0]
	for _, kw := range w.knobs {
		s, err := l.read(ctx, kw.cg, kw.k) // at most once a tick
		kv := KnobValue{Cgroup: kw.cg.ref.ID, Knob: kw.k, Value: s}
		if err != nil {
			kv.Err = err.Error()
			l.readFailed(kw.cg, kw.k, err)
		}
		v.Knobs = append(v.Knobs, kv)
	}
	for _, cg := range w.mems {
		if c := cg.cached(); c.mem.tick == l.tick {
			continue
		}
		m, err := l.readMemory(ctx, cg)
		if errors.Is(err, errNoMemoryReader) || errors.Is(err, ErrUnsupported) {
			continue
		}
		cg.cache.mem = cachedMem{tick: l.tick, m: m, err: err}
		mv := MemoryValue{Cgroup: cg.ref.ID, State: m}
		if err != nil {
			mv.Err = err.Error()
			l.warnOnceCG(cg, "reclaim-read", "cannot read memory accounting; reclaim goes on unmeasured", "cgroup", cg.ref.String(), "error", err)
		}
		v.Memory = append(v.Memory, mv)
	}
	w.knobVals, w.memVals = v.Knobs, v.Memory
	for _, cands := range w.hints {
		l.readHints(cands)
	}
}

// current returns the value in force: what the governor wrote for a knob it
// manages (verified each tick by checkManaged), else the value prepare read
// this tick; false if neither (not wanted, or the read failed).
func (l *Loop) current(cg *cgState, k Knob) (int64, bool) {
	if m := l.managed[knobKey{cg.ref.ID, k}]; m != nil {
		return m.written, true
	}
	if cg.cache == nil {
		return 0, false
	}
	if r := &cg.cache.reads[k]; r.tick == l.tick && r.err == nil {
		return r.s.Value, true
	}
	return 0, false
}

// memoryRead returns the memory accounting prepare read for cg this tick.
func (l *Loop) memoryRead(cg *cgState) (MemoryState, bool) {
	if cg.cache == nil {
		return MemoryState{}, false
	}
	if r := &cg.cache.mem; r.tick == l.tick && r.err == nil {
		return r.m, true
	}
	return MemoryState{}, false
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

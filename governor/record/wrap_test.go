package record

import (
	"context"
	"testing"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/govtest"
)

// fullActuator has every optional interface the loop looks for on its
// actuator.
type fullActuator struct {
	*govtest.Actuator
}

func (fullActuator) ReadMemory(context.Context, governor.Ref) (governor.MemoryState, error) {
	return governor.MemoryState{Current: 123 << 20, Anon: 100 << 20}, nil
}

func (fullActuator) FreezeState(context.Context, governor.Ref) (bool, error) { return true, nil }

func (fullActuator) EnablesController(ctl string) bool { return ctl == "memory" }

// The recorder wraps the daemon's actuator (it is on by default). A wrapper
// that hides one of the actuator's optional interfaces turns a feature off
// without a word: reclaim behind it measured nothing and its step never
// ramped (the reclaimanon scenario went from 525 MiB in 74 s to 737 MiB
// after 300 s). Each interface must pass through.
func TestWrapKeepsOptionalInterfaces(t *testing.T) {
	rec, err := Open(Options{Dir: t.TempDir(), Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w := rec.Wrap(fullActuator{govtest.NewActuator()})
	ctx, cg := context.Background(), governor.Ref{ID: 7, Path: "batch.slice"}
	mr, ok := w.(governor.MemoryReader)
	if !ok {
		t.Fatal("the wrapper hides governor.MemoryReader")
	}
	if m, err := mr.ReadMemory(ctx, cg); err != nil || m.Current != 123<<20 {
		t.Errorf("ReadMemory through the wrapper: %+v, %v", m, err)
	}
	fr, ok := w.(governor.FreezeReader)
	if !ok {
		t.Fatal("the wrapper hides governor.FreezeReader")
	}
	if on, err := fr.FreezeState(ctx, cg); err != nil || !on {
		t.Errorf("FreezeState through the wrapper: %v, %v", on, err)
	}
	ce, ok := w.(governor.ControllerEnabler)
	if !ok {
		t.Fatal("the wrapper hides governor.ControllerEnabler")
	}
	if !ce.EnablesController("memory") || ce.EnablesController("cpu") {
		t.Error("EnablesController not forwarded")
	}

	// Around an actuator without them, the wrapper says unsupported.
	plain := rec.Wrap(govtest.NewActuator())
	if _, err := plain.(governor.MemoryReader).ReadMemory(ctx, cg); err == nil {
		t.Error("ReadMemory around an actuator without it: no error")
	}
}

// The replay's actuator holds memory limits as the kernel does, in whole
// pages: the live loop keeps the value it reads back after a write, and an
// unrounded one made the replay hand back every memory.high it raised.
func TestReplayHoldsKernelRounding(t *testing.T) {
	m := newMemActuator(&player{})
	ctx, cg := context.Background(), governor.Ref{ID: 9, Path: "vmtest/memhigh/tight"}
	for _, tc := range []struct {
		knob      governor.Knob
		write     int64
		wantValue int64
	}{
		{governor.MemoryHigh, 322122547, 322121728}, // 307.2 MiB
		{governor.MemoryLow, 4096*10 + 1, 4096 * 10},
		{governor.MemoryMax, governor.Unlimited, governor.Unlimited},
		{governor.CPUWeight, 77, 77},
	} {
		if err := m.Write(ctx, cg, tc.knob, tc.write); err != nil {
			t.Fatal(err)
		}
		s, err := m.Read(ctx, cg, tc.knob)
		if err != nil || s.Value != tc.wantValue {
			t.Errorf("%s: wrote %d, read %d (%v), want %d", tc.knob, tc.write, s.Value, err, tc.wantValue)
		}
	}
}

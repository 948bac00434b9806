package cgroup

import (
	"errors"
	"testing"

	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
)

type fakeMoves struct {
	recs []governor.CgroupMove
	err  error
}

func (f *fakeMoves) Moves(dst []governor.CgroupMove) ([]governor.CgroupMove, error) {
	if f.err != nil {
		return dst, f.err
	}
	return append(dst, f.recs...), nil
}

// TestScanMovesStill: what a scan shows standing still, against the
// previous tick's scan only: equal sums and no state in effect.
func TestScanMovesStill(t *testing.T) {
	f := &fakeMoves{}
	s := NewSource(t.TempDir(), SourceOptions{Logger: hclog.NewNullLogger()})
	s.psiGate = true
	s.SetMoves(f)
	all := uint8(1<<gPSI | 2<<gPSI | 4<<gPSI | 1<<gCPU)
	base := governor.CgroupMove{PSI: [3]uint64{10, 20, 30}, NonIdle: 40}
	rec := func(id governor.CgroupID, m governor.CgroupMove) governor.CgroupMove { m.ID = id; return m }
	tick := func(recs ...governor.CgroupMove) {
		s.gen++
		f.recs = recs
		s.scanMoves()
	}
	still := func(id governor.CgroupID) uint8 { return s.ownStill(&node{id: id}) }

	tick(rec(1, base), rec(2, base))
	if still(1) != 0 {
		t.Fatalf("first scan: %b still, want nothing (no previous scan)", still(1))
	}
	moved := base
	moved.PSI[2]++
	active := base
	active.Active = 1 | 8 // io stalled now, a task non-idle now
	unknown := base
	unknown.Unknown = true
	tick(rec(1, base), rec(2, moved), rec(3, base))
	if got := still(1); got != all {
		t.Errorf("unchanged: %b, want %b", got, all)
	}
	if got := still(2); got != all&^(4<<gPSI) {
		t.Errorf("cpu pressure moved: %b, want all but cpu pressure", got)
	}
	if got := still(3); got != 0 {
		t.Errorf("new cgroup: %b, want nothing", got)
	}
	tick(rec(1, active), rec(2, moved), rec(3, unknown))
	if got := still(1); got != 2<<gPSI|4<<gPSI {
		t.Errorf("io and non-idle in effect: %b, want memory and cpu pressure only", got)
	}
	if got := still(2); got != all {
		t.Errorf("stood since: %b, want %b", got, all)
	}
	if got := still(3); got != 0 {
		t.Errorf("unknown: %b, want nothing", got)
	}
	// A failed scan: nothing known this tick, nor on the next (whose
	// previous scan is missing); cgroup 2, gone from the scan, forgotten.
	f.err = errors.New("boom")
	tick()
	if got := still(1); got != 0 {
		t.Errorf("failed scan: %b, want nothing", got)
	}
	f.err = nil
	tick(rec(1, base))
	if got := still(1); got != 0 {
		t.Errorf("after a failed scan: %b, want nothing", got)
	}
	tick(rec(1, base))
	if got := still(1); got != all {
		t.Errorf("two scans in a row again: %b, want %b", got, all)
	}
	if _, ok := s.mv[2]; ok || len(s.mv) != 1 {
		t.Errorf("entries %v: want cgroup 1 only", s.mv)
	}
}

package cgroup

import (
	"github.com/governor-dev/governor/governor"
)

// MoveSensor reads, in one call, a governor.CgroupMove for every cgroup of the hierarchy
// under the Source's root. bpf.Moves (a BPF cgroup iterator) is one.
type MoveSensor interface {
	Moves(dst []governor.CgroupMove) ([]governor.CgroupMove, error)
}

// moveEntry is a cgroup's Move at the last scan, and what it showed.
type moveEntry struct {
	psi     [3]uint64
	nonidle uint64
	gen     uint64 // the scan's Source.gen
	still   uint8  // bits 1<<gXxx that stood still between the scans of gen-1 and gen
	unknown bool
}

// SetMoves gives the Source a MoveSensor (nil: none). With one, each
// Sample starts with one scan of the whole hierarchy, and a cgroup whose
// pressure "some" and "full" totals of a resource, or whose cpu.stat
// usage, the scan shows standing still since the previous tick's scan is
// served its previous values for them instead of read (as when its
// parent's stood still; see carryWhat and psiStill). A parent that moved
// then costs a read of its own files and of its children that moved, not
// of every child. Memory and io.stat are not covered: they are gated by
// the parent as before.
//
// Why that is exact: the scan of tick k comes before the reads of tick k
// and after those of tick k-1. Totals that only grow and are equal at the
// scans of k-1 and k were constant between them, so equal to what tick
// k-1 read (or carried). A state in effect at the second scan has time
// not yet folded into the sums, so it counts as moved.
func (s *Source) SetMoves(m MoveSensor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moves = m
	s.mv = nil
	s.mvErr = false
}

// scanMoves reads the MoveSensor, if any, and records for each cgroup what
// stood still since the previous scan.
func (s *Source) scanMoves() {
	if s.moves == nil || !s.psiGate {
		return
	}
	var err error
	s.mvBuf, err = s.moves.Moves(s.mvBuf[:0])
	if err != nil {
		if !s.mvErr {
			s.log.Warn("cgroup iterator read failed; reading each cgroup's files until it works again", "error", err)
			s.mvErr = true
		}
		return
	}
	if s.mvErr {
		s.log.Info("cgroup iterator reads again")
		s.mvErr = false
	}
	if s.mv == nil {
		s.mv = make(map[governor.CgroupID]moveEntry, len(s.mvBuf))
	}
	for i := range s.mvBuf {
		m := &s.mvBuf[i]
		var still uint8
		if e, ok := s.mv[m.ID]; ok && e.gen+1 == s.gen && !e.unknown && !m.Unknown {
			for r := 0; r < 3; r++ {
				if m.PSI[r] == e.psi[r] && m.Active&(1<<r) == 0 {
					still |= 1 << (gPSI + r)
				}
			}
			if m.NonIdle == e.nonidle && m.Active&8 == 0 {
				still |= 1 << gCPU
			}
		}
		s.mv[m.ID] = moveEntry{psi: m.PSI, nonidle: m.NonIdle, gen: s.gen, still: still, unknown: m.Unknown}
	}
	if len(s.mv) > len(s.mvBuf) {
		for id, e := range s.mv {
			if e.gen != s.gen {
				delete(s.mv, id)
			}
		}
	}
	s.mvScans++
}

// ownStill returns the groups of n's counters (bits 1<<gXxx) that this
// tick's scan shows standing still since the previous tick's.
func (s *Source) ownStill(n *node) uint8 {
	if s.mv == nil {
		return 0
	}
	if e, ok := s.mv[n.id]; ok && e.gen == s.gen {
		return e.still
	}
	return 0
}

package cgroup

import (
	"time"

	"github.com/governor-dev/governor/governor"
)

// quietRefresh is how often (in ticks) a quiet cgroup's memory and io
// files are re-read; probeEvery how often files known to be missing are
// looked for again without a sign of change (see file).
const (
	quietRefresh = 60
	probeEvery   = 600
)

// isQuiet: no tasks, pressure averages at zero, and no stall and no CPU
// use since the previous read (the rates are present: there was one).
func isQuiet(smp *governor.Sample) bool {
	if smp.Populated {
		return false
	}
	rates := false
	for r := 0; r < 3; r++ {
		for _, full := range [2]bool{false, true} {
			if !smp.Has.Has(governor.PSISignal(r, full, 0)) {
				continue
			}
			for f := 0; f < 4; f++ {
				v, ok := smp.Get(governor.PSISignal(r, full, f))
				if f == 3 && !ok {
					return false // first read: no rate yet
				}
				if v != 0 {
					return false
				}
			}
			rates = true
		}
	}
	if v, ok := smp.Get(governor.CPUUsage); ok && v != 0 {
		return false
	}
	return rates
}

// psiStill reports whether n's pressure file of resource r can be left
// unread this tick: nothing in it can have changed since n's previous read
// (see Source). Stalls are hierarchical: a task stalled in n is stalled in
// n's parent, whose "some" total then grows; so if the parent's stood
// still since the previous tick, and n was read (or skipped) on that tick,
// n's total is the same. Its averages must have read zero at that read,
// and its total must have stood still for psiSettle before it: the kernel
// folds stalls into the averages every 2 s (and on a read once that is
// due), so a recent stall could still raise them, and non-zero ones decay.
// Every quietRefresh ticks the file is read anyway (spread by cgroup id),
// which also notices files hidden since (cgroup.pressure set to 0).
func (s *Source) psiStill(n *node, prev *counters, r int) bool {
	p := n.parent
	bit := uint8(1) << r
	return s.psiGate && p != nil && !n.dirty && prev != nil && prev.gen+1 == s.gen &&
		(s.gen+uint64(n.id))%quietRefresh != 0 &&
		prev.has&(hasPSI0<<(r*2)) != 0 && n.psiZero&bit != 0 &&
		prev.at.UnixNano()-n.psiMoved[r] >= int64(psiSettle) &&
		p.stillGen == s.gen && p.psiStill&bit != 0
}

// psiSettle: the kernel's averaging period (PSI_FREQ, 2 s) and a margin.
const psiSettle = 3 * time.Second

// psiCarry serves the pressure signals of resource r a read would give
// when psiStill holds: the averages 0, the totals of the previous read and
// so a stall rate of 0.
func psiCarry(smp *governor.Sample, cur, prev *counters, r int) {
	for l := 0; l < 2; l++ {
		bit := hasPSI0 << (r*2 + l)
		if prev.has&bit == 0 {
			continue
		}
		full := l == 1
		for w := 0; w < 3; w++ {
			smp.Set(governor.PSISignal(r, full, w), 0)
		}
		cur.psi[r][l] = prev.psi[r][l]
		smp.Stalled.Set(r, l, prev.psi[r][l])
		cur.has |= bit
		if _, ok := elapsed(prev, cur.at, bit); ok {
			smp.Set(governor.PSISignal(r, full, 3), 0)
		}
	}
}

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
// There is no periodic read besides: the totals only grow, so a parent's
// that stood still proves the child's did, and averages at zero stay zero
// without a stall. A file hidden since (cgroup.pressure set to 0) is a
// write in n's directory, which inotify reports (n.dirty).
func (s *Source) psiStill(n *node, prev *counters, r int) bool {
	p := n.parent
	bit := uint8(1) << r
	return s.psiGate && p != nil && !n.dirty && prev != nil && prev.gen+1 == s.gen &&
		prev.has&(hasPSI0<<(r*2)) != 0 && n.psiZero&bit != 0 &&
		prev.at.UnixNano()-n.psiMoved[r] >= int64(psiSettle) &&
		(p.stillGen == s.gen && p.still&bit != 0 || n.own&bit != 0)
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

// carryWhat returns what readCgroup reads of cgroup n, not known to be
// quiet (a populated one, say): everything, or with rdCarry only the groups
// of counters that may have changed. cpu.stat usage, memory.current and
// io.stat bytes are hierarchical: when n's parent's stood still since the
// previous tick (read unchanged, or carried itself) and n was read (or
// carried) on that tick, n's stood still too, and its previous values are
// served with rates of 0 (cpuCarry, memCarry, ioCarry). Its pressure files
// are gated by psiStill, resource by resource. cgroup.events is not read:
// inotify reports a change of it (and a write to any file of n, such as
// memory.high) as a change in n's directory, which makes n dirty. A cgroup
// whose parent stood still in everything, with pressure averages at zero,
// is not read at all: a node of idle containers costs about what an empty
// one does.
//
// A full read happens on n's first read, after a change in its directory,
// without inotify, off cgroupfs (see psiGate), and for the root.
//
// Every quietRefresh ticks (spread by cgroup id) n's memory and io files
// are read though its parent's stood still: memory.current is a level, not
// a total that only grows (one child's can fall by what another's grows,
// the parent's standing still), and a controller disabled in the parent
// takes io.stat away. That safety read costs no syscall where those files
// are known missing (no memory or io controller), until a probe. The
// pressure totals, cpu.stat usage, io.stat bytes and memory.events counts
// only grow and are hierarchical: a parent's that stood still proves n's
// did, so they are not read again (before 2026-12-07 the safety read was a
// full one, which cost an idle container five opened files a minute).
func (s *Source) carryWhat(n *node, isRoot bool) int {
	if !s.psiGate || isRoot || !n.read || n.dirty || s.walkAll || n.prev.gen+1 != s.gen {
		return rdAll
	}
	what := rdAll | rdCarry
	if p := n.parent; p.stillGen == s.gen {
		if p.still&(1<<gCPU) != 0 {
			what &^= rdCPU
		}
		if p.still&(1<<gMem) != 0 {
			what &^= rdMem
		}
		if p.still&(1<<gIO) != 0 {
			what &^= rdIO
		}
	}
	if n.own&(1<<gCPU) != 0 {
		what &^= rdCPU // the MoveSensor saw it stand still (moves.go)
	}
	if (s.gen+uint64(n.id))%quietRefresh == 0 && (s.probe || n.absent&slowFiles != slowFiles) {
		what |= rdMem | rdIO
	}
	return what
}

// stood reports whether the counter groups bits were all present in cur
// and in prev, prev being of the previous tick (the caller compares their
// values). Absent counters vouch for nothing: the root cgroup has no
// memory.current or memory.events, and two absent readings are not a
// level that stood still; taking them as one carried every top-level
// cgroup's memory.current for up to quietRefresh ticks.
func stood(cur, prev *counters, gen uint64, bits uint16) bool {
	return prev != nil && prev.gen+1 == gen && cur.has&bits == bits && prev.has&bits == bits
}

// cpuCarry serves cpu.stat as carryWhat allows: the counters of the
// previous read, so usage and throttling rates of 0.
func cpuCarry(smp *governor.Sample, cur, prev *counters) {
	cur.cpu = prev.cpu
	cur.has |= prev.has & (hasCPU | hasThrottle)
	if prev.has&hasCPU != 0 {
		smp.Set(governor.CPUUsage, 0)
	}
	if prev.has&hasThrottle != 0 {
		smp.Set(governor.CPUThrottled, 0)
		smp.Set(governor.CPUThrottledPeriods, 0)
	}
}

// memSignals are the memory signals that are levels, carried as they were.
var memSignals = [...]governor.Signal{
	governor.MemoryCurrent, governor.MemorySwap, governor.MemoryAnon, governor.MemoryFile,
	governor.MemoryHighRatio, governor.MemoryMaxRatio,
}

// memCarry serves the memory files as carryWhat allows: the levels of the
// previous sample old, memory.events rates of 0.
func memCarry(smp *governor.Sample, cur, prev *counters, old *governor.Sample) {
	cur.mem, cur.ev = prev.mem, prev.ev
	cur.has |= prev.has & (hasMem | hasEvents)
	for _, sig := range memSignals {
		if v, ok := old.Get(sig); ok {
			smp.Set(sig, v)
		}
	}
	if prev.has&hasEvents != 0 {
		for _, sig := range [...]governor.Signal{governor.MemoryEventsHigh, governor.MemoryEventsMax,
			governor.MemoryEventsOOM, governor.MemoryEventsOOMKill} {
			smp.Set(sig, 0)
		}
	}
}

// ioCarry serves io.stat as carryWhat allows: the bytes of the previous
// read, rates of 0.
func ioCarry(smp *governor.Sample, cur, prev *counters) {
	cur.rb, cur.wb = prev.rb, prev.wb
	cur.has |= prev.has & hasIO
	if prev.has&hasIO != 0 {
		smp.Set(governor.IOReadBytes, 0)
		smp.Set(governor.IOWriteBytes, 0)
	}
}

package bpf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/internal/procfs"
)

var _ governor.Source = (*Sensor)(nil)

// Name implements governor.Source.
func (s *Sensor) Name() string { return "bpf" }

// Offender is one cgroup whose tasks took the CPU from a cgroup's runnable
// tasks during the last window.
type Offender struct {
	// Cgroup is the offender's id. It equals the victim's own id for
	// preemption among its own tasks, and is 0 when the CPU went idle
	// instead: the victim was throttled (its own cpu.max) or migrated.
	Cgroup      governor.CgroupID
	Preemptions uint64
	PerSecond   float64
}

// maxOffenders is how many offenders TopOffenders keeps per cgroup.
const maxOffenders = 8

// TopOffenders returns the cgroups that preempted id's runnable tasks most
// often in the window of the last Sample, most frequent first.
func (s *Sensor) TopOffenders(id governor.CgroupID) []Offender {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Offender(nil), s.offenders[id]...)
}

// Drops counts events the BPF programs could not record, since Load.
type Drops struct {
	CgroupMapFull  uint64 // no free cgroup slot (Options.MaxCgroups)
	PairMapFull    uint64 // preempt_pairs full (Options.MaxPreemptPairs)
	Stamps         uint64 // wakeup stamp not stored (task storage / raw_stamps full)
	ReclaimMapFull uint64 // reclaim_stamps full
	OOMRingFull    uint64 // OOM event lost: ring buffer full
	AlertRingFull  uint64 // fast-path alert lost: ring buffer full
}

// Drop kinds, as enum drop_kind in the C source.
const (
	dropCgroupFull = iota
	dropPairFull
	dropStamp
	dropReclaimFull
	dropOOMRingbuf
	dropAlertRingbuf
	dropNR
)

// Drops returns the drop counters as of the last Sample.
func (s *Sensor) Drops() Drops {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropTotal
}

// Sample implements governor.Source: it adds the BPF signals, computed over
// the window since the previous Sample (or Load), to the snapshot's cgroups
// and removes the map entries of cgroups that are not in the snapshot.
// Values are per cgroup, not hierarchical: a parent's are its own tasks'.
// The window ends at the snapshot's time (the loop's clock); a snapshot
// without one ends it now.
func (s *Sensor) Sample(ctx context.Context, snap *governor.Snapshot) error {
	now := snap.Time
	if now.IsZero() {
		now = time.Now()
	}
	secs := now.Sub(s.last).Seconds()
	s.last = now
	if secs <= 0 {
		secs = 1e-9
	}
	s.checkDrops(now)

	// Every cgroup starts at zero: the sensor sees all tasks, so a cgroup
	// without entries had no waits, preemptions, reclaim or OOM kills.
	// Latency quantiles stay absent when there was no wait to measure.
	for _, c := range snap.Cgroups {
		c.Set(governor.RunqDelay, 0)
		c.Set(governor.RunqPreemptedByOthers, 0)
		c.PreemptedBy = nil
		if s.reclaim {
			c.Set(governor.ReclaimStall, 0)
		}
		if s.rb != nil {
			c.Set(governor.OOMKills, 0)
		}
	}

	if err := s.sampleStats(snap, secs); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.samplePairs(snap, secs); err != nil {
		return err
	}

	s.raiseStalls(snap)

	s.mu.Lock()
	counts := s.oomCounts
	s.oomCounts = make(map[uint64]uint64, len(counts))
	s.mu.Unlock()
	for id, n := range counts {
		if c := snap.Lookup(governor.CgroupID(id)); c != nil {
			c.Set(governor.OOMKills, float64(n)/secs)
		}
	}
	return nil
}

func sub64(cur, prev uint64) uint64 {
	if cur < prev { // entry re-created since the last read
		return cur
	}
	return cur - prev
}

func (s *Sensor) sampleStats(snap *governor.Snapshot, secs float64) error {
	var (
		stale []staleSlot
		cur   = &s.cur
		nb    = s.hist.n()
		seen  = make(map[uint64]struct{}, len(s.prev))
	)
	var err error
	s.idxKeys, s.idxSlots, err = dumpHash(s.objs.CgIndex, &s.noBatch, s.idxKeys, s.idxSlots)
	if err != nil {
		return fmt.Errorf("bpf: reading cg_index: %w", err)
	}
	for i, key := range s.idxKeys {
		slot := s.idxSlots[i]
		c := snap.Lookup(governor.CgroupID(key))
		if c == nil {
			stale = append(stale, staleSlot{key, slot})
			continue
		}
		if err := s.readSlot(slot, cur); err != nil {
			return fmt.Errorf("bpf: reading slot %d of cgroup %d: %w", slot, key, err)
		}
		if cur.Cgid != key { // being set up by the kernel right now
			continue
		}
		seen[key] = struct{}{}
		p := s.prev[key]
		if p == nil {
			p = new(governorCgStats)
			s.prev[key] = p
		}
		var waits uint64
		for i := 0; i < nb; i++ {
			d := uint64(cur.Hist[i] - p.Hist[i]) // uint32 wrap-safe
			s.delta[i] = d
			waits += d
		}
		waitNs := sub64(cur.WaitNs, p.WaitNs)
		c.Set(governor.RunqDelay, float64(waitNs)/1e9/secs*100)
		if s.reclaim {
			c.Set(governor.ReclaimStall, float64(sub64(cur.ReclaimNs, p.ReclaimNs))/1e9/secs*100)
		}
		if waits > 0 {
			for _, q := range [...]struct {
				sig governor.Signal
				q   float64
			}{{governor.RunqP50, 0.5}, {governor.RunqP90, 0.9}, {governor.RunqP99, 0.99}} {
				if v, ok := s.hist.quantile(s.delta[:nb], q.q); ok {
					c.Set(q.sig, v/1e9)
				}
			}
		}
		*p = *cur
	}
	// Release the slots of cgroups that are gone: unindex (the kernel then
	// allocates a new slot if the cgroup shows up again), zero (tasks that
	// cached the slot see a different owner), free. A program that checked
	// the owner just before the zeroing can still add one sample after it:
	// at worst one stray count in the slot's next owner's first window.
	var zero governorCgStats
	for _, st := range stale {
		if err := s.objs.CgIndex.Delete(&st.cgid); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			return fmt.Errorf("bpf: deleting cgroup %d: %w", st.cgid, err)
		}
		if err := s.objs.CgSlots.Update(&st.slot, &zero, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: clearing slot %d: %w", st.slot, err)
		}
		if err := s.objs.FreeSlots.Update(nil, st.slot, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: freeing slot %d: %w", st.slot, err)
		}
	}
	for k := range s.prev {
		if _, ok := seen[k]; !ok {
			delete(s.prev, k)
		}
	}
	return nil
}

// readSlot copies slot of cg_slots to cur: from the map's memory where it
// is mapped (no syscall; BPF programs may be adding to the slot as it is
// copied, as they may during a lookup, which copies without a lock too),
// else with a lookup.
func (s *Sensor) readSlot(slot uint32, cur *governorCgStats) error {
	if s.slots == nil {
		return s.objs.CgSlots.Lookup(&slot, cur)
	}
	if slot >= s.objs.CgSlots.MaxEntries() { // the mapping is whole pages
		return fmt.Errorf("slot %d of %d", slot, s.objs.CgSlots.MaxEntries())
	}
	// An array's elements are value_size rounded up to 8 bytes apart.
	size := int64(unsafe.Sizeof(*cur))
	stride := (size + 7) &^ 7
	b := unsafe.Slice((*byte)(unsafe.Pointer(cur)), size)
	_, err := s.slots.ReadAt(b, int64(slot)*stride)
	return err
}

type staleSlot struct {
	cgid uint64
	slot uint32
}

func (s *Sensor) samplePairs(snap *governor.Snapshot, secs float64) error {
	var (
		stale  []governorPairKey
		seen   = make(map[governorPairKey]struct{}, len(s.prevPairs))
		top    = map[governor.CgroupID][]Offender{}
		others = map[*governor.Sample]uint64{}
	)
	var err error
	s.pairKeys, s.pairVals, err = dumpHash(s.objs.PreemptPairs, &s.noBatch, s.pairKeys, s.pairVals)
	if err != nil {
		return fmt.Errorf("bpf: reading preempt_pairs: %w", err)
	}
	for i, key := range s.pairKeys {
		n := s.pairVals[i]
		d := sub64(n, s.prevPairs[key])
		victim := snap.Lookup(governor.CgroupID(key.Victim))
		if victim != nil && key.Offender != 0 && key.Offender != key.Victim {
			others[victim] += d // counted even if the offender is gone
		}
		if victim == nil || (key.Offender != 0 && snap.Lookup(governor.CgroupID(key.Offender)) == nil) {
			stale = append(stale, key)
			continue
		}
		seen[key] = struct{}{}
		s.prevPairs[key] = n
		if d == 0 {
			continue
		}
		v := governor.CgroupID(key.Victim)
		top[v] = append(top[v], Offender{Cgroup: governor.CgroupID(key.Offender), Preemptions: d, PerSecond: float64(d) / secs})
	}
	for c, d := range others {
		c.Set(governor.RunqPreemptedByOthers, float64(d)/secs)
	}
	for i := range stale {
		if err := s.objs.PreemptPairs.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("bpf: deleting preemption pair: %w", err)
		}
	}
	for k := range s.prevPairs {
		if _, ok := seen[k]; !ok {
			delete(s.prevPairs, k)
		}
	}
	for v, list := range top {
		sort.Slice(list, func(i, j int) bool {
			if list[i].Preemptions != list[j].Preemptions {
				return list[i].Preemptions > list[j].Preemptions
			}
			return list[i].Cgroup < list[j].Cgroup
		})
		if c := snap.Lookup(v); c != nil {
			c.PreemptedBy = preemptors(v, list) // from the whole list: self and idle take no place
		}
		if len(list) > maxOffenders {
			list = list[:maxOffenders]
		}
		top[v] = list
	}
	s.mu.Lock()
	s.offenders = top
	s.mu.Unlock()
	return nil
}

// preemptors is a victim's offenders as the governor's Sample lists them:
// other cgroups only (not the victim itself, not the CPU going idle), at
// most governor.MaxPreemptors, in list's order.
func preemptors(victim governor.CgroupID, list []Offender) []governor.Preemptor {
	var out []governor.Preemptor
	for _, o := range list {
		if o.Cgroup == 0 || o.Cgroup == victim {
			continue
		}
		if len(out) == governor.MaxPreemptors {
			break
		}
		out = append(out, governor.Preemptor{Cgroup: o.Cgroup, PerSecond: o.PerSecond})
	}
	return out
}

// checkDrops reads the in-kernel drop counters; any increase is logged (at
// most once a minute) and counted.
func (s *Sensor) checkDrops(now time.Time) {
	var cur [dropNR]uint64
	var grew bool
	for i := uint32(0); i < dropNR; i++ {
		if err := s.objs.Drops.Lookup(&i, &cur[i]); err != nil {
			s.log.Debug("reading drop counter", "kind", i, "error", err)
			return
		}
		if cur[i] > s.dropSeen[i] {
			grew = true
		}
	}
	s.mu.Lock()
	s.dropTotal = Drops{
		CgroupMapFull:  cur[dropCgroupFull],
		PairMapFull:    cur[dropPairFull],
		Stamps:         cur[dropStamp],
		ReclaimMapFull: cur[dropReclaimFull],
		OOMRingFull:    cur[dropOOMRingbuf],
		AlertRingFull:  cur[dropAlertRingbuf],
	}
	d := s.dropTotal
	s.mu.Unlock()
	if grew && now.Sub(s.dropLog) >= time.Minute {
		s.dropLog = now
		s.log.Warn("BPF maps full, events dropped (totals since load; raise the map sizes)",
			"cgroup_map_full", d.CgroupMapFull, "pair_map_full", d.PairMapFull,
			"stamps", d.Stamps, "reclaim_map_full", d.ReclaimMapFull, "oom_ring_full", d.OOMRingFull, "alert_ring_full", d.AlertRingFull)
	}
	s.dropSeen = cur
}

// OOMKill is one oom:mark_victim event.
type OOMKill struct {
	Time   time.Time         // when user space read the event
	Cgroup governor.CgroupID // 0 if unknown
	PID    uint32
	Comm   string
}

// maxRecentOOM is how many kills RecentOOMKills remembers.
const maxRecentOOM = 32

// RecentOOMKills returns the last OOM kills seen (at most 32), oldest first.
func (s *Sensor) RecentOOMKills() []OOMKill {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]OOMKill(nil), s.recentOOM...)
}

func (s *Sensor) readOOM() {
	readRing(s.rb, s.rbDone, s.log, "OOM events", func(ev *governorOomEvent) {
		k := OOMKill{Time: time.Now(), Cgroup: governor.CgroupID(ev.Cgid), PID: ev.Pid}
		comm := unsafe.Slice((*byte)(unsafe.Pointer(&ev.Comm[0])), len(ev.Comm))
		k.Comm = string(bytes.TrimRight(comm, "\x00"))
		if k.Cgroup == 0 && k.PID != 0 {
			k.Cgroup, k.Comm = resolvePID(k.PID, k.Comm)
		}
		s.log.Warn("OOM kill", "cgroup_id", uint64(k.Cgroup), "pid", k.PID, "comm", k.Comm)
		s.mu.Lock()
		s.oomCounts[uint64(k.Cgroup)]++
		if len(s.recentOOM) == maxRecentOOM {
			s.recentOOM = append(s.recentOOM[:0], s.recentOOM[1:]...)
		}
		s.recentOOM = append(s.recentOOM, k)
		s.mu.Unlock()
	})
}

// readRing reads records of type T (the C struct a program submits) from r
// until r is closed, passing each to fn, and closes done when it returns.
// Records shorter than T are skipped; what names the ring in the log.
func readRing[T any](r *ringbuf.Reader, done chan struct{}, log hclog.Logger, what string, fn func(*T)) {
	defer close(done)
	var rec ringbuf.Record
	for {
		if err := r.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			log.Warn("reading "+what, "error", err)
			continue
		}
		var v T
		if len(rec.RawSample) < int(unsafe.Sizeof(v)) {
			continue
		}
		v = *(*T)(unsafe.Pointer(&rec.RawSample[0]))
		fn(&v)
	}
}

// resolvePID finds a process's cgroup v2 id through /proc (best effort, for
// kernels whose oom:mark_victim gives only the pid).
func resolvePID(pid uint32, comm string) (governor.CgroupID, string) {
	if comm == "" {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
			comm = strings.TrimSpace(string(b))
		}
	}
	if pid == 0 { // ProcCgroup's "this process"
		return 0, comm
	}
	rel, err := procfs.ProcCgroup(int(pid))
	if err != nil {
		return 0, comm
	}
	root, err := procfs.Cgroup2Mount()
	if err != nil {
		return 0, comm
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, rel), &st); err != nil {
		return 0, comm
	}
	return governor.CgroupID(st.Ino), comm
}

// dumpHash reads every entry of the hash map m into keys and vals (reused
// from the previous call): in batches of batchSize (BPF_MAP_LOOKUP_BATCH,
// Linux 5.6+), a few syscalls for the whole map, or where the kernel has
// no batch operations (*noBatch, then set for good) by iteration, two
// syscalls an entry. Like iteration, a batch walk runs while the kernel
// changes the map: an entry added or removed meanwhile may be missed, and
// is read on the next tick.
func dumpHash[K comparable, V any](m *ebpf.Map, noBatch *bool, keys []K, vals []V) ([]K, []V, error) {
	keys, vals = keys[:0], vals[:0]
	if !*noBatch {
		var cur ebpf.MapBatchCursor
		for {
			off := len(keys)
			keys = slices.Grow(keys, batchSize)[:off+batchSize]
			vals = slices.Grow(vals, batchSize)[:off+batchSize]
			n, err := m.BatchLookup(&cur, keys[off:], vals[off:], nil)
			keys, vals = keys[:off+n], vals[:off+n]
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return keys, vals, nil
			}
			if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) && off == 0 && n == 0 {
				*noBatch = true
				keys, vals = keys[:0], vals[:0]
				break
			}
			if err != nil {
				return keys, vals, err
			}
		}
	}
	var (
		k K
		v V
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals, it.Err()
}

// batchSize is how many entries one BPF_MAP_LOOKUP_BATCH asks for; a
// hash map returns whole buckets, and fails with ENOSPC if one holds more.
const batchSize = 1024

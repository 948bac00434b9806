package bpf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// The fast path (governor.Watcher): the loop names the cgroups to watch and
// their thresholds; the programs add each watched cgroup's run-queue waits
// and memory stalls up within a window and, when one crosses its threshold, put
// an alert on the alerts ring buffer (at most one per cgroup and kind per alert gap,
// kept in the kernel). A goroutine turns alerts into wake-ups.

// Fast-path defaults.
const (
	DefaultMaxWatches  = 256
	DefaultAlertGap    = 50 * time.Millisecond
	defaultAlertWindow = governor.FastWindow
)

// Alert kinds, as enum alert_kind in the C source.
const (
	alertWait = 1 + iota
	alertWaitSum
	alertMemSum  // reclaim episodes, where the memstall programs are not loaded
	alertMemSome // time some task stalled (memstall programs)
)

var _ governor.Watcher = (*Sensor)(nil)

// Wake implements governor.Notifier: one Ref per alert read (the cgroup
// id; the loop knows the path). Sends never block: while a wake-up is
// pending, more are dropped, as the Step they ask for is coming anyway.
func (s *Sensor) Wake() <-chan governor.Ref { return s.wake }

// Alerts returns how many alerts the fast path has delivered since Load.
func (s *Sensor) Alerts() uint64 { return s.alertCount.Load() }

// Watch implements governor.Watcher: it sets (or replaces) cg's
// thresholds. A cgroup with no threshold set is not watched.
func (s *Sensor) Watch(cg governor.Ref, w governor.Watch) error {
	if s.objs.Watches == nil {
		return errors.New("bpf: the fast path is not loaded")
	}
	if w == (governor.Watch{}) {
		s.Unwatch(cg.ID)
		return nil
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	// A new generation: tasks in a stall counted in the watch this one
	// replaces do not uncount themselves from it.
	s.watchGen++
	v := governorWatch{
		Gen:       s.watchGen,
		WaitNs:    uint64(max(w.Wait, 0)),
		WaitSumNs: uint64(max(w.WaitSum, 0)),
		MemSumNs:  uint64(max(w.MemStall, 0)),
	}
	id := uint64(cg.ID)
	if v.MemSumNs > 0 && len(s.memstallLater) > 0 {
		// One at a time, leave first: after a failure, the next Watch
		// attaches only what is missing.
		for len(s.memstallLater) > 0 {
			if err := s.attach(s.memstallLater[0]); err != nil {
				return fmt.Errorf("bpf: watching cgroup %s for memory stalls: %w", cg, err)
			}
			s.memstallLater = s.memstallLater[1:]
		}
		s.log.Info("BPF fast path: memory stall programs attached", "functions", "psi_memstall_enter, psi_memstall_leave")
	}
	if err := s.objs.Watches.Update(&id, &v, ebpf.UpdateAny); err != nil {
		if errors.Is(err, unix.E2BIG) {
			return fmt.Errorf("bpf: watching cgroup %s: %d cgroups watched already (the map's size): %w", cg, s.objs.Watches.MaxEntries(), err)
		}
		return fmt.Errorf("bpf: watching cgroup %s: %w", cg, err)
	}
	// After the watch: a slot the kernel allocates from now on copies it.
	if err := s.setSlotWatch(id, v.WaitNs, v.WaitSumNs); err != nil {
		// The loop counts the cgroup as not watched: neither is it here.
		_ = s.objs.Watches.Delete(&id)
		return fmt.Errorf("bpf: watching cgroup %s: %w", cg, err)
	}
	return s.countWatches()
}

// setSlotWatch writes the run-queue thresholds into the cg_slots slot of
// cgroup id, if it has one: the wait path reads them there. Through the
// mapping, the two fields alone; else read, modify, write the slot, which
// can lose the counts the programs add meanwhile (Watch is rare).
func (s *Sensor) setSlotWatch(id, wait, waitSum uint64) error {
	var slot uint32
	if err := s.objs.CgIndex.Lookup(&id, &slot); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil // no slot yet: the kernel copies the watch into it
		}
		return fmt.Errorf("looking up the slot: %w", err)
	}
	var cur governorCgStats
	if s.slots != nil && slot < s.objs.CgSlots.MaxEntries() {
		stride := (int64(unsafe.Sizeof(cur)) + 7) &^ 7
		vals := [2]uint64{wait, waitSum}
		b := unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 16)
		_, err := s.slots.WriteAt(b, int64(slot)*stride+int64(unsafe.Offsetof(cur.WatchWaitNs)))
		return err
	}
	if err := s.objs.CgSlots.Lookup(&slot, &cur); err != nil {
		return fmt.Errorf("reading slot %d: %w", slot, err)
	}
	if cur.Cgid != id {
		return nil // released meanwhile
	}
	cur.WatchWaitNs, cur.WatchWaitSumNs = wait, waitSum
	return s.objs.CgSlots.Update(&slot, &cur, ebpf.UpdateExist)
}

// Unwatch implements governor.Watcher.
func (s *Sensor) Unwatch(id governor.CgroupID) {
	if s.objs.Watches == nil {
		return
	}
	k := uint64(id)
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if err := s.objs.Watches.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		s.log.Debug("unwatching cgroup", "cgroup_id", k, "error", err)
	}
	if err := s.setSlotWatch(k, 0, 0); err != nil {
		s.log.Debug("clearing the run-queue thresholds of a cgroup", "cgroup_id", k, "error", err)
	}
	if s.objs.WatchTimers != nil { // deleting the entry cancels its timer
		if err := s.objs.WatchTimers.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			s.log.Debug("deleting the stall timer of a cgroup", "cgroup_id", k, "error", err)
		}
	}
	if err := s.countWatches(); err != nil {
		s.log.Debug("counting watched cgroups", "error", err)
	}
}

// countWatches stores in watching[0] whether any cgroup is watched (the
// programs skip the hash lookup while none is). Called with watchMu held.
func (s *Sensor) countWatches() error {
	var (
		k    uint64
		v    governorWatch
		n    uint64
		zero uint32
	)
	it := s.objs.Watches.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("bpf: counting watches: %w", err)
	}
	return s.objs.Watching.Update(&zero, &n, ebpf.UpdateAny)
}

// readAlerts turns alerts into wake-ups until the ring buffer is closed.
func (s *Sensor) readAlerts() {
	readRing(s.alerts, s.alertsDone, s.log, "fast-path alerts", func(a *governorAlert) {
		s.alertCount.Add(1)
		if s.log.IsTrace() {
			s.log.Trace("fast-path alert", "cgroup_id", a.Cgid, "kind", alertName(a.Kind), "value", time.Duration(a.ValueNs))
		}
		if a.Kind == alertMemSome {
			s.noteStall(a.Cgid, a.ValueNs)
		}
		select {
		case s.wake <- governor.Ref{ID: governor.CgroupID(a.Cgid)}:
		default:
		}
	})
}

func alertName(k uint32) string {
	switch k {
	case alertWait:
		return "wait"
	case alertWaitSum:
		return "wait_sum"
	case alertMemSum:
		return "mem_sum"
	case alertMemSome:
		return "mem_some"
	}
	return fmt.Sprint(k)
}

// alertState is the Sensor's fast-path state.
type alertState struct {
	wake       chan governor.Ref
	alerts     *ringbuf.Reader
	alertsDone chan struct{}
	alertCount atomic.Uint64
	watchGen   uint64 // Watch's last generation (watchMu)
	// stallShare: per cgroup id, the highest memory stall share (%) a
	// mem_some alert measured since the last Sample (mu).
	stallShare map[uint64]float64
}

// noteStall keeps the stall share a mem_some alert measured: value ns of
// "some" stall of the cgroup's own tasks within at most one alert window
// before the alert, so value / window is a lower bound of the cgroup's
// stall share over the window that ended with the alert.
func (s *Sensor) noteStall(cgid, valueNs uint64) {
	share := min(float64(valueNs)/float64(defaultAlertWindow), 1) * 100
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stallShare == nil {
		s.stallShare = make(map[uint64]float64)
	}
	s.stallShare[cgid] = max(s.stallShare[cgid], share)
}

// raiseStalls gives each cgroup of snap a mem_some alert measured since the
// last Sample a memory.some.stall of at least the alert's share: a Step
// woken by the fast path a few milliseconds into a stall would otherwise
// judge the stall over its whole window since the previous Step, mostly
// calm, and not act until a later Step's window happens to hold enough of
// it. Signals the PSI source did not give are left absent.
func (s *Sensor) raiseStalls(snap *governor.Snapshot) {
	s.mu.Lock()
	shares := s.stallShare
	s.stallShare = nil
	s.mu.Unlock()
	for id, share := range shares {
		c := snap.Lookup(governor.CgroupID(id))
		if c == nil {
			continue
		}
		if v, ok := c.Get(governor.MemorySomeStall); ok && share > v {
			c.Set(governor.MemorySomeStall, share)
		}
	}
}

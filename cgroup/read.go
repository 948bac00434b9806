package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/governor-dev/governor/governor"
	"golang.org/x/sys/unix"
)

// reader is the state of reading one cgroup's files: the shared buffers,
// the cgroup being read and its open directory.
type reader struct {
	buf        []byte          // one reusable read buffer for every file
	ios        []IOStat        // reusable io.stat parse buffer
	dirfd      int             // the directory of reading, opened when a file is, -1 not
	reading    *node           // the cgroup readCgroup is reading
	probe      bool            // ... and whether to try files known missing
	reads      uint64          // readCgroup calls (tests)
	files      uint64          // files asked for (read, or known missing and skipped)
	fileReads  uint64          // files read (kept or opened)
	cgReads    uint64          // cgroups at least one file of which was read (tests)
	timedReads uint64          // ... of them read on the schedule alone (tests)
	old        governor.Sample // the previous sample of a carrying read
	psiRead    uint64          // pressure files read (tests)
}

func (s *Source) readHost(smp *governor.Sample) {
	now := s.tickAt
	cur := &s.scratch
	*cur = counters{gen: s.gen, at: now, slow: now}
	for r, name := range hostPSIFiles {
		if s.hostPaths[r] == "" {
			s.hostPaths[r] = filepath.Join(s.proc, name)
		}
		b, ok := s.readKept(&s.hostFDs[r])
		if !ok {
			var err error
			if b, err = s.readHost1(r); err != nil {
				if !errors.Is(err, unix.ENOENT) {
					s.log.Debug("reading host pressure", "file", name, "error", err)
				}
				continue
			}
		}
		s.psi(smp, cur, &s.host, r, b, name)
	}
	s.host = *cur
}

// readHost1 reads host pressure file r by name, and keeps it open where
// it is procfs's.
func (s *Source) readHost1(r int) ([]byte, error) {
	fd, err := unix.Open(s.hostPaths[r], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	b, err := s.readAll(fd)
	if s.hostKeep == 0 {
		s.hostKeep = -1
		var fs unix.Statfs_t
		if unix.Fstatfs(fd, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC {
			s.hostKeep = 1
		}
	}
	if err == nil && len(b) > 0 && s.hostKeep > 0 {
		s.fds.keepFD(&s.hostFDs[r], fd)
	} else {
		unix.Close(fd)
	}
	return b, err
}

// The files of a cgroup the Source reads, numbered for node.absent and
// node.fds.
const (
	fEvents = iota
	fCPUPressure
	fMemoryPressure
	fIOPressure
	fMemoryCurrent
	fMemorySwap
	fMemoryStat
	fMemoryHigh
	fMemoryMax
	fMemoryEvents
	fCPUStat
	fIOStat
	numFiles
)

var fileNames = [numFiles]string{"cgroup.events", "cpu.pressure", "memory.pressure", "io.pressure",
	"memory.current", "memory.swap.current", "memory.stat", "memory.high", "memory.max",
	"memory.events", "cpu.stat", "io.stat"}

// cfileNames are fileNames NUL-terminated, for openat(2): unix.Openat would
// allocate a C string for every file of every cgroup on every tick.
var cfileNames = func() (c [numFiles][]byte) {
	for i, name := range fileNames {
		c[i] = append([]byte(name), 0)
	}
	return c
}()

// slowFiles are the files a refresh of a quiet cgroup reads (rdMem|rdIO),
// but for memory.high and memory.max, which it reads only when
// memory.current exists: a refresh where all of these are missing has
// nothing to read.
const slowFiles = 1<<fMemoryCurrent | 1<<fMemorySwap | 1<<fMemoryStat | 1<<fMemoryEvents | 1<<fIOStat

// openAt opens the file cname (NUL-terminated) in the open directory dirfd.
// O_NOFOLLOW: a symlink planted in the tree must not be read (ELOOP).
func openAt(dirfd int, cname []byte) (int, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&cname[0])),
			uintptr(unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// readAll reads fd to EOF into s.buf, growing it when full. The result is
// valid until the next read.
func (s *Source) readAll(fd int) ([]byte, error) {
	n := 0
	for {
		if n == len(s.buf) {
			if err := s.grow(); err != nil {
				return nil, err
			}
		}
		m, err := unix.Read(fd, s.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return s.buf[:n], nil
		}
		n += m
	}
}

// grow doubles the read buffer, keeping its content.
func (s *Source) grow() error {
	if len(s.buf) >= 16<<20 {
		return fmt.Errorf("file larger than %d bytes", len(s.buf))
	}
	nb := make([]byte, 2*len(s.buf))
	copy(nb, s.buf)
	s.buf = nb
	return nil
}

// file reads file f of the cgroup being read (s.reading). ok is false when
// the file is missing or unreadable (signal absent); a removal of the
// cgroup (ENODEV) yields errVanished.
//
// A file found missing is not asked for again (the syscall saved is most of
// the cost of a read where controllers are missing) until the cgroup is
// probed: on its first read, after a change in its directory or in its
// parent's cgroup.subtree_control (which creates and removes controller
// files), and every probeEvery ticks.
//
// On cgroupfs the files of a cgroup read every tick stay open between
// reads (see keepFiles; sample closes them when the cgroup goes quiet):
// one pread(2) instead of opening the directory and the file, two reads and
// two closes. The directory is opened only when a file has to be opened by
// name.
func (s *Source) file(f int) (b []byte, ok bool, err error) {
	n := s.reading
	if n.fds != nil {
		if b, ok := s.readKept(&n.fds[f]); ok {
			s.files++
			s.fileReads++
			return b, true, nil
		}
	}
	s.files++
	bit := uint16(1) << f
	if !s.probe && n.absent&bit != 0 {
		return nil, false, nil
	}
	s.fileReads++
	if s.dirfd < 0 {
		fd, err := s.dir(n)
		if err != nil {
			if gone(err) {
				return nil, false, errVanished
			}
			return nil, false, err
		}
		s.dirfd = fd
	}
	fd, err := openAt(s.dirfd, cfileNames[f])
	if err == nil {
		b, err = s.readAll(fd)
		if err == nil && len(b) > 0 && s.fds.keepNow && len(s.fds.box.kept) < s.fds.max {
			if n.fds == nil {
				n.fds = new([numFiles]int32)
			}
			s.fds.keepFD(&n.fds[f], fd)
		} else {
			unix.Close(fd)
		}
	}
	if err == nil {
		n.absent &^= bit
		return b, true, nil
	}
	if errors.Is(err, unix.ENODEV) {
		return nil, false, errVanished
	}
	if errors.Is(err, unix.ENOENT) {
		n.absent |= bit
	} else {
		s.log.Debug("reading cgroup file", "file", fileNames[f], "error", err)
	}
	return nil, false, nil
}

func (s *Source) malformed(smp *governor.Sample, name string, err error) {
	s.log.Debug("malformed cgroup file", "cgroup", smp.Ref.String(), "file", name, "error", err)
}

// slowSignals are those a refresh of a quiet cgroup reads again (rdMem,
// rdIO): usage and counters that page cache and writeback change without
// tasks.
var slowSignals = [...]governor.Signal{
	governor.MemoryCurrent, governor.MemorySwap, governor.MemoryAnon, governor.MemoryFile,
	governor.MemoryHighRatio, governor.MemoryMaxRatio,
	governor.MemoryEventsHigh, governor.MemoryEventsMax, governor.MemoryEventsOOM, governor.MemoryEventsOOMKill,
	governor.IOReadBytes, governor.IOWriteBytes,
}

// readCgroup reads the files what asks for from cgroup n into n.base and
// n.prev. A full read (rdAll) starts from nothing; a partial one keeps the
// other signals and counters.
func (s *Source) readCgroup(n *node, isRoot bool, what int) error {
	s.reads++
	now := s.tickAt
	smp := &n.base
	var prev *counters
	if n.read {
		prev = &n.prev
	}
	cur := &s.scratch
	carry := what&rdCarry != 0 && prev != nil
	switch {
	case carry:
		// Start from nothing but what is carried: each group of
		// counters not read stood still (see carryWhat).
		old := &s.old
		*old = *smp
		*smp = governor.Sample{Ref: governor.Ref{ID: n.id, Path: n.rel}, Populated: isRoot || old.Populated}
		*cur = counters{gen: s.gen, at: now, slow: now}
		if what&rdCPU == 0 {
			cpuCarry(smp, cur, prev)
		}
		if what&rdMem == 0 {
			memCarry(smp, cur, prev, old)
		}
		if what&rdIO == 0 {
			ioCarry(smp, cur, prev)
		}
	case what&rdAll == rdAll || prev == nil:
		what = rdAll
		*smp = governor.Sample{Ref: governor.Ref{ID: n.id, Path: n.rel}, Populated: isRoot || smp.Populated}
		*cur = counters{gen: s.gen, at: now, slow: now}
	default:
		// A quiet cgroup's refresh (memory and io): its pressure and cpu
		// counters stood still as of this tick, as on the ticks it is not
		// read at all (see sample), so their rates run from now.
		*cur = *prev
		cur.gen, cur.at, cur.slow = s.gen, now, now
		cur.has &^= hasEvents | hasIO | hasMem
		for _, sig := range slowSignals {
			smp.Has[sig/64] &^= 1 << (sig % 64)
		}
	}

	if !isRoot && what == rdAll {
		// Every non-root cgroup has cgroup.events; its absence means the
		// cgroup went away after we opened it.
		b, ok, err := s.file(fEvents)
		if err != nil || !ok {
			return errVanished
		}
		if ev, err := ParseEvents(b); err == nil {
			smp.Populated = ev.Populated
		} else {
			s.malformed(smp, "cgroup.events", err)
		}
	}

	psiStill := uint8(0)
	if what&rdPSI != 0 {
		still := uint8(0)
		for r := 0; r < 3; r++ {
			bit := uint8(1) << r
			if s.psiStill(n, prev, r) {
				psiCarry(smp, cur, prev, r)
				still |= bit
				continue
			}
			f := fCPUPressure + r
			s.psiRead++
			b, ok, err := s.file(f)
			if err != nil {
				return err
			}
			n.psiZero &^= bit
			if !ok {
				continue
			}
			if s.psi(smp, cur, prev, r, b, fileNames[f]) {
				n.psiZero |= bit
			}
			some := hasPSI0 << (r * 2)
			if prev != nil && prev.has&some != 0 && cur.has&some != 0 && cur.psi[r][0] == prev.psi[r][0] {
				if prev.gen+1 == s.gen {
					still |= bit
				}
			} else {
				n.psiMoved[r] = now.UnixNano()
			}
		}
		psiStill = still
	}
	if what&rdMem != 0 {
		if err := s.readMemory(smp, cur, prev, now); err != nil {
			return err
		}
	}
	if what&rdCPU != 0 {
		if err := s.readCPU(smp, cur, prev, now); err != nil {
			return err
		}
	}
	if what&rdIO != 0 {
		if err := s.readIO(smp, cur, prev, now); err != nil {
			return err
		}
	}
	if what&rdPSI != 0 {
		// What stood still since the previous tick (see carryWhat).
		still := psiStill
		if what&rdCPU == 0 || stood(cur, prev, s.gen, hasCPU) && cur.cpu.UsageUsec == prev.cpu.UsageUsec {
			still |= 1 << gCPU
		}
		if what&rdMem == 0 || stood(cur, prev, s.gen, hasMem|hasEvents) && cur.mem == prev.mem && cur.ev == prev.ev {
			still |= 1 << gMem
		}
		if what&rdIO == 0 || stood(cur, prev, s.gen, hasIO) && cur.rb == prev.rb && cur.wb == prev.wb {
			still |= 1 << gIO
		}
		n.still, n.stillGen = still, s.gen
	}
	n.whole = carry && what&(rdCPU|rdMem|rdIO) == 0 && psiStill == 7
	n.prev = *cur
	n.read = true
	return nil
}

func (s *Source) readMemory(smp *governor.Sample, cur, prev *counters, now time.Time) error {
	var current int64 = -1
	if b, ok, err := s.file(fMemoryCurrent); err != nil {
		return err
	} else if ok {
		if v, err := ParseValue(b); err == nil && v >= 0 && v != governor.Unlimited {
			current = v
			cur.mem = uint64(v)
			cur.has |= hasMem
			smp.Set(governor.MemoryCurrent, float64(v))
		} else {
			s.malformed(smp, "memory.current", err)
		}
	}
	if b, ok, err := s.file(fMemorySwap); err != nil {
		return err
	} else if ok {
		if v, err := ParseValue(b); err == nil && v >= 0 && v != governor.Unlimited {
			smp.Set(governor.MemorySwap, float64(v))
		}
	}
	if b, ok, err := s.file(fMemoryStat); err != nil {
		return err
	} else if ok {
		if st, err := ParseMemoryStat(b); err == nil {
			smp.Set(governor.MemoryAnon, float64(st.Anon))
			smp.Set(governor.MemoryFile, float64(st.File))
		} else {
			s.malformed(smp, "memory.stat", err)
		}
	}
	if current >= 0 {
		for _, lim := range [...]struct {
			file int
			sig  governor.Signal
		}{{fMemoryHigh, governor.MemoryHighRatio}, {fMemoryMax, governor.MemoryMaxRatio}} {
			b, ok, err := s.file(lim.file)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			v, err := ParseValue(b)
			if err != nil {
				s.malformed(smp, fileNames[lim.file], err)
				continue
			}
			if v > 0 && v != governor.Unlimited {
				smp.Set(lim.sig, float64(current)/float64(v)*100)
			}
		}
	}
	if b, ok, err := s.file(fMemoryEvents); err != nil {
		return err
	} else if ok {
		if ev, err := ParseMemoryEvents(b); err == nil {
			cur.ev = ev
			cur.has |= hasEvents
			if dt, ok := elapsed(prev, now, hasEvents); ok {
				p := &prev.ev
				setRate(smp, governor.MemoryEventsHigh, p.High, ev.High, dt)
				setRate(smp, governor.MemoryEventsMax, p.Max, ev.Max, dt)
				setRate(smp, governor.MemoryEventsOOM, p.OOM, ev.OOM, dt)
				setRate(smp, governor.MemoryEventsOOMKill, p.OOMKill, ev.OOMKill, dt)
			}
		} else {
			s.malformed(smp, "memory.events", err)
		}
	}

	return nil
}

func (s *Source) readCPU(smp *governor.Sample, cur, prev *counters, now time.Time) error {
	if b, ok, err := s.file(fCPUStat); err != nil {
		return err
	} else if ok {
		if st, err := ParseCPUStat(b); err == nil {
			cur.cpu = st
			cur.has |= hasCPU
			if st.HasThrottling {
				cur.has |= hasThrottle
			}
			if dt, ok := elapsed(prev, now, hasCPU); ok && st.UsageUsec >= prev.cpu.UsageUsec {
				smp.Set(governor.CPUUsage, float64(st.UsageUsec-prev.cpu.UsageUsec)/(dt*1e6))
			}
			if dt, ok := elapsed(prev, now, hasThrottle); ok && st.HasThrottling {
				if st.ThrottledUsec >= prev.cpu.ThrottledUsec {
					smp.Set(governor.CPUThrottled, float64(st.ThrottledUsec-prev.cpu.ThrottledUsec)/(dt*1e6)*100)
				}
				setRate(smp, governor.CPUThrottledPeriods, prev.cpu.NrThrottled, st.NrThrottled, dt)
			}
		} else {
			s.malformed(smp, "cpu.stat", err)
		}
	}

	return nil
}

func (s *Source) readIO(smp *governor.Sample, cur, prev *counters, now time.Time) error {
	if b, ok, err := s.file(fIOStat); err != nil {
		return err
	} else if ok {
		ios, err := ParseIOStat(b, s.ios[:0])
		s.ios = ios[:0]
		if err == nil {
			for _, d := range ios {
				cur.rb += d.RBytes
				cur.wb += d.WBytes
			}
			cur.has |= hasIO
			if dt, ok := elapsed(prev, now, hasIO); ok {
				setRate(smp, governor.IOReadBytes, prev.rb, cur.rb, dt)
				setRate(smp, governor.IOWriteBytes, prev.wb, cur.wb, dt)
			}
		} else {
			s.malformed(smp, "io.stat", err)
		}
	}

	return nil
}

// psi records one pressure file's averages and, given the previous total,
// its stall share; it reports whether every average read zero.
func (s *Source) psi(smp *governor.Sample, cur, prev *counters, r int, b []byte, name string) bool {
	p, err := ParsePressure(b)
	if err != nil {
		s.malformed(smp, name, err)
		return false
	}
	zero := true
	lines := [2]*PressureLine{&p.Some, &p.Full}
	for l, pl := range lines {
		if l == 1 && !p.HasFull {
			continue
		}
		full := l == 1
		zero = zero && pl.Avg10 == 0 && pl.Avg60 == 0 && pl.Avg300 == 0
		smp.Set(governor.PSISignal(r, full, 0), pl.Avg10)
		smp.Set(governor.PSISignal(r, full, 1), pl.Avg60)
		smp.Set(governor.PSISignal(r, full, 2), pl.Avg300)
		bit := hasPSI0 << (r*2 + l)
		cur.psi[r][l] = pl.Total
		smp.Stalled.Set(r, l, pl.Total)
		cur.has |= bit
		if dt, ok := elapsed(prev, cur.at, bit); ok && pl.Total >= prev.psi[r][l] {
			v := float64(pl.Total-prev.psi[r][l]) / (dt * 1e6) * 100
			smp.Set(governor.PSISignal(r, full, 3), v)
		}
	}
	return zero
}

// elapsed returns the seconds since prev was read, if prev holds the
// counter group bit.
func elapsed(prev *counters, now time.Time, bit uint16) (float64, bool) {
	if prev == nil || prev.has&bit == 0 {
		return 0, false
	}
	at := prev.at
	if bit&(hasEvents|hasIO) != 0 {
		at = prev.slow
	}
	dt := now.Sub(at).Seconds()
	return dt, dt > 0
}

// setRate sets sig to the per-second rate between two counter values,
// unless the counter went backwards.
func setRate(smp *governor.Sample, sig governor.Signal, old, cur uint64, dt float64) {
	if cur >= old {
		smp.Set(sig, float64(cur-old)/dt)
	}
}

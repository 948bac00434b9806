package cgroup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// SourceOptions configures a Source.
type SourceOptions struct {
	// ProcPressureDir holds the system-wide PSI files cpu, memory and io
	// that fill Snapshot.Host. Default "/proc/pressure".
	ProcPressureDir string
	// Filter, when set, restricts which cgroups have their files read: a
	// cgroup whose path (relative to the root, "" for the root) is
	// rejected still appears in the snapshot with its id and path, but
	// without signals. Nil reads every cgroup.
	Filter func(path string) bool
	// Logger receives debug messages about unreadable or malformed
	// files. Nil discards them.
	Logger hclog.Logger
}

// Source is the primary governor.Source: it walks the cgroup2 hierarchy
// below a root and reads each cgroup's PSI, memory, cpu and io files.
//
// Snapshot.Cgroups receives one sample per cgroup in depth-first pre-order,
// the root cgroup first (with its real id; the loop never acts on it).
// Snapshot.Host is the system-wide view from /proc/pressure, with id 0.
//
// Rates (the *.stall signals, cpu.usage, cpu.throttled, memory.events.*,
// io.*_bytes) are deltas since the previous Sample of the same cgroup id
// divided by the wall time elapsed between the two reads; they are absent on
// a cgroup's first sample. Signals whose files do not exist (controller not
// enabled, PSI turned off) are absent. A cgroup removed while it is being
// read is left out of the snapshot.
//
// A Source is safe for concurrent use, but Sample calls are serialised.
type Source struct {
	root   string
	proc   string
	filter func(string) bool
	log    hclog.Logger
	now    func() time.Time // injectable clock for rate tests

	mu      sync.Mutex
	buf     []byte   // one reusable read buffer for every file
	dents   []byte   // reusable getdents buffer
	ios     []IOStat // reusable io.stat parse buffer
	chunk   []governor.Sample
	prev    map[governor.CgroupID]*counters
	host    counters
	gen     uint64
	scratch counters
	cnames  map[string][]byte // NUL-terminated file names for openat
}

// counters are the cumulative values of one cgroup at one read, kept to
// compute rates at the next read.
type counters struct {
	gen uint64
	at  time.Time
	has uint16 // bit set of the hasX constants
	psi [3][2]uint64
	cpu CPUStat
	ev  MemoryEvents
	rb  uint64
	wb  uint64
}

const (
	hasCPU uint16 = 1 << iota
	hasThrottle
	hasEvents
	hasIO
	hasPSI0 // + resource*2 + line
)

var psiFiles = [3]string{"cpu.pressure", "memory.pressure", "io.pressure"}
var hostPSIFiles = [3]string{"cpu", "memory", "io"}

// NewSource returns a Source for the hierarchy at root. It does no I/O.
func NewSource(root string, opts SourceOptions) *Source {
	if opts.ProcPressureDir == "" {
		opts.ProcPressureDir = "/proc/pressure"
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Source{
		root:   root,
		proc:   opts.ProcPressureDir,
		filter: opts.Filter,
		log:    log,
		now:    time.Now,
		buf:    make([]byte, 16<<10),
		dents:  make([]byte, 8<<10),
		prev:   make(map[governor.CgroupID]*counters),
		cnames: make(map[string][]byte),
	}
}

// Name implements governor.Source.
func (s *Source) Name() string { return "cgroup" }

// errVanished marks a cgroup that disappeared while being read.
var errVanished = errors.New("cgroup vanished")

// Sample implements governor.Source.
func (s *Source) Sample(ctx context.Context, snap *governor.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.chunk = nil // samples of earlier snapshots may still be in use

	host := s.newSample()
	s.readHost(host)
	snap.Host = host

	if err := s.visit(ctx, snap, "", true); err != nil {
		return err
	}
	for id, c := range s.prev {
		if c.gen != s.gen {
			delete(s.prev, id)
		}
	}
	return nil
}

// newSample hands out samples from a chunk allocated per 64 cgroups.
func (s *Source) newSample() *governor.Sample {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]governor.Sample, 0, 64)
	}
	s.chunk = s.chunk[:len(s.chunk)+1]
	return &s.chunk[len(s.chunk)-1]
}

func (s *Source) readHost(smp *governor.Sample) {
	now := s.now()
	cur := &s.scratch
	*cur = counters{gen: s.gen, at: now}
	for r, name := range hostPSIFiles {
		b, err := s.readPath(filepath.Join(s.proc, name))
		if err != nil {
			if !errors.Is(err, unix.ENOENT) {
				s.log.Debug("reading host pressure", "file", name, "error", err)
			}
			continue
		}
		s.psi(smp, cur, &s.host, r, b, name)
	}
	s.host = *cur
}

// visit reads the cgroup rel and recurses into its children.
func (s *Source) visit(ctx context.Context, snap *governor.Snapshot, rel string, isRoot bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.root
	if rel != "" {
		dir = s.root + "/" + rel
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if isRoot {
			return fmt.Errorf("open cgroup root %s: %w", dir, err)
		}
		if !gone(err) {
			s.log.Debug("skipping unreadable cgroup", "path", dir, "error", err)
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		if isRoot {
			return fmt.Errorf("stat cgroup root %s: %w", dir, err)
		}
		return nil
	}
	smp := s.newSample()
	smp.ID = governor.CgroupID(st.Ino)
	smp.Path = rel
	smp.Populated = isRoot // the root has no cgroup.events and always has tasks
	if s.filter == nil || s.filter(rel) {
		if err := s.readCgroup(fd, smp, isRoot); err != nil {
			unix.Close(fd)
			if errors.Is(err, errVanished) {
				s.chunk = s.chunk[:len(s.chunk)-1]
				return nil
			}
			return err
		}
	}
	children, err := s.subdirs(fd)
	unix.Close(fd)
	if err != nil && !isRoot {
		// Listing failed: the cgroup went away; keep what was read.
		children = nil
	} else if err != nil {
		return fmt.Errorf("list cgroup root %s: %w", dir, err)
	}
	snap.Cgroups = append(snap.Cgroups, smp)
	for _, c := range children {
		child := c
		if rel != "" {
			child = rel + "/" + c
		}
		if err := s.visit(ctx, snap, child, false); err != nil {
			return err
		}
	}
	return nil
}

// gone reports whether err means the cgroup (or file) was removed.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}

// subdirs lists the names of the child directories of the open directory
// fd, sorted.
func (s *Source) subdirs(fd int) ([]string, error) {
	var names []string
	for {
		n, err := unix.Getdents(fd, s.dents)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		b := s.dents[:n]
		for len(b) >= 19 {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			typ := b[18]
			name := b[19:reclen]
			if i := indexNUL(name); i >= 0 {
				name = name[:i]
			}
			if typ == unix.DT_DIR && string(name) != "." && string(name) != ".." {
				names = append(names, string(name))
			}
			b = b[reclen:]
		}
	}
	sort.Strings(names)
	return names, nil
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// readAt reads the file name in the open directory dirfd into the shared
// buffer. The result is valid until the next read.
func (s *Source) readAt(dirfd int, name string) ([]byte, error) {
	cname, ok := s.cnames[name]
	if !ok {
		cname = append([]byte(name), 0)
		s.cnames[name] = cname
	}
	// openat(2) with a cached NUL-terminated name: unix.Openat would
	// allocate a C string for every file of every cgroup on every tick.
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&cname[0])),
			uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return nil, e
		}
		return s.readFD(int(r))
	}
}

func (s *Source) readPath(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return s.readFD(fd)
}

// readFD reads fd to EOF into s.buf, growing it when full, and closes fd.
func (s *Source) readFD(fd int) ([]byte, error) {
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(s.buf) {
			if len(s.buf) >= 16<<20 {
				return nil, fmt.Errorf("file larger than %d bytes", len(s.buf))
			}
			nb := make([]byte, 2*len(s.buf))
			copy(nb, s.buf)
			s.buf = nb
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

// file reads one file of a cgroup. ok is false when the file is missing or
// unreadable (signal absent); a removal of the cgroup (ENODEV) yields
// errVanished.
func (s *Source) file(dirfd int, name string) (b []byte, ok bool, err error) {
	b, err = s.readAt(dirfd, name)
	if err == nil {
		return b, true, nil
	}
	if errors.Is(err, unix.ENODEV) {
		return nil, false, errVanished
	}
	if !errors.Is(err, unix.ENOENT) {
		s.log.Debug("reading cgroup file", "file", name, "error", err)
	}
	return nil, false, nil
}

func (s *Source) malformed(smp *governor.Sample, name string, err error) {
	s.log.Debug("malformed cgroup file", "cgroup", smp.Ref.String(), "file", name, "error", err)
}

// readCgroup fills smp from the files of the cgroup open at dirfd.
func (s *Source) readCgroup(dirfd int, smp *governor.Sample, isRoot bool) error {
	now := s.now()
	prev := s.prev[smp.ID]
	cur := &s.scratch
	*cur = counters{gen: s.gen, at: now}

	if !isRoot {
		// Every non-root cgroup has cgroup.events; its absence means the
		// cgroup went away after we opened it.
		b, ok, err := s.file(dirfd, "cgroup.events")
		if err != nil || !ok {
			return errVanished
		}
		if ev, err := ParseEvents(b); err == nil {
			smp.Populated = ev.Populated
		} else {
			s.malformed(smp, "cgroup.events", err)
		}
	}

	for r, name := range psiFiles {
		b, ok, err := s.file(dirfd, name)
		if err != nil {
			return err
		}
		if ok {
			s.psi(smp, cur, prev, r, b, name)
		}
	}

	// Memory.
	var current int64 = -1
	if b, ok, err := s.file(dirfd, "memory.current"); err != nil {
		return err
	} else if ok {
		if v, err := ParseValue(b); err == nil && v >= 0 && v != governor.Unlimited {
			current = v
			smp.Set(governor.MemoryCurrent, float64(v))
		} else {
			s.malformed(smp, "memory.current", err)
		}
	}
	if b, ok, err := s.file(dirfd, "memory.swap.current"); err != nil {
		return err
	} else if ok {
		if v, err := ParseValue(b); err == nil && v >= 0 && v != governor.Unlimited {
			smp.Set(governor.MemorySwap, float64(v))
		}
	}
	if b, ok, err := s.file(dirfd, "memory.stat"); err != nil {
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
			file string
			sig  governor.Signal
		}{{"memory.high", governor.MemoryHighRatio}, {"memory.max", governor.MemoryMaxRatio}} {
			b, ok, err := s.file(dirfd, lim.file)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			v, err := ParseValue(b)
			if err != nil {
				s.malformed(smp, lim.file, err)
				continue
			}
			if v > 0 && v != governor.Unlimited {
				smp.Set(lim.sig, float64(current)/float64(v)*100)
			}
		}
	}
	if b, ok, err := s.file(dirfd, "memory.events"); err != nil {
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

	// CPU.
	if b, ok, err := s.file(dirfd, "cpu.stat"); err != nil {
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

	// IO.
	if b, ok, err := s.file(dirfd, "io.stat"); err != nil {
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

	if prev == nil {
		prev = new(counters)
		s.prev[smp.ID] = prev
	}
	*prev = *cur
	return nil
}

// psi records one pressure file's averages and, given the previous total,
// its stall share.
func (s *Source) psi(smp *governor.Sample, cur, prev *counters, r int, b []byte, name string) {
	p, err := ParsePressure(b)
	if err != nil {
		s.malformed(smp, name, err)
		return
	}
	lines := [2]*PressureLine{&p.Some, &p.Full}
	for l, pl := range lines {
		if l == 1 && !p.HasFull {
			continue
		}
		full := l == 1
		smp.Set(governor.PSISignal(r, full, 0), pl.Avg10)
		smp.Set(governor.PSISignal(r, full, 1), pl.Avg60)
		smp.Set(governor.PSISignal(r, full, 2), pl.Avg300)
		bit := hasPSI0 << (r*2 + l)
		cur.psi[r][l] = pl.Total
		cur.has |= bit
		if dt, ok := elapsed(prev, cur.at, bit); ok && pl.Total >= prev.psi[r][l] {
			v := float64(pl.Total-prev.psi[r][l]) / (dt * 1e6) * 100
			smp.Set(governor.PSISignal(r, full, 3), v)
		}
	}
}

// elapsed returns the seconds since prev was read, if prev holds the
// counter group bit.
func elapsed(prev *counters, now time.Time, bit uint16) (float64, bool) {
	if prev == nil || prev.has&bit == 0 {
		return 0, false
	}
	dt := now.Sub(prev.at).Seconds()
	return dt, dt > 0
}

// setRate sets sig to the per-second rate between two counter values,
// unless the counter went backwards.
func setRate(smp *governor.Sample, sig governor.Signal, old, cur uint64, dt float64) {
	if cur >= old {
		smp.Set(sig, float64(cur-old)/dt)
	}
}

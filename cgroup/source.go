package cgroup

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

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

// Source is the primary governor.Source: it keeps a tree of the cgroup2
// hierarchy below a root and reads each cgroup's PSI, memory, cpu and io
// files.
//
// Snapshot.Cgroups receives one sample per cgroup in depth-first pre-order
// (siblings by name), the root cgroup first (with its real id; the loop
// never acts on it). Snapshot.Host is the system-wide view from
// /proc/pressure, with id 0.
//
// Rates (the *.stall signals, cpu.usage, cpu.throttled, memory.events.*,
// io.*_bytes) are deltas since the previous read of the same cgroup divided
// by the wall time elapsed between the two reads; they are absent on a
// cgroup's first sample. Signals whose files do not exist (controller not
// enabled, PSI turned off) are absent. A cgroup removed while it is being
// read is left out of the snapshot.
//
// Cost grows with the cgroups that change, not with all of them:
//
//   - The tree is kept up to date with inotify (IN_CREATE, IN_DELETE,
//     IN_MOVED_* on every cgroup directory; cgroupfs reports mkdir and
//     rmdir, and kernfs reports changes of cgroup.events and memory.events
//     as IN_MODIFY on the directory). Nothing is listed again unless the
//     event queue overflows. Without inotify (or once its watch limit is
//     reached) every tick walks the whole hierarchy, as before.
//   - A cgroup with no task anywhere in its subtree (cgroup.events
//     "populated 0") whose pressure averages read zero and whose stall and
//     CPU counters stood still since the previous read is quiet: no task can
//     stall or use CPU there, so its files are not read again until inotify
//     reports a change in its directory (a task moved in, populated flips,
//     a memory event) — its last values are served. Page cache and writeback
//     can still change its memory and io counters without tasks, so those
//     files are re-read every quietRefresh ticks, spread over the ticks.
//   - On cgroupfs, a busy cgroup's pressure file of a resource is not read
//     when nothing can have changed in it: its parent's "some" total of that
//     resource stood still since the previous tick (every stall of a task
//     counts in all its ancestors, so no descendant stalled either), it was
//     read (or skipped likewise) on the previous tick, and its own total has
//     stood still and its averages read zero for psiSettle. Its values are
//     served: averages 0, stall rate 0. An idle slice with idle services
//     under it costs one read of its pressure files per tick, not one per
//     cgroup.
//     See psiStill.
//   - On cgroupfs, likewise for the other hierarchical counters: a busy
//     (say, populated) cgroup whose parent's cpu.stat usage, memory.current
//     or io.stat bytes stood still since the previous tick has its own
//     served (rates 0) instead of read, and its cgroup.events is not read
//     (inotify reports its changes). A cgroup whose parent stood still in
//     everything is not read at all, and its kept files are closed: idle
//     containers in an idle pod cost about what empty cgroups do. Each
//     still has its memory and io files (memory.current can fall as well
//     as grow) read every quietRefresh ticks, which costs nothing where
//     they are missing. See carryWhat.
//   - With a MoveSensor (SetMoves: the BPF cgroup iterator, Linux 6.1+),
//     one scan of the whole hierarchy a tick tells, per cgroup, whether
//     its own pressure totals and cpu.stat usage stood still since the
//     previous tick's scan; those are served instead of read even when the
//     parent's moved. A QoS slice whose containers are busy then costs
//     reads of its pods that moved, not of all of them. See moves.go.
//   - On cgroupfs the files of a cgroup read every tick (not quiet) stay
//     open between ticks and are read again with one pread(2) each: a
//     removed cgroup, or a file removed since (a controller disabled in the
//     parent, cgroup.pressure 0), fails such a read with ENODEV, and the
//     file is then closed and looked for by name. At most maxKeptFiles
//     (and a quarter of the fd limit) stay open; the files of a cgroup
//     that goes quiet or away are closed at once, and Close releases all.
//     Otherwise a cgroup's directory is opened (from a pre-built C path)
//     when a file of it has to be, and its files relative to it (pre-built
//     C names). One read buffer serves every file, and samples are reused
//     (two per cgroup, alternating, so the previous snapshot stays intact):
//     no allocation per cgroup per tick in steady state.
//
// The code is split by job: this file walks the tree and decides what to
// read (emit, sample); tree.go keeps the tree (inotify, listing); read.go
// reads files and turns counters into rates; skip.go decides what can be
// left unread; fdcache.go keeps files open between ticks.
//
// A Source is safe for concurrent use, but Sample calls are serialised.
type Source struct {
	root   string
	proc   string
	filter func(string) bool
	log    hclog.Logger
	now    func() time.Time // injectable clock for rate tests

	mu      sync.Mutex
	gen     uint64
	tickAt  time.Time // this Sample's time, for cgroups not read
	scratch counters

	watchTree         // the cgroups below root, kept by inotify (tree.go)
	fds       fdCache // files kept open between ticks (fdcache.go)
	reader            // reading files and turning counters into rates (read.go)
	psiGate   bool    // skip pressure files that cannot have changed (cgroupfs; see psiStill in skip.go)

	// A MoveSensor, if set, and what its scans showed (moves.go).
	moves   MoveSensor
	mv      map[governor.CgroupID]moveEntry
	mvBuf   []governor.CgroupMove
	mvErr   bool
	mvScans uint64

	// The host's pressure files (/proc/pressure).
	host      counters
	hostSmp   [2]governor.Sample
	hostPaths [3]string
	hostFDs   [3]int32 // fd+1 of the host pressure files kept open, 0 none
	hostKeep  int8     // keep them open: 1 yes (procfs), -1 no, 0 not yet known
}

// node is one cgroup in the Source's tree.
type node struct {
	name     string
	rel      string
	cpath    []byte // absolute path, NUL-terminated
	id       governor.CgroupID
	parent   *node
	children []*node // sorted by name
	wd       int32   // inotify watch, -1 none

	read   bool // counters hold a read
	prev   counters
	base   governor.Sample    // the signals read (what a skipped read serves)
	smp    [2]governor.Sample // handed out alternately
	quiet  bool               // see Source: files not read while nothing changes
	absent uint16             // bits (1<<fXxx) of files found missing
	fds    *[numFiles]int32   // fd+1 of files kept open, 0 none; see Source.file
	dirty  bool               // inotify saw a change since the last read
	whole  bool               // the last read carried everything (see carryWhat)
	gone   bool               // vanished during this tick's read

	// still: the groups of counters (bits 1<<gXxx: the "some" total of
	// each pressure file, cpu.stat usage, memory, io) that stood still
	// between the previous tick and tick stillGen (read and unchanged, or
	// carried: see carryWhat). Pressure of resource r (bit 1<<r): psiZero,
	// its averages read zero at the last read; psiMoved[r], when
	// (UnixNano) a read last found the total changed.
	psiZero  uint8
	still    uint8
	own      uint8 // this tick: what the MoveSensor's scan shows n's own counters did (bits 1<<gXxx still)
	stillGen uint64
	psiMoved [3]int64
}

// counters are the cumulative values of one cgroup at one read, kept to
// compute rates at the next read.
type counters struct {
	gen  uint64
	at   time.Time // of the PSI and cpu counters
	slow time.Time // of the memory.events and io counters
	has  uint16    // bit set of the hasX constants
	psi  [3][2]uint64
	cpu  CPUStat
	ev   MemoryEvents
	rb   uint64
	wb   uint64
	mem  uint64 // memory.current
}

const (
	hasCPU uint16 = 1 << iota
	hasThrottle
	hasEvents
	hasIO
	hasPSI0 // + resource*2 + line
	hasMem  = hasPSI0 << 6
)

// Groups of counters, for node.still: the pressure files' "some" totals
// (gPSI + resource), cpu.stat usage, memory.current (with memory.events),
// io.stat bytes. Each is hierarchical: a parent's that stood still
// vouches for its children's.
const (
	gPSI = 0 // + resource
	gCPU = 3
	gMem = 4
	gIO  = 5
)

// What readCgroup reads.
const (
	rdPSI = 1 << iota
	rdCPU
	rdMem
	rdIO
	rdAll = rdPSI | rdCPU | rdMem | rdIO
	// rdCarry: a read of a cgroup not known to be quiet whose cpu, memory
	// or io groups not asked for are carried from its previous read
	// (their parent's stood still; see carryWhat), and whose cgroup.events
	// is not read (inotify reports its changes).
	rdCarry = 1 << 4
)

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
	s := &Source{
		root:   root,
		proc:   opts.ProcPressureDir,
		filter: opts.Filter,
		log:    log,
		now:    time.Now,
		watchTree: watchTree{
			dents: make([]byte, 8<<10),
			byWD:  make(map[int32]*node),
			inofd: -1,
		},
		fds:    fdCache{box: &fdBox{ino: -1, kept: make(map[int32]struct{})}},
		reader: reader{buf: make([]byte, 16<<10), dirfd: -1},
	}
	// What an unclosed Source keeps open is released with it.
	runtime.AddCleanup(s, func(b *fdBox) {
		if b.ino >= 0 {
			unix.Close(b.ino)
		}
		for fd := range b.kept {
			unix.Close(int(fd))
		}
	}, s.fds.box)
	return s
}

// Name implements governor.Source.
func (s *Source) Name() string { return "cgroup" }

// Close releases the inotify instance and the files kept open. A closed
// Source starts over (and opens them again) on its next Sample.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	return nil
}

func (s *Source) reset() {
	if s.tree != nil {
		s.dropTree(s.tree)
	}
	s.tree = nil
	for r := range s.hostFDs {
		s.fds.unkeep(&s.hostFDs[r])
	}
	if s.inofd >= 0 {
		unix.Close(s.inofd)
		s.inofd = -1
		s.fds.box.ino = -1 // the cleanup must not close a reused number
	}
	clear(s.byWD)
}

// stateCount is the number of cgroups whose counters are kept (tests).
func (s *Source) stateCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var count func(n *node) int
	count = func(n *node) int {
		c := 0
		if n.read {
			c = 1
		}
		for _, ch := range n.children {
			c += count(ch)
		}
		return c
	}
	if s.tree == nil {
		return 0
	}
	return count(s.tree)
}

// errVanished marks a cgroup that disappeared while being read.
var errVanished = errors.New("cgroup vanished")

// Sample implements governor.Source.
func (s *Source) Sample(ctx context.Context, snap *governor.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	// One time base: rates are over the loop's clock (the snapshot's time).
	if s.tickAt = snap.Time; s.tickAt.IsZero() {
		s.tickAt = s.now()
	}

	host := &s.hostSmp[s.gen&1]
	*host = governor.Sample{}
	s.readHost(host)
	snap.Host = host

	if err := s.update(); err != nil {
		return err
	}
	s.scanMoves()
	return s.emit(ctx, snap, s.tree)
}

// emit reads n (as far as needed) and appends it and its subtree to snap.
func (s *Source) emit(ctx context.Context, snap *governor.Snapshot, n *node) error {
	if len(snap.Cgroups)%256 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	isRoot := n == s.tree
	smp := &n.smp[s.gen&1]
	if err := s.sample(n, isRoot); err != nil {
		if errors.Is(err, errVanished) {
			if isRoot {
				return fmt.Errorf("read cgroup root %s: %w", s.root, err)
			}
			n.dirty = true // re-read next tick; inotify tells if it is gone
			return nil
		}
		return err
	}
	*smp = n.base
	snap.Cgroups = append(snap.Cgroups, smp)
	for _, c := range n.children {
		if err := s.emit(ctx, snap, c); err != nil {
			return err
		}
	}
	return nil
}

// sample refreshes n.base: a full read, a refresh of a quiet cgroup's
// memory and io files, or nothing.
func (s *Source) sample(n *node, isRoot bool) error {
	if s.filter != nil && !s.filter(n.rel) {
		n.base = governor.Sample{Ref: governor.Ref{ID: n.id, Path: n.rel}, Populated: isRoot}
		n.read, n.quiet, n.dirty = false, false, false
		s.fds.unkeepAll(n)
		return nil
	}
	what := rdAll
	s.probe = !n.read || n.dirty || s.walkAll || (s.gen+uint64(n.id))%probeEvery == 0
	// Read on the schedule alone (probe, quiet refresh), not because
	// anything moved: counted apart (tests).
	timed := n.read && !n.dirty && !s.walkAll && !isRoot &&
		((s.gen+uint64(n.id))%probeEvery == 0 || n.quiet && (s.gen+uint64(n.id))%quietRefresh == 0)
	if n.quiet && !n.dirty && !s.walkAll && !isRoot {
		if (s.gen+uint64(n.id))%quietRefresh != 0 || (!s.probe && n.absent&slowFiles == slowFiles) {
			// Nothing can have changed the PSI and cpu counters: they
			// stand still as of this tick.
			n.prev.at = s.tickAt
			return nil
		}
		what = rdMem | rdIO
	} else {
		n.own = s.ownStill(n)
		what = s.carryWhat(n, isRoot)
		if n.whole && what == rdCarry|rdPSI && s.psiStill(n, &n.prev, 0) && s.psiStill(n, &n.prev, 1) && s.psiStill(n, &n.prev, 2) {
			// Carried whole again: n.base already holds the carried
			// values (rates 0), which stand as of this tick.
			n.prev.gen, n.prev.at, n.prev.slow = s.gen, s.tickAt, s.tickAt
			n.still, n.stillGen = 1<<gPSI|2<<gPSI|4<<gPSI|1<<gCPU|1<<gMem|1<<gIO, s.gen
			return nil
		}
	}
	s.reading = n
	// A full (or carrying) read is of a cgroup not known to be quiet: its
	// files may stay open for the next tick (a refresh of a quiet one
	// closes them).
	s.fds.keepNow = s.fds.keep && what&rdPSI != 0
	opened := s.fileReads
	err := s.readCgroup(n, isRoot, what)
	s.reading = nil
	if s.dirfd >= 0 {
		unix.Close(s.dirfd)
		s.dirfd = -1
	}
	if err != nil {
		s.fds.unkeepAll(n)
		return err
	}
	n.dirty = false
	if s.fileReads != opened {
		s.cgReads++
		if timed {
			s.timedReads++
		}
	}
	if what&rdPSI != 0 {
		n.quiet = !isRoot && isQuiet(&n.base)
	}
	if n.quiet || s.fileReads == opened {
		// Not read every tick any more, or not read at all this
		// tick (carried whole): the budget serves those read.
		s.fds.unkeepAll(n)
	}
	return nil
}

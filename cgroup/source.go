package cgroup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
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
//     served: averages 0, stall rate 0. Each such file is still read once
//     every quietRefresh ticks. An idle slice with idle services under it
//     costs one read of its pressure files per tick, not one per cgroup.
//     See psiStill.
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
// A Source is safe for concurrent use, but Sample calls are serialised.
type Source struct {
	root   string
	proc   string
	filter func(string) bool
	log    hclog.Logger
	now    func() time.Time // injectable clock for rate tests

	mu        sync.Mutex
	buf       []byte   // one reusable read buffer for every file
	dents     []byte   // reusable getdents buffer
	ios       []IOStat // reusable io.stat parse buffer
	host      counters
	hostSmp   [2]governor.Sample
	hostPaths [3]string
	hostFDs   [3]int32 // fd+1 of the host pressure files kept open, 0 none
	hostKeep  int8     // keep them open: 1 yes (procfs), -1 no, 0 not yet known
	gen       uint64
	scratch   counters

	tree    *node
	byWD    map[int32]*node
	inofd   int // inotify fd, -1 without
	box     *fdBox
	keep    bool      // busy cgroups' files stay open between reads (cgroupfs)
	psiGate bool      // skip pressure files that cannot have changed (cgroupfs; see psiStill)
	keepNow bool      // ... and this read is one whose files may stay open
	maxKept int       // how many files may stay open at once
	dirfd   int       // the directory of reading, opened when a file is, -1 not
	reads   uint64    // readCgroup calls (tests)
	psiRead uint64    // pressure files read (tests)
	tickAt  time.Time // this Sample's time, for cgroups not read
	reading *node     // the cgroup readCgroup is reading
	probe   bool      // ... and whether to try files known missing
	walkAll bool      // no usable inotify: list every directory every tick
	rescan  bool      // the next Sample lists the whole hierarchy again
	evbuf   []byte
	closed  bool
}

// fdBox holds the descriptors a Source keeps between ticks, for the
// cleanup of a Source that is never closed.
type fdBox struct {
	ino  int                // inotify, -1 none
	kept map[int32]struct{} // files kept open (node.fds, Source.hostFDs)
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
	gone   bool               // vanished during this tick's read

	// Pressure of resource r (bit 1<<r): psiZero, its averages read zero at
	// the last read; psiStill, its "some" total stood still between the
	// previous tick and tick stillGen (read, or skipped by psiStill);
	// psiMoved[r], when (UnixNano) a read last found the total changed.
	psiZero  uint8
	psiStill uint8
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
}

const (
	hasCPU uint16 = 1 << iota
	hasThrottle
	hasEvents
	hasIO
	hasPSI0 // + resource*2 + line
)

// What readCgroup reads.
const (
	rdPSI = 1 << iota
	rdCPU
	rdMem
	rdIO
	rdAll = rdPSI | rdCPU | rdMem | rdIO
)

// quietRefresh is how often (in ticks) a quiet cgroup's memory and io
// files are re-read; probeEvery how often files known to be missing are
// looked for again without a sign of change (see file).
const (
	quietRefresh = 60
	probeEvery   = 600
)

// watchMask is what inotify reports for each cgroup directory.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_MODIFY | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

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
		buf:    make([]byte, 16<<10),
		dents:  make([]byte, 8<<10),
		byWD:   make(map[int32]*node),
		inofd:  -1,
		dirfd:  -1,
		box:    &fdBox{ino: -1, kept: make(map[int32]struct{})},
	}
	// What an unclosed Source keeps open is released with it.
	runtime.AddCleanup(s, func(b *fdBox) {
		if b.ino >= 0 {
			unix.Close(b.ino)
		}
		for fd := range b.kept {
			unix.Close(int(fd))
		}
	}, s.box)
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
		s.unkeep(&s.hostFDs[r])
	}
	if s.inofd >= 0 {
		unix.Close(s.inofd)
		s.inofd = -1
		s.box.ino = -1 // the cleanup must not close a reused number
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
	return s.emit(ctx, snap, s.tree)
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
		s.keepFD(&s.hostFDs[r], fd)
	} else {
		unix.Close(fd)
	}
	return b, err
}

// update brings the tree up to date: the first time (and after an inotify
// overflow, or every time without inotify) by listing every directory,
// otherwise from the queued inotify events.
func (s *Source) update() error {
	if s.tree != nil {
		// The root may have been replaced (tests, remounts).
		var st unix.Stat_t
		if err := unix.Stat(s.root, &st); err != nil {
			s.reset()
			return fmt.Errorf("stat cgroup root %s: %w", s.root, err)
		}
		if governor.CgroupID(st.Ino) != s.tree.id {
			s.reset()
		}
	}
	if s.tree == nil {
		if !s.walkAll && s.inofd < 0 {
			fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
			if err != nil {
				s.log.Warn("inotify unavailable; listing the whole cgroup hierarchy every tick", "error", err)
				s.walkAll = true
			} else {
				s.inofd = fd
				s.box.ino = fd
			}
		}
		s.keep, s.maxKept = keepFiles(s.root)
		s.psiGate = s.keep
		n, err := s.newNode(nil, "", s.root)
		if err != nil {
			return fmt.Errorf("open cgroup root %s: %w", s.root, err)
		}
		s.tree = n
		s.rescan = true
	}
	if s.inofd >= 0 {
		s.drain()
	}
	if s.rescan || s.walkAll {
		s.rescan = false
		if err := s.list(s.tree, true); err != nil {
			return fmt.Errorf("list cgroup root %s: %w", s.root, err)
		}
	}
	return nil
}

// newNode opens the directory at path, records its id and watches it.
func (s *Source) newNode(parent *node, name, path string) (*node, error) {
	n := &node{name: name, cpath: append([]byte(path), 0), parent: parent, wd: -1}
	fd, err := s.dir(n)
	if err != nil {
		return nil, err
	}
	// The fd is not kept (see dir).
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	n.id = governor.CgroupID(st.Ino)
	if parent != nil {
		n.rel = name
		if parent.rel != "" {
			n.rel = parent.rel + "/" + name
		}
	}
	if s.inofd >= 0 {
		watch, mask := path, uint32(watchMask)
		if len(n.cpath) > unix.PathMax {
			// Too long a path for inotify_add_watch(2): watch the
			// open directory through its /proc/self/fd link (a link
			// to follow, so without IN_DONT_FOLLOW).
			watch, mask = "/proc/self/fd/"+strconv.Itoa(fd), watchMask&^unix.IN_DONT_FOLLOW
		}
		wd, err := unix.InotifyAddWatch(s.inofd, watch, mask)
		if err != nil {
			s.log.Warn("cannot watch cgroup directory; listing the whole cgroup hierarchy every tick from now on",
				"path", path, "error", err)
			s.walkAll = true
		} else {
			n.wd = int32(wd)
			s.byWD[n.wd] = n
		}
	}
	return n, nil
}

// atFDCWD as a variable: the negative constant does not convert to uintptr.
var atFDCWD = unix.AT_FDCWD

func openDir(cpath []byte) (int, error) { return openDirAt(atFDCWD, cpath) }

// openDirAt opens the directory at the NUL-terminated path cpath, relative
// to dirfd when it is relative.
func openDirAt(dirfd int, cpath []byte) (int, error) {
	for {
		r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&cpath[0])),
			uintptr(unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// dir opens n's directory. Directory fds are not kept across ticks: a kept
// one of a removed and recreated cgroup would open the old one's files
// (kept files fail with ENODEV instead; see file).
//
// A path longer than PATH_MAX (cgroups nested deep enough, about 4 KiB of
// names) cannot be opened in one go: such a directory is opened relative
// to the highest ancestor from which the rest of the path fits, itself
// opened the same way, so a path of L bytes costs about L/4 KiB openat(2)
// calls.
func (s *Source) dir(n *node) (int, error) {
	if len(n.cpath) <= unix.PathMax || n.parent == nil {
		return openDir(n.cpath)
	}
	a := n.parent
	for a.parent != nil && len(n.cpath)-len(a.parent.cpath) <= unix.PathMax {
		a = a.parent
	}
	afd, err := s.dir(a)
	if err != nil {
		return -1, err
	}
	defer unix.Close(afd)
	// n.cpath continues a's path with "/" and the rest, NUL-terminated.
	return openDirAt(afd, n.cpath[len(a.cpath):])
}

// list reconciles n's children with its directory listing, recursively
// into every child when all is set (else only into new ones).
func (s *Source) list(n *node, all bool) error {
	fd, err := s.dir(n)
	if err != nil {
		return err
	}
	names, err := s.subdirs(fd)
	unix.Close(fd)
	if err != nil {
		return err
	}
	// Both lists are sorted: merge.
	old := n.children
	kept := make([]*node, 0, len(names))
	var added []*node
	i := 0
	for _, name := range names {
		for i < len(old) && old[i].name < name {
			s.dropTree(old[i])
			i++
		}
		if i < len(old) && old[i].name == name {
			c := old[i]
			i++
			if all && !s.sameDir(c) {
				s.dropTree(c)
				if c = s.addChild(n, name); c == nil {
					continue
				}
				added = append(added, c)
			} else if all {
				s.list(c, true)
			}
			kept = append(kept, c)
			continue
		}
		if c := s.addChild(n, name); c != nil {
			kept = append(kept, c)
			added = append(added, c)
		}
	}
	for ; i < len(old); i++ {
		s.dropTree(old[i])
	}
	n.children = kept
	for _, c := range added {
		s.list(c, true)
	}
	return nil
}

// sameDir reports whether c's path still names the directory c was made
// from (not a removed and recreated cgroup of the same name).
func (s *Source) sameDir(c *node) bool {
	var st unix.Stat_t
	if len(c.cpath) > unix.PathMax {
		fd, err := s.dir(c)
		if err != nil {
			return false
		}
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		return err == nil && governor.CgroupID(st.Ino) == c.id
	}
	if err := unix.Stat(string(c.cpath[:len(c.cpath)-1]), &st); err != nil {
		return false
	}
	return governor.CgroupID(st.Ino) == c.id
}

// addChild makes a node for the directory name below n (not yet linked
// into n.children). nil if it is already gone.
func (s *Source) addChild(n *node, name string) *node {
	path := string(n.cpath[:len(n.cpath)-1]) + "/" + name
	c, err := s.newNode(n, name, path)
	if err != nil {
		if !gone(err) && !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ELOOP) {
			s.log.Debug("skipping unreadable cgroup", "path", path, "error", err)
		}
		return nil
	}
	return c
}

// dropTree forgets n and its subtree (not unlinking n from its parent).
func (s *Source) dropTree(n *node) {
	for _, c := range n.children {
		s.dropTree(c)
	}
	n.children = nil
	s.unkeepAll(n)
	if n.wd >= 0 {
		delete(s.byWD, n.wd)
		if s.inofd >= 0 {
			unix.InotifyRmWatch(s.inofd, uint32(n.wd)) // fails harmlessly if already gone
		}
		n.wd = -1
	}
}

// child returns n's child called name and its index, or where it would go.
func (n *node) child(name string) (*node, int) {
	i := sort.Search(len(n.children), func(i int) bool { return n.children[i].name >= name })
	if i < len(n.children) && n.children[i].name == name {
		return n.children[i], i
	}
	return nil, i
}

// drain applies the queued inotify events to the tree.
func (s *Source) drain() {
	if s.evbuf == nil {
		s.evbuf = make([]byte, 64<<10)
	}
	for {
		nr, err := unix.Read(s.inofd, s.evbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || nr <= 0 {
			return // EAGAIN: queue empty
		}
		b := s.evbuf[:nr]
		for len(b) >= unix.SizeofInotifyEvent {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
			size := unix.SizeofInotifyEvent + int(ev.Len)
			if size > len(b) {
				break
			}
			name := b[unix.SizeofInotifyEvent:size]
			if i := indexNUL(name); i >= 0 {
				name = name[:i]
			}
			s.event(ev.Wd, ev.Mask, name)
			b = b[size:]
		}
	}
}

func (s *Source) event(wd int32, mask uint32, name []byte) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		s.rescan = true
		s.markDirty(s.tree)
		return
	}
	n := s.byWD[wd]
	if n == nil {
		return // a watch already dropped
	}
	isDir := mask&unix.IN_ISDIR != 0
	switch {
	case isDir && mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		if c, i := n.child(string(name)); c == nil {
			if c = s.addChild(n, string(name)); c != nil {
				n.children = slices.Insert(n.children, i, c)
				s.list(c, true)
			}
		}
	case isDir && mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
		if c, i := n.child(string(name)); c != nil {
			s.dropTree(c)
			n.children = slices.Delete(n.children, i, i+1)
		}
	case mask&unix.IN_MODIFY != 0:
		n.dirty = true
		if string(name) == "cgroup.subtree_control" {
			// Controller files appear or vanish in the children.
			for _, c := range n.children {
				c.dirty = true
			}
		}
	}
}

func (s *Source) markDirty(n *node) {
	n.dirty = true
	for _, c := range n.children {
		s.markDirty(c)
	}
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
		s.unkeepAll(n)
		return nil
	}
	what := rdAll
	s.probe = !n.read || n.dirty || s.walkAll || (s.gen+uint64(n.id))%probeEvery == 0
	if n.quiet && !n.dirty && !s.walkAll && !isRoot {
		if (s.gen+uint64(n.id))%quietRefresh != 0 || (!s.probe && n.absent&slowFiles == slowFiles) {
			// Nothing can have changed the PSI and cpu counters: they
			// stand still as of this tick.
			n.prev.at = s.tickAt
			return nil
		}
		what = rdMem | rdIO
	}
	s.reading = n
	// A full read is of a cgroup not known to be quiet: its files may stay
	// open for the next tick (a refresh of a quiet one closes them).
	s.keepNow = s.keep && what == rdAll
	err := s.readCgroup(n, isRoot, what)
	s.reading = nil
	if s.dirfd >= 0 {
		unix.Close(s.dirfd)
		s.dirfd = -1
	}
	if err != nil {
		s.unkeepAll(n)
		return err
	}
	n.dirty = false
	if what == rdAll {
		n.quiet = !isRoot && isQuiet(&n.base)
	}
	if n.quiet {
		s.unkeepAll(n) // not read every tick any more
	}
	return nil
}

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

// subdirs lists the names of the child directories of the open directory
// fd, sorted.
func (s *Source) subdirs(fd int) ([]string, error) {
	var names []string
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
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

// gone reports whether err means the cgroup (or file) was removed.
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
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

// maxKeptFiles bounds the files a Source keeps open between ticks (each
// costs the kernel an open file and a page of seq_file buffer): with all
// twelve files, the cgroups read every tick up to about 85 of them; the
// files of more are opened for each read.
const maxKeptFiles = 1024

// keepFiles tells whether the files of busy cgroups below root may stay
// open between reads, and how many: only on cgroupfs, where reading an open
// file of a removed cgroup (or of a controller disabled since) fails with
// ENODEV instead of serving stale content, and at most a quarter of the
// process's file descriptor limit.
func keepFiles(root string) (bool, int) {
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return false, 0
	}
	n := maxKeptFiles
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/4 < uint64(n) {
		n = int(lim.Cur / 4)
	}
	return true, n
}

// keepFD keeps the open file fd at *kfd (fd+1) when the budget allows, or
// closes it.
func (s *Source) keepFD(kfd *int32, fd int) {
	if len(s.box.kept) >= s.maxKept {
		unix.Close(fd)
		return
	}
	*kfd = int32(fd + 1)
	s.box.kept[int32(fd)] = struct{}{}
}

// unkeep closes the file kept at *kfd, if any.
func (s *Source) unkeep(kfd *int32) {
	if *kfd == 0 {
		return
	}
	fd := *kfd - 1
	*kfd = 0
	delete(s.box.kept, fd)
	unix.Close(int(fd))
}

// unkeepAll closes every file kept open for n.
func (s *Source) unkeepAll(n *node) {
	if n.fds == nil {
		return
	}
	for f := range n.fds {
		s.unkeep(&n.fds[f])
	}
}

// readKept reads the file kept open at *kfd from its start. ok is false
// when none is kept or the read failed or came back empty; the file is then
// closed, and the caller reads it by name (which tells a removed file from
// a removed cgroup; ENODEV is what both give an open file). An empty file
// is not kept because a seq_file that read empty at offset 0 is not
// necessarily generated again by the next read at 0 on older kernels.
func (s *Source) readKept(kfd *int32) (b []byte, ok bool) {
	if *kfd == 0 {
		return nil, false
	}
	b, err := s.pread(int(*kfd - 1))
	if err == nil && len(b) > 0 {
		return b, true
	}
	s.unkeep(kfd)
	return nil, false
}

// pread reads the kept file fd from offset 0 into the shared buffer (a
// seq_file generates its content again on a read at offset 0). The files
// kept are cgroupfs and procfs seq_files of a single record, which one read
// returns whole when the buffer holds it: a short read is the end of the
// file, and the read that would return 0 is spared.
func (s *Source) pread(fd int) ([]byte, error) {
	n := 0
	for {
		if n == len(s.buf) {
			if err := s.grow(); err != nil {
				return nil, err
			}
		}
		m, err := unix.Pread(fd, s.buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		n += m
		if m == 0 || n < len(s.buf) {
			return s.buf[:n], nil
		}
	}
}

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
			return b, true, nil
		}
	}
	bit := uint16(1) << f
	if !s.probe && n.absent&bit != 0 {
		return nil, false, nil
	}
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
		if err == nil && len(b) > 0 && s.keepNow && len(s.box.kept) < s.maxKept {
			if n.fds == nil {
				n.fds = new([numFiles]int32)
			}
			s.keepFD(&n.fds[f], fd)
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
	if what == rdAll || prev == nil {
		what = rdAll
		*smp = governor.Sample{Ref: governor.Ref{ID: n.id, Path: n.rel}, Populated: isRoot || smp.Populated}
		*cur = counters{gen: s.gen, at: now, slow: now}
	} else {
		*cur = *prev
		cur.gen, cur.slow = s.gen, now
		cur.has &^= hasEvents | hasIO
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
		n.psiStill, n.stillGen = still, s.gen
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

package cgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"unsafe"

	"github.com/governor-dev/governor/governor"
	"golang.org/x/sys/unix"
)

// watchTree is the Source's tree of the cgroup hierarchy and what keeps it
// current: one inotify watch per cgroup directory, or a listing of every
// directory every tick without inotify.
type watchTree struct {
	tree    *node
	byWD    map[int32]*node
	inofd   int  // inotify fd, -1 without
	walkAll bool // no usable inotify: list every directory every tick
	rescan  bool // the next Sample lists the whole hierarchy again
	evbuf   []byte
	dents   []byte // reusable getdents buffer
}

// watchMask is what inotify reports for each cgroup directory.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_MODIFY | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

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
				s.fds.box.ino = fd
			}
		}
		s.fds.keep, s.fds.max = keepFiles(s.root)
		s.psiGate = s.fds.keep
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
	s.fds.unkeepAll(n)
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

package cgroup

import (
	"golang.org/x/sys/unix"
)

// fdCache is what the Source keeps open between ticks: the files of busy
// cgroups (node.fds) and the host's pressure files (Source.hostFDs), within
// a budget.
type fdCache struct {
	box     *fdBox
	keep    bool // busy cgroups' files stay open between reads (cgroupfs)
	keepNow bool // ... and this read is one whose files may stay open
	max     int  // how many files may stay open at once
}

// fdBox holds the descriptors a Source keeps between ticks, for the
// cleanup of a Source that is never closed.
type fdBox struct {
	ino  int                // inotify, -1 none
	kept map[int32]struct{} // files kept open (node.fds, Source.hostFDs)
}

// maxKeptFiles bounds the files a Source keeps open between ticks (each
// costs the kernel an open file and a page of seq_file buffer, so up to
// 16 MiB of kernel memory): with all twelve files, the cgroups read every
// tick up to about 340 of them; with cpu.stat and cpu.pressure (a node
// without memory and io controllers, or a busy pod slice whose memory
// stood still) 2,000; the files of more are opened for each read.
// (1,024 before 2026-12-06: at 1,000 populated cgroups, 10 % active, the
// cgroups read every tick needed about 1,400.)
const maxKeptFiles = 4096

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
func (c *fdCache) keepFD(kfd *int32, fd int) {
	if len(c.box.kept) >= c.max {
		unix.Close(fd)
		return
	}
	*kfd = int32(fd + 1)
	c.box.kept[int32(fd)] = struct{}{}
}

// unkeep closes the file kept at *kfd, if any.
func (c *fdCache) unkeep(kfd *int32) {
	if *kfd == 0 {
		return
	}
	fd := *kfd - 1
	*kfd = 0
	delete(c.box.kept, fd)
	unix.Close(int(fd))
}

// unkeepAll closes every file kept open for n.
func (c *fdCache) unkeepAll(n *node) {
	if n.fds == nil {
		return
	}
	for f := range n.fds {
		c.unkeep(&n.fds[f])
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
	s.fds.unkeep(kfd)
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

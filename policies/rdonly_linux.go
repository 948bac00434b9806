package policies

import (
	"os"

	"golang.org/x/sys/unix"
)

// onReadOnlyMount reports whether the open file f is on a mount that is
// read-only (statfs's ST_RDONLY, set for a read-only bind mount as well as
// a read-only file system). Any error reads as "no".
func onReadOnlyMount(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var sfs unix.Statfs_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstatfs(int(fd), &sfs) }); err != nil || serr != nil {
		return false
	}
	return sfs.Flags&unix.ST_RDONLY != 0
}

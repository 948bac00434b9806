package policies

import (
	"os"

	"golang.org/x/sys/unix"
)

// readOnlyMountRoot reports whether the open directory f is the root of a
// read-only mount: statfs's ST_RDONLY (a read-only bind mount or file
// system) and statx's STATX_ATTR_MOUNT_ROOT (Linux 5.8 and later; an older
// kernel does not report it, and the answer is no). Any error reads as no.
func readOnlyMountRoot(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var sfs unix.Statfs_t
	var stx unix.Statx_t
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = unix.Fstatfs(int(fd), &sfs); serr != nil {
			return
		}
		serr = unix.Statx(int(fd), "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE, &stx)
	})
	if err != nil || serr != nil {
		return false
	}
	return sfs.Flags&unix.ST_RDONLY != 0 &&
		stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

//go:build unix

package policies

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwnership requires uid 0 and no group/other write permission, except
// that group/other write bits are ignored on a read-only mount.
//
// The exception is for Kubernetes: kubelet mounts a ConfigMap volume as a
// directory of mode 0777 (1777 with fsGroup) that no pod spec can change
// (kubernetes#125876, kubernetes#136032), and always mounts it read-only
// into the container. Through a read-only mount nobody, root included, can
// create, rename or change an entry without remounting it first, which
// needs CAP_SYS_ADMIN in the mount's namespace (root-equivalent anyway).
// The owner must still be root, so a user's file on a read-only mount is
// refused as before. The read-only flag comes from fstatfs on the opened
// file (ST_RDONLY: the mount's or the superblock's), so it describes the
// very file that is read.
func checkOwnership(f *os.File, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("has unknown ownership")
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w (owner uid %d)", errNotRoot, st.Uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && !onReadOnlyMount(f) {
		return fmt.Errorf("%w (mode %#o)", errWritable, perm)
	}
	return nil
}

// openFlags are added to O_RDONLY when opening a resolved policy path: it
// is no symlink any more (one swapped in meanwhile fails the open), and a
// FIFO swapped in cannot block the open.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

//go:build unix

package policies

import (
	"fmt"
	"io/fs"
	"syscall"
)

// checkOwnership requires uid 0 and no group/other write permission.
func checkOwnership(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("has unknown ownership")
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w (owner uid %d)", errNotRoot, st.Uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w (mode %#o)", errWritable, perm)
	}
	return nil
}

// openFlags are added to O_RDONLY when opening a resolved policy path: it
// is no symlink any more (one swapped in meanwhile fails the open), and a
// FIFO swapped in cannot block the open.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

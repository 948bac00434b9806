//go:build unix

package governor

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// stateOpenFlags: never follow a symlink at the state file's name, never
// block opening a FIFO planted there.
const stateOpenFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// checkStateOwner requires the daemon's own uid and no group or other
// write permission.
func checkStateOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("has unknown ownership")
	}
	if euid := os.Geteuid(); int64(st.Uid) != int64(euid) {
		return fmt.Errorf("is owned by uid %d, not the governor's uid %d", st.Uid, euid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("is writable by group or others (mode %#o)", perm)
	}
	return nil
}

//go:build unix

package policies

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwnership requires uid 0 and no group/other write permission, with
// one exception: a directory that is the root of a read-only mount may
// have group/other write bits.
//
// The exception is for Kubernetes: kubelet writes a ConfigMap volume as a
// directory of mode 0777 (1777 with fsGroup) that no pod spec can change
// (kubernetes#125876, kubernetes#136032) and bind-mounts it read-only into
// the container, where it is the root of its own mount. Through that
// mount nobody can create, rename or remove an entry without remounting
// it, which takes CAP_SYS_ADMIN (root already); kubelet's writable copy
// lies under /var/lib/kubelet/pods, which only root can enter. A read-only
// mount alone is not enough: ProtectSystem=strict makes all of /etc
// read-only inside the service while others can still write it outside,
// so a plain directory on such a mount, and every file, is checked as
// usual. The owner must be root in every case. Both facts come from the
// opened directory (fstatfs, statx), so they describe what is read.
func checkOwnership(f *os.File, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("has unknown ownership")
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w (owner uid %d)", errNotRoot, st.Uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 && !(fi.IsDir() && readOnlyMountRoot(f)) {
		return fmt.Errorf("%w (mode %#o)", errWritable, perm)
	}
	return nil
}

// openFlags are added to O_RDONLY when opening a resolved policy path: it
// is no symlink any more (one swapped in meanwhile fails the open), and a
// FIFO swapped in cannot block the open.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

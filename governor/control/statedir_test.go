package control

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Case 10 of the trust-boundary issue: the socket's directory is the state
// directory (--state-dir); a missing one is created 0700 (0710 with the
// socket's group, so its members can reach the socket), never 0755.
func TestListenCreatesStateDirPrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to the group)")
	}
	for _, tc := range []struct {
		group string
		mode  os.FileMode
		gid   uint32
		// premade: the directory exists already at 0700, as the daemon's
		// lock (made before the socket) leaves it; 0755: one an operator
		// made, left as it is.
		premade os.FileMode
	}{{"", 0o700, 0, 0}, {"65534", 0o710, 65534, 0}, {"65534", 0o710, 65534, 0o700}, {"65534", 0o755, 0, 0o755}} {
		dir := filepath.Join(t.TempDir(), "run", "governor")
		if tc.premade != 0 {
			if err := os.MkdirAll(dir, tc.premade); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, tc.premade)
		}
		s, err := Listen(Options{Path: filepath.Join(dir, "control.sock"), Group: tc.group}, Backend{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.mode || fi.Sys().(*syscall.Stat_t).Gid != tc.gid {
			t.Errorf("group %q, premade %v: state directory mode %v gid %d, want %v gid %d", tc.group, tc.premade, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, tc.mode, tc.gid)
		}
	}
}

package governor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests for the trust boundary around the state file (docs/THREAT-MODEL.md,
// "The state file and recorded effects").

func writeState(t *testing.T, path string, entries ...StateEntry) {
	t.Helper()
	b, err := json.Marshal(stateFile{Version: stateVersion, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, and files owned by root)")
	}
}

// refusedAside reports whether exactly one <path>.refused-* exists.
func refusedAside(t *testing.T, path string) bool {
	t.Helper()
	m, err := filepath.Glob(path + ".refused-*")
	if err != nil {
		t.Fatal(err)
	}
	return len(m) == 1
}

// Case 9 and 10: a state file is read only when nobody but the daemon can
// have written it, and only up to MaxStateSize bytes; anything else is
// moved aside and the daemon starts without it.
func TestStateFileRefusedUnlessSafe(t *testing.T) {
	needRoot(t)
	valid := StateEntry{ID: web, Path: "system.slice/web.service", Knob: "memory.low", Original: "0", Written: 1 << 30, Owner: "keep"}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir, path string)
		want  string // in the error; "" loads
	}{
		{"valid", func(t *testing.T, dir, path string) { writeState(t, path, valid) }, ""},
		{"symlink to a large file", func(t *testing.T, dir, path string) {
			big := filepath.Join(t.TempDir(), "big")
			if err := os.WriteFile(big, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(big, 64<<20); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(big, path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"symlink to a valid state file", func(t *testing.T, dir, path string) {
			other := filepath.Join(t.TempDir(), "state.json")
			writeState(t, other, valid)
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"FIFO", func(t *testing.T, dir, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"larger than MaxStateSize", func(t *testing.T, dir, path string) {
			writeState(t, path, valid)
			if err := os.Truncate(path, MaxStateSize+1); err != nil {
				t.Fatal(err)
			}
		}, "more than"},
		{"owned by another user", func(t *testing.T, dir, path string) {
			writeState(t, path, valid)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
		{"group-writable", func(t *testing.T, dir, path string) {
			writeState(t, path, valid)
			if err := os.Chmod(path, 0o620); err != nil {
				t.Fatal(err)
			}
		}, "writable by group or others"},
		{"world-writable", func(t *testing.T, dir, path string) {
			writeState(t, path, valid)
			if err := os.Chmod(path, 0o606); err != nil {
				t.Fatal(err)
			}
		}, "writable by group or others"},
		{"directory mode 0777", func(t *testing.T, dir, path string) {
			writeState(t, path, valid)
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "directory"},
		{"directory of another user", func(t *testing.T, dir, path string) {
			writeState(t, path, valid)
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "state.json")
			tc.setup(t, dir, path)
			type result struct {
				e   []StateEntry
				err error
			}
			done := make(chan result, 1)
			go func() {
				e, err := LoadState(path)
				done <- result{e, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("LoadState did not return within 5 s")
			}
			if tc.want == "" {
				if r.err != nil || len(r.e) != 1 {
					t.Fatalf("valid state file: %v %+v", r.err, r.e)
				}
				return
			}
			if r.err == nil || !strings.Contains(r.err.Error(), "refused") || !strings.Contains(r.err.Error(), tc.want) ||
				!strings.Contains(r.err.Error(), path) {
				t.Fatalf("LoadState = %v, want a refusal naming %s and %q", r.err, path, tc.want)
			}
			if r.e != nil {
				t.Errorf("entries from a refused file: %+v", r.e)
			}
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("refused file still at %s: %v", path, err)
			}
			if !refusedAside(t, path) {
				t.Errorf("refused file not kept as %s.refused-<time>", path)
			}
		})
	}
}

// Case 10: saving into a directory others can write fails (a record there
// would be refused on the next start, so it is no record).
func TestSaveStateRefusesInsecureDirectory(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.json")
	e := []StateEntry{{ID: web, Path: "a", Knob: "memory.low", Original: "0", Written: 1}}
	if err := saveState(path, e, time.Now()); err != nil {
		t.Fatalf("0700 directory: %v", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := saveState(path, e, time.Now()); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("0777 directory: saveState = %v, want a refusal", err)
	}
	fresh := filepath.Join(t.TempDir(), "new", "state.json")
	if err := saveState(fresh, e, time.Now()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(fresh)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new state directory: %v %v, want 0700", fi.Mode().Perm(), err)
	}
}

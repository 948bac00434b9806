package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lockDaemon on fixture directories: a second lock on the same state
// directory or the same cgroup root fails naming this pid and the holder's
// state directory and root; a dry run takes only the state directory's
// lock; closing releases both.
func TestLockDaemon(t *testing.T) {
	root, stateA, stateB, stateC := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	first, err := lockDaemon(stateA, root, false)
	if err != nil {
		t.Fatal(err)
	}
	// A state directory it has to make is made 0700 (docs/THREAT-MODEL.md).
	fresh := filepath.Join(t.TempDir(), "run", "governor")
	fl, err := lockDaemon(fresh, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	fl.Close()
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new state directory: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}
	want := fmt.Sprintf("another governor (pid %d) governs %s; state dir %s", os.Getpid(), root, stateA)
	for _, tc := range []struct {
		name, state string
		dry         bool
	}{
		{"same state dir", stateA, false},
		{"other state dir", stateB, false},
		{"dry run, same state dir", stateA, true},
	} {
		if _, err := lockDaemon(tc.state, root, tc.dry); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, want)
		}
	}
	// A dry run beside it, in a state directory of its own.
	dry, err := lockDaemon(stateC, root, true)
	if err != nil {
		t.Fatalf("dry run beside: %v", err)
	}
	if _, err := lockDaemon(stateC, t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "dry run") {
		t.Errorf("state dir of a dry run: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(stateA, lockName))
	if got := fmt.Sprintf("%d\n%s\n", os.Getpid(), root); string(b) != got {
		t.Errorf("lock file %q, want %q", b, got)
	}
	first.Close()
	dry.Close()
	again, err := lockDaemon(stateB, root, false)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}

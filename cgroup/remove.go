package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// RemoveTree kills every process in the cgroup tree at dir (cgroup.kill,
// 5.14+; on older kernels the caller must have stopped them) and removes its
// directories, deepest first, retrying until they are gone or timeout has
// passed, when it returns the last error. A dir that does not exist is not
// an error. For tests and tools: the daemon never removes a cgroup.
func RemoveTree(dir string, timeout time.Duration) error {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(timeout)
	for {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// WalkDir lists a directory before its children: reversed, every
		// child comes before its parent.
		slices.Reverse(dirs)
		var last error
		for _, d := range dirs {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				last = err
			}
		}
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup tree %s: %w", dir, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

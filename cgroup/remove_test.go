package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRemoveTreeKernel removes a populated three-level tree from the real
// hierarchy: the process in the leaf is killed and every directory goes.
func TestRemoveTreeKernel(t *testing.T) {
	root := kernelRoot(t)
	top := filepath.Join(root, fmt.Sprintf("governor-removetree-test-%d", os.Getpid()))
	leaf := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(top, "c"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTree(top, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(top); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", top, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the process in the tree was not killed")
	}
}

// TestRemoveTreeErrors: nothing to remove is no error; a tree that cannot
// be removed (a plain directory holding a file) fails after the timeout,
// naming the tree.
func TestRemoveTreeErrors(t *testing.T) {
	dir := t.TempDir()
	if err := RemoveTree(filepath.Join(dir, "absent"), time.Second); err != nil {
		t.Errorf("absent tree: %v", err)
	}
	stuck := filepath.Join(dir, "stuck")
	if err := os.MkdirAll(filepath.Join(stuck, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stuck, "sub", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := RemoveTree(stuck, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), stuck) {
		t.Errorf("stuck tree: %v, want an error naming %s", err, stuck)
	}
}

package cgroup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// TestKernelSourceNotifications checks, on the real cgroup2 hierarchy, the
// kernel behaviour the Source's change detection relies on: cgroupfs
// reports mkdir and rmdir to inotify, and a task entering an idle ("quiet")
// cgroup is seen at the next Sample (kernfs notifies cgroup.events).
func TestKernelSourceNotifications(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "idle")
	parent := filepath.Dir(rel)
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return p == "" || strings.HasPrefix(p, parent) }})
	defer src.Close()
	var snap governor.Snapshot
	sample := func() *governor.Sample {
		t.Helper()
		snap.Reset(time.Now())
		if err := src.Sample(context.Background(), &snap); err != nil {
			t.Fatal(err)
		}
		for _, c := range snap.Cgroups {
			if c.Path == rel {
				return c
			}
		}
		return nil
	}
	if sample() == nil {
		t.Fatal("test cgroup not sampled")
	}
	if src.inofd < 0 || src.walkAll {
		t.Fatal("inotify not in use on cgroupfs")
	}
	// PSI averages of a fresh cgroup are zero: quiet after two reads.
	time.Sleep(50 * time.Millisecond)
	sample()
	var n *node
	for _, c := range src.tree.children {
		if c.rel == parent {
			n, _ = c.child("idle")
		}
	}
	if n == nil || !n.quiet {
		t.Fatalf("idle cgroup not quiet: %+v", n)
	}

	// mkdir and rmdir are seen without listing.
	dir := filepath.Join(root, parent, "new")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	sample()
	if !strings.Contains(paths(&snap), "/"+parent+"/new") {
		t.Errorf("new cgroup not seen: %s", paths(&snap))
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	sample()
	if strings.Contains(paths(&snap), "/"+parent+"/new") {
		t.Errorf("removed cgroup still listed: %s", paths(&snap))
	}

	// A task enters the quiet cgroup: seen at the next Sample.
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(root, rel, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		if s := sample(); s != nil && s.Populated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("task entering a quiet cgroup not seen")
		}
	}
	if n.quiet {
		t.Error("populated cgroup still quiet")
	}
	// And leaving it: populated goes back to false without a write there.
	cmd.Process.Kill()
	cmd.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		if s := sample(); s != nil && !s.Populated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("emptied cgroup still populated")
		}
	}
}

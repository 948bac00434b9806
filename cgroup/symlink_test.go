package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/governor-dev/governor/governor"
)

// A symlink planted inside the cgroup tree (a fixture tree here: cgroupfs
// itself has no symlinks, which is exactly why one must never be trusted)
// must not lead any Actuator operation outside the root: neither a
// symlinked cgroup directory nor a symlinked knob file inside a real
// cgroup directory, for every operation, with and without openat2.
func TestActuatorRefusesSymlinksEverywhere(t *testing.T) {
	check := func(t *testing.T) {
		root, a := actuatorFixture(t)
		outside := t.TempDir()
		victim := mkCgroup(t, outside, "victim", map[string]string{
			"memory.high": "max\n", "memory.low": "0\n", "memory.reclaim": "", "cgroup.kill": "",
			"cgroup.freeze": "0\n", "cgroup.events": "populated 1\nfrozen 0\n", "cpu.weight": "100\n",
			"cpu.max": "max 100000\n", "io.weight": "default 100\n",
		})
		before := snapshotDir(t, victim)
		// A symlinked cgroup directory...
		if err := os.Symlink(victim, filepath.Join(root, "batch", "evil")); err != nil {
			t.Fatal(err)
		}
		// ...and a real cgroup directory whose knob files are symlinks.
		mkCgroup(t, root, "batch/files", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
		for name := range before {
			if name == "cgroup.events" {
				continue
			}
			if err := os.Symlink(filepath.Join(victim, name), filepath.Join(root, "batch/files", name)); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		for _, ref := range []governor.Ref{{ID: 90, Path: "batch/evil"}, {ID: 91, Path: "batch/files"}} {
			ops := map[string]error{}
			for k := governor.Knob(0); k < governor.NumKnobs; k++ {
				v := int64(1 << 20)
				if k == governor.CPUWeight || k == governor.IOWeight {
					v = 50
				}
				if k == governor.CPUIdle {
					v = 1
				}
				ops["write "+k.String()] = a.Write(ctx, ref, k, v)
				ops["restore "+k.String()] = a.Restore(ctx, ref, k, governor.Setting{Raw: "1"})
				_, err := a.Read(ctx, ref, k)
				if err == nil {
					ops["read "+k.String()] = errors.New("read through a symlink succeeded")
				}
			}
			ops["reclaim"] = a.Reclaim(ctx, ref, 1<<20)
			ops["freeze"] = a.Freeze(ctx, ref, true)
			ops["kill"] = a.Kill(ctx, ref)
			for op, err := range ops {
				if err == nil {
					t.Errorf("%s on %s: no error", op, ref.Path)
				}
			}
		}
		if after := snapshotDir(t, victim); !equalMaps(before, after) {
			t.Errorf("a write escaped the root through a symlink:\nbefore %v\nafter  %v", before, after)
		}
	}
	t.Run("openat2", check)
	t.Run("lstat fallback", func(t *testing.T) {
		noOpenat2.Store(true)
		defer noOpenat2.Store(false)
		check(t)
	})
}

// The Source never walks into a symlinked directory (covered by
// TestSourceFixture) and never follows a symlinked file inside a cgroup:
// a planted memory.current -> /outside/file must not become a signal.
func TestSourceIgnoresSymlinkedFiles(t *testing.T) {
	root, proc := sourceFixture(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "memory.current")
	writeFixture(t, secret, "123456789\n")
	mkCgroup(t, root, "planted", map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	if err := os.Symlink(secret, filepath.Join(root, "planted", "memory.current")); err != nil {
		t.Fatal(err)
	}
	s := NewSource(root, SourceOptions{ProcPressureDir: proc})
	var snap governor.Snapshot
	if err := s.Sample(context.Background(), &snap); err != nil {
		t.Fatal(err)
	}
	for _, c := range snap.Cgroups {
		if c.Path == "planted" {
			if v, ok := c.Get(governor.MemoryCurrent); ok {
				t.Errorf("Source followed a symlinked memory.current out of the root: %v", v)
			}
			return
		}
	}
	t.Fatalf("planted cgroup not in the snapshot")
}

func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		m[e.Name()] = readFixture(t, filepath.Join(dir, e.Name()))
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

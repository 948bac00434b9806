package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// TestMovesKernel reads the cgroup iterator over a subtree of the host's
// cgroup v2 hierarchy: every cgroup once, parents first; an idle cgroup's
// record the same at two reads, and left standing below a still parent;
// a cgroup where a task spins, and its parent, moved, its idle sibling
// not; a task that starts below a parent whose record stood, seen.
func TestMovesKernel(t *testing.T) {
	requireBPF(t)
	base := mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-moves-%d", os.Getpid()))
	a := mkCgroup(t, base.dir, "a")
	b := mkCgroup(t, base.dir, "b")
	deep := mkCgroup(t, b.dir, "deep")

	m := openMovesOrSkip(t, base.dir)
	defer m.Close()

	read := func() map[governor.CgroupID]governor.CgroupMove {
		t.Helper()
		recs, err := m.Moves(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 || recs[0].ID != base.ID {
			t.Fatalf("records %+v: want base %d first, 4 in all", recs, base.ID)
		}
		pos := map[governor.CgroupID]int{}
		for i, r := range recs {
			if r.Unknown {
				t.Errorf("cgroup %d: no pressure data", r.ID)
			}
			pos[r.ID] = i
		}
		if !(pos[b.ID] < pos[deep.ID]) {
			t.Errorf("deep (%d) before its parent b (%d): %+v", deep.ID, b.ID, recs)
		}
		out := map[governor.CgroupID]governor.CgroupMove{}
		for _, r := range recs {
			out[r.ID] = r
		}
		return out
	}
	r1 := read()
	time.Sleep(50 * time.Millisecond)
	r2 := read()
	for _, c := range []testCgroup{a, b, deep} {
		if r1[c.ID] != r2[c.ID] {
			t.Errorf("%s: idle, yet %+v then %+v", c.Path, r1[c.ID], r2[c.ID])
		}
	}
	// base stood still: its descendants' records stand, unread.
	if n := m.Stood(); n != 3 {
		t.Errorf("second walk of an idle subtree: %d records left standing, want 3 (a, b, deep)", n)
	}

	var p procs
	defer p.stop()
	p.start(t, "spin", a, 0, nil, nil)
	time.Sleep(200 * time.Millisecond)
	r3 := read()
	moved := func(x, y governor.CgroupMove) bool {
		return x.NonIdle != y.NonIdle || y.Active&8 != 0
	}
	if !moved(r2[a.ID], r3[a.ID]) {
		t.Errorf("a: a task spins there, yet %+v then %+v", r2[a.ID], r3[a.ID])
	}
	if !moved(r2[base.ID], r3[base.ID]) {
		t.Errorf("base: a task spins below it, yet %+v then %+v", r2[base.ID], r3[base.ID])
	}
	if r2[b.ID] != r3[b.ID] || r2[deep.ID] != r3[deep.ID] {
		t.Errorf("b, deep: idle, yet %+v %+v then %+v %+v", r2[b.ID], r2[deep.ID], r3[b.ID], r3[deep.ID])
	}
	// base moved, b did not: deep's record stands.
	if n := m.Stood(); n != 1 {
		t.Errorf("a spinning, b idle: %d records left standing, want 1 (deep)", n)
	}
	// A task that starts below a parent whose record stood: the parent
	// moves with it, so the child is measured and seen.
	p.start(t, "spin", deep, 0, nil, nil)
	time.Sleep(200 * time.Millisecond)
	r4 := read()
	if !moved(r3[deep.ID], r4[deep.ID]) || !moved(r3[b.ID], r4[b.ID]) {
		t.Errorf("deep, b: a task spins in deep, yet %+v %+v then %+v %+v", r3[deep.ID], r3[b.ID], r4[deep.ID], r4[b.ID])
	}
	if n := m.Stood(); n != 0 {
		t.Errorf("every cgroup moved: %d records left standing", n)
	}
	// The kernel's own file agrees that the spinner's cgroup used CPU.
	if st, err := os.ReadFile(filepath.Join(a.dir, "cpu.stat")); err != nil || len(st) == 0 {
		t.Fatalf("cpu.stat of a: %v", err)
	}
}

// TestOpenMovesNotCgroup: a directory outside cgroupfs is refused with a
// clear error.
func TestOpenMovesNotCgroup(t *testing.T) {
	requireBPF(t)
	_, err := OpenMoves(t.TempDir())
	if err == nil {
		t.Fatal("OpenMoves of a plain directory succeeded")
	}
	t.Log(err)
}

// TestOpenMovesAtRoot: at the hierarchy's root, where the daemon opens
// it. The root cgroup has no pressure data of its own (the kernel keeps
// the system's apart), which once made OpenMoves refuse every host.
func TestOpenMovesAtRoot(t *testing.T) {
	requireBPF(t)
	mkCgroup(t, unifiedRoot, fmt.Sprintf("governor-moves-root-%d", os.Getpid()))
	m := openMovesOrSkip(t, unifiedRoot)
	defer m.Close()
	recs, err := m.Moves(nil)
	if err != nil {
		t.Fatal(err)
	}
	known := 0
	for _, r := range recs {
		if !r.Unknown {
			known++
		}
	}
	if len(recs) < 2 || known == 0 {
		t.Errorf("%d records, %d with pressure data, the first %+v", len(recs), known, recs[0])
	}
}

// openMovesOrSkip opens the iterator at dir; a kernel before 6.1 (no
// cgroup iterator) skips the test, any other failure fails it.
func openMovesOrSkip(t *testing.T, dir string) *Moves {
	t.Helper()
	m, err := OpenMoves(dir)
	if err == nil {
		return m
	}
	var u unix.Utsname
	var major, minor int
	if unix.Uname(&u) == nil {
		fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	}
	if errors.Is(err, ErrUnavailable) && major > 0 && (major < 6 || major == 6 && minor < 1) {
		t.Skipf("Linux %d.%d has no cgroup iterator: %v", major, minor, err)
	}
	t.Fatalf("OpenMoves(%s) on Linux %d.%d (6.1+ has the cgroup iterator): %v", dir, major, minor, err)
	return nil
}

// TestDumpHash: the batch read and the iteration it falls back to give
// the same entries, across several batches and with the map changing
// between reads.
func TestDumpHash(t *testing.T) {
	requireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for k := uint64(1); k <= 3000; k++ {
		if err := m.Put(k, uint32(k*7)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(noBatch bool, want int) {
		t.Helper()
		nb := noBatch
		keys, vals, err := dumpHash(m, &nb, []uint64(nil), []uint32(nil))
		if err != nil {
			t.Fatal(err)
		}
		if nb != noBatch {
			t.Errorf("batch reads unsupported on this kernel (5.6+ has them)")
		}
		seen := map[uint64]bool{}
		for i, k := range keys {
			if vals[i] != uint32(k*7) || seen[k] {
				t.Fatalf("entry %d: key %d value %d (or seen twice)", i, k, vals[i])
			}
			seen[k] = true
		}
		if len(seen) != want {
			t.Errorf("noBatch=%v: %d entries, want %d", noBatch, len(seen), want)
		}
	}
	check(false, 3000)
	check(true, 3000)
	for k := uint64(1); k <= 1000; k++ {
		m.Delete(k)
	}
	check(false, 2000)
	check(true, 2000)
}

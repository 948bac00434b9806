package cgroup

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/governor-dev/governor/governor"
)

func TestParseSwaps(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          string
		total, free int64
		bad         bool
	}{
		{name: "none", in: "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"},
		{name: "empty", in: ""},
		{name: "zram", in: "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0 partition\t1572860\t\t1024\t\t100\n",
			total: 1572860 << 10, free: (1572860 - 1024) << 10},
		{name: "two", in: "Filename Type Size Used Priority\n/swapfile file 1000 1000 -2\n/dev/sdb2 partition 2000 500 -3\n",
			total: 3000 << 10, free: 1500 << 10},
		{name: "short", in: "Filename Type Size Used Priority\n/dev/zram0 partition 100\n", bad: true},
		{name: "negative", in: "Filename Type Size Used Priority\n/dev/zram0 partition -100 0 1\n", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, free, err := ParseSwaps([]byte(tc.in))
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseSwaps accepted %q", tc.in)
				}
				return
			}
			if err != nil || total != tc.total || free != tc.free {
				t.Fatalf("ParseSwaps = %d, %d, %v; want %d, %d", total, free, err, tc.total, tc.free)
			}
		})
	}
}

func TestReadMemory(t *testing.T) {
	root := t.TempDir()
	stat := "anon 817889280\nfile 209715200\nshmem 4194304\npgscan 1200\npgsteal 900\nworkingset_refault_anon 7\nworkingset_refault_file 5\n"
	swaps := filepath.Join(t.TempDir(), "swaps")
	writeFixture(t, swaps, "Filename Type Size Used Priority\n/dev/zram0 partition 1048576 0 100\n")
	mkCgroup(t, root, "batch.slice", map[string]string{"memory.swap.max": "max", "memory.swap.current": "0"})
	mkCgroup(t, root, "batch.slice/job.service", map[string]string{
		"memory.current": "1031798784\n", "memory.stat": stat,
		"memory.swap.max": "104857600\n", "memory.swap.current": "4194304\n",
	})
	mkCgroup(t, root, "noacct.slice", map[string]string{"memory.current": "100\n", "memory.stat": stat})
	a := NewActuator(root, nil)
	a.ProcSwaps = swaps
	m, err := a.ReadMemory(context.Background(), governor.Ref{Path: "batch.slice/job.service"})
	if err != nil {
		t.Fatal(err)
	}
	want := governor.MemoryState{Current: 1031798784, Anon: 817889280, File: 209715200, Shmem: 4194304, Pgscan: 1200, Pgsteal: 900, Refaults: 12,
		SwapRoom: 96 << 20, SwapTotal: 1 << 30, SwapFree: 1 << 30}
	if m != want {
		t.Fatalf("ReadMemory = %+v\nwant %+v", m, want)
	}
	if m.Swap() != 96<<20 || m.FileReclaimable() != 200<<20-4<<20 {
		t.Fatalf("Swap() = %d, FileReclaimable() = %d", m.Swap(), m.FileReclaimable())
	}

	// An ancestor that forbids swap wins over the cgroup's own "max".
	writeFixture(t, filepath.Join(root, "batch.slice", "memory.swap.max"), "0\n")
	writeFixture(t, filepath.Join(root, "batch.slice/job.service", "memory.swap.max"), "max\n")
	if m, err = a.ReadMemory(context.Background(), governor.Ref{Path: "batch.slice/job.service"}); err != nil || m.SwapRoom != 0 || m.Swap() != 0 {
		t.Fatalf("ancestor swap.max 0: %+v, %v", m, err)
	}

	// No swap accounting files: the host alone decides; no swap devices.
	writeFixture(t, swaps, "Filename Type Size Used Priority\n")
	if m, err = a.ReadMemory(context.Background(), governor.Ref{Path: "noacct.slice"}); err != nil || m.SwapRoom != governor.Unlimited || m.SwapTotal != 0 || m.Swap() != 0 {
		t.Fatalf("no accounting, no swap: %+v, %v", m, err)
	}

	if _, err = a.ReadMemory(context.Background(), governor.Ref{Path: "../etc"}); err == nil {
		t.Fatal("ReadMemory accepted a path outside the hierarchy")
	}
}

package cgroup

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

func TestClassifySwaps(t *testing.T) {
	const hdr = "Filename Type Size Used Priority\n"
	for _, tc := range []struct {
		name  string
		in    string
		zswap bool
		want  SwapKind
	}{
		{"no file", "", false, SwapNone},
		{"header only", hdr, false, SwapNone},
		{"header only, zswap on", hdr, true, SwapNone},
		{"zram", hdr + "/dev/zram0 partition 1048576 0 100\n", false, SwapFast},
		{"disk", hdr + "/dev/sda2 partition 1048576 0 -2\n", false, SwapSlow},
		{"swap file", hdr + "/swapfile file 1048576 0 -2\n", false, SwapSlow},
		{"disk behind zswap", hdr + "/dev/sda2 partition 1048576 0 -2\n", true, SwapFast},
		{"zram and a disk", hdr + "/dev/zram0 partition 1048576 0 100\n/dev/sda2 partition 1048576 0 -2\n", false, SwapSlow},
		{"disk and zram", hdr + "/dev/sda2 partition 1048576 0 -2\n/dev/zram0 partition 1048576 0 100\n", false, SwapSlow},
	} {
		if got := ClassifySwaps([]byte(tc.in), tc.zswap); got != tc.want {
			t.Errorf("%s: ClassifySwaps = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// reclaimFixture: a cgroup with 200 MiB of page cache (4 MiB of it shmem)
// and the host swap given; the memory.reclaim writes are recorded, and a
// write with swappiness= fails with EINVAL when old is set (a kernel
// before 6.11).
func reclaimFixture(t *testing.T, swaps string, zswap bool, old bool) (*Actuator, *[]string, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	dir := t.TempDir()
	writeFixture(t, filepath.Join(dir, "swaps"), swaps)
	writeFixture(t, filepath.Join(dir, "zswap"), map[bool]string{true: "Y\n", false: "N\n"}[zswap])
	mkCgroup(t, root, "batch.slice", map[string]string{
		"memory.current": "1031798784\n", "memory.reclaim": "",
		"memory.stat": "anon 817889280\nfile 209715200\nshmem 4194304\n",
	})
	var logs bytes.Buffer
	a := NewActuator(root, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	a.ProcSwaps, a.ZswapEnabled = filepath.Join(dir, "swaps"), filepath.Join(dir, "zswap")
	var writes []string
	var closed atomic.Bool
	a.open = func(rel, name string, fl int) (file, error) {
		if name != "memory.reclaim" {
			return a.openFile(rel, name, fl)
		}
		return fakeFile{write: func(b []byte) (int, error) {
			writes = append(writes, string(b))
			if old && strings.Contains(string(b), "swappiness") {
				return 0, unix.EINVAL
			}
			return len(b), nil
		}, closed: &closed}, nil
	}
	return a, &writes, &logs
}

func TestReclaimFileFirst(t *testing.T) {
	const hdr = "Filename Type Size Used Priority\n"
	disk := hdr + "/dev/sda2 partition 1048576 0 -2\n"
	zram := hdr + "/dev/zram0 partition 1048576 0 100\n"
	cg := governor.Ref{Path: "batch.slice"}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		swaps string
		zswap bool
		old   bool
		bytes int64
		want  []string // memory.reclaim writes, in order
		warn  bool     // the "takes no swappiness=" line
	}{
		{"slow swap, page cache to give: file only", disk, false, false, 64 << 20, []string{"67108864 swappiness=0"}, false},
		{"slow swap, less page cache than asked: kernel balance", disk, false, false, 300 << 20, []string{"314572800"}, false},
		{"shmem is not page cache reclaim can drop", disk, false, false, 200 << 20, []string{"209715200"}, false},
		{"fast swap (zram): kernel balance", zram, false, false, 64 << 20, []string{"67108864"}, false},
		{"disk behind zswap: kernel balance", disk, true, false, 64 << 20, []string{"67108864"}, false},
		{"no swap: nothing to choose", hdr, false, false, 64 << 20, []string{"67108864"}, false},
		{"kernel before 6.11: probe, warn, plain write", disk, false, true, 64 << 20, []string{"67108864 swappiness=0", "67108864"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, writes, logs := reclaimFixture(t, tc.swaps, tc.zswap, tc.old)
			if err := a.Reclaim(ctx, cg, tc.bytes); err != nil {
				t.Fatal(err)
			}
			if strings.Join(*writes, "|") != strings.Join(tc.want, "|") {
				t.Errorf("writes %q, want %q", *writes, tc.want)
			}
			if got := strings.Contains(logs.String(), "takes no swappiness="); got != tc.warn {
				t.Errorf("warning logged %v, want %v; log: %s", got, tc.warn, logs.String())
			}
		})
	}

	// The probe's answer sticks: an old kernel is asked once, warned about
	// once; a new one keeps getting file-only requests.
	a, writes, logs := reclaimFixture(t, disk, false, true)
	for range 3 {
		if err := a.Reclaim(ctx, cg, 32<<20); err != nil {
			t.Fatal(err)
		}
	}
	if want := "33554432 swappiness=0|33554432|33554432|33554432"; strings.Join(*writes, "|") != want {
		t.Errorf("old kernel, 3 reclaims: writes %q, want %q", *writes, want)
	}
	if n := strings.Count(logs.String(), "takes no swappiness="); n != 1 {
		t.Errorf("%d warnings, want 1", n)
	}
	a, writes, _ = reclaimFixture(t, disk, false, false)
	for range 2 {
		if err := a.Reclaim(ctx, cg, 32<<20); err != nil {
			t.Fatal(err)
		}
	}
	if want := "33554432 swappiness=0|33554432 swappiness=0"; strings.Join(*writes, "|") != want {
		t.Errorf("new kernel, 2 reclaims: writes %q, want %q", *writes, want)
	}

	// Once the probe said yes, a later EINVAL is an error, not a fallback.
	*writes = nil
	a.open = func(rel, name string, fl int) (file, error) {
		if name != "memory.reclaim" {
			return a.openFile(rel, name, fl)
		}
		var closed atomic.Bool
		return fakeFile{write: func(b []byte) (int, error) { *writes = append(*writes, string(b)); return 0, unix.EINVAL }, closed: &closed}, nil
	}
	if err := a.Reclaim(ctx, cg, 32<<20); err == nil || len(*writes) != 1 {
		t.Errorf("EINVAL after a successful probe: %v, writes %q; want the error, one write", err, *writes)
	}
}

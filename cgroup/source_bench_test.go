package cgroup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

// Benchmarks of the primary Source. BenchmarkSourceFixture runs on a
// t.TempDir() fixture tree (any user); BenchmarkSourceKernel on real cgroups
// created in this host's cgroup2 hierarchy (root only, skipped otherwise).
// One op is one Sample of the whole tree; allocs/op divided by the cgroup
// count is the per-cgroup, per-tick allocation figure (BENCHMARKS.md).

const benchFixtureCgroups = 1000

// fixtureTree builds n cgroups, 100 per intermediate directory, each with a
// full set of v2 files (PSI, memory, cpu, io).
func fixtureTree(b *testing.B, n int) string {
	b.Helper()
	root := b.TempDir()
	files := map[string]string{
		"cgroup.events":   "populated 1\nfrozen 0\n",
		"cpu.pressure":    psiFile(100, 50),
		"memory.pressure": psiFile(200, 100),
		"io.pressure":     psiFile(300, 150),
		"memory.current":  "104857600\n",
		"memory.high":     "max\n",
		"memory.max":      "209715200\n",
		"memory.stat":     "anon 52428800\nfile 41943040\nkernel 1048576\nsock 0\nshmem 0\nfile_mapped 1000\n",
		"memory.events":   "low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
		"cpu.stat":        "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
		"io.stat":         "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n",
	}
	for name, c := range files {
		writeFixture(b, filepath.Join(root, name), c)
	}
	for i := 0; i < n; i++ {
		if i%100 == 0 {
			mkCgroup(b, root, fmt.Sprintf("g%03d", i/100), files)
		}
		mkCgroup(b, root, fmt.Sprintf("g%03d/c%05d", i/100, i), files)
	}
	return root
}

func benchSample(b *testing.B, src *Source, want int) {
	ctx := context.Background()
	var snap governor.Snapshot
	// Steady state: the first read finds every cgroup, the second gives
	// rates (and lets idle cgroups go quiet).
	for i := 0; i < 3; i++ {
		snap.Reset(time.Now())
		if err := src.Sample(ctx, &snap); err != nil {
			b.Fatal(err)
		}
	}
	if len(snap.Cgroups) < want {
		b.Fatalf("sampled %d cgroups, want at least %d", len(snap.Cgroups), want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap.Reset(time.Now())
		if err := src.Sample(ctx, &snap); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(snap.Cgroups)), "ns/cgroup")
}

func BenchmarkSourceFixture(b *testing.B) {
	root := fixtureTree(b, benchFixtureCgroups)
	src := NewSource(root, SourceOptions{ProcPressureDir: root})
	benchSample(b, src, benchFixtureCgroups)
}

// BenchmarkSourceKernel creates GOVERNOR_BENCH_CGROUPS (default 10000)
// empty cgroups below <cgroup2 root>/governor-bench-<pid>.
func BenchmarkSourceKernel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	root, err := FindMount()
	if err != nil {
		b.Skip(err)
	}
	n := 10000
	if v := os.Getenv("GOVERNOR_BENCH_CGROUPS"); v != "" {
		fmt.Sscan(v, &n)
	}
	parent := fmt.Sprintf("governor-bench-gotest-%d", os.Getpid())
	b.Cleanup(func() { removeBenchTree(b, filepath.Join(root, parent)) })
	for i := 0; i < n; i++ {
		if err := os.MkdirAll(filepath.Join(root, parent, fmt.Sprintf("g%03d/c%05d", i/100, i)), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	src := NewSource(root, SourceOptions{})
	benchSample(b, src, n)
}

func removeBenchTree(b *testing.B, dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
			b.Errorf("cleanup: %v", err)
		}
	}
}

// BenchmarkSourceKernelBusy samples 100 real cgroups of which 10 hold a
// sleeping task (as governor-bench scale's smallest run), so that they and
// their ancestors are read every tick; the Filter keeps other cgroups of
// this host out. One op is one tick's Sample.
func BenchmarkSourceKernelBusy(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	root, err := FindMount()
	if err != nil {
		b.Skip(err)
	}
	const n, populated = 100, 10
	parent := fmt.Sprintf("governor-bench-gotest-busy-%d", os.Getpid())
	dir := filepath.Join(root, parent)
	var sleepers []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range sleepers {
			c.Process.Kill()
			c.Wait()
		}
		removeBenchTree(b, dir)
	})
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("g%03d/c%05d", i/100, i))
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
		if i < populated {
			c := exec.Command("sleep", "100000")
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			sleepers = append(sleepers, c)
			if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(fmt.Sprint(c.Process.Pid)), 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return p == "" || strings.HasPrefix(p, parent) }})
	defer src.Close()
	benchSample(b, src, n)
}

package cgroup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"golang.org/x/sys/unix"
)

func actuatorFixture(t *testing.T) (string, *Actuator) {
	root := t.TempDir()
	mkCgroup(t, root, "", map[string]string{"cgroup.controllers": "cpu io memory\n"})
	mkCgroup(t, root, "batch/job", map[string]string{
		"cgroup.events":  "populated 1\nfrozen 0\n",
		"cgroup.freeze":  "0\n",
		"cgroup.kill":    "",
		"memory.high":    "max\n",
		"memory.max":     "1073741824\n",
		"memory.low":     "0\n",
		"memory.min":     "0\n",
		"memory.reclaim": "",
		"cpu.weight":     "100\n",
		"cpu.max":        "max 100000\n",
		"cpu.idle":       "0\n",
		"io.weight":      "default 100\n8:0 200\n",
	})
	mkCgroup(t, root, "nomem", map[string]string{"cgroup.events": "populated 0\nfrozen 0\n"})
	return root, NewActuator(root, nil)
}

var job = governor.Ref{ID: 7, Path: "batch/job"}

func TestActuatorRead(t *testing.T) {
	_, a := actuatorFixture(t)
	ctx := context.Background()
	for _, tt := range []struct {
		k   governor.Knob
		val int64
		raw string
	}{
		{governor.MemoryHigh, governor.Unlimited, "max"},
		{governor.MemoryMax, 1 << 30, "1073741824"},
		{governor.MemoryLow, 0, "0"},
		{governor.CPUWeight, 100, "100"},
		{governor.CPUMax, governor.Unlimited, "max 100000"},
		{governor.CPUIdle, 0, "0"},
		{governor.IOWeight, 100, "default 100\n8:0 200"},
	} {
		s, err := a.Read(ctx, job, tt.k)
		if err != nil {
			t.Errorf("%v: %v", tt.k, err)
			continue
		}
		if s.Value != tt.val || s.Raw != tt.raw {
			t.Errorf("%v: got %+v, want {%d %q}", tt.k, s, tt.val, tt.raw)
		}
	}
}

func TestActuatorWrite(t *testing.T) {
	root, a := actuatorFixture(t)
	dir := filepath.Join(root, "batch/job")
	ctx := context.Background()
	for _, tt := range []struct {
		k    governor.Knob
		v    int64
		file string
	}{
		{governor.MemoryHigh, 512 << 20, "536870912"},
		{governor.MemoryHigh, governor.Unlimited, "max"},
		{governor.MemoryMax, governor.Unlimited, "max"},
		{governor.MemoryLow, 1 << 20, "1048576"},
		{governor.MemoryMin, governor.Unlimited, "max"},
		{governor.CPUWeight, 250, "250"},
		{governor.CPUMax, 500_000, "50000 100000"},
		{governor.CPUMax, 2_500_000, "250000 100000"},
		{governor.CPUMax, 1, "1000 100000"}, // kernel minimum quota
		{governor.CPUMax, governor.Unlimited, "max 100000"},
		{governor.CPUIdle, 1, "1"},
		{governor.IOWeight, 300, "default 300"},
	} {
		if err := a.Write(ctx, job, tt.k, tt.v); err != nil {
			t.Errorf("write %v=%d: %v", tt.k, tt.v, err)
			continue
		}
		if got := strings.TrimSpace(readFixture(t, filepath.Join(dir, tt.k.String()))); got != tt.file {
			t.Errorf("write %v=%d: file %q, want %q", tt.k, tt.v, got, tt.file)
		}
	}

	// cpu.max keeps the period in the file.
	writeFixture(t, filepath.Join(dir, "cpu.max"), "max 50000\n")
	if err := a.Write(ctx, job, governor.CPUMax, 1_500_000); err != nil {
		t.Fatal(err)
	}
	if got := readFixture(t, filepath.Join(dir, "cpu.max")); got != "75000 50000" {
		t.Errorf("cpu.max %q, want \"75000 50000\"", got)
	}
	if s, err := a.Read(ctx, job, governor.CPUMax); err != nil || s.Value != 1_500_000 {
		t.Errorf("read back cpu.max: %+v %v", s, err)
	}

	// Out-of-range values are refused before any write.
	for _, tt := range []struct {
		k governor.Knob
		v int64
	}{
		{governor.MemoryHigh, -1}, {governor.CPUWeight, 0}, {governor.CPUWeight, 10001},
		{governor.CPUIdle, 2}, {governor.IOWeight, 0}, {governor.CPUMax, 0}, {governor.NumKnobs, 1},
	} {
		if err := a.Write(ctx, job, tt.k, tt.v); err == nil {
			t.Errorf("write %v=%d: no error", tt.k, tt.v)
		}
	}
}

func TestActuatorRestore(t *testing.T) {
	root, a := actuatorFixture(t)
	dir := filepath.Join(root, "batch/job")
	ctx := context.Background()
	for _, k := range []governor.Knob{governor.MemoryHigh, governor.MemoryMax, governor.CPUMax, governor.IOWeight, governor.CPUWeight} {
		s, err := a.Read(ctx, job, k)
		if err != nil {
			t.Fatal(err)
		}
		writeFixture(t, filepath.Join(dir, k.String()), "changed")
		if err := a.Restore(ctx, job, k, s); err != nil {
			t.Fatalf("restore %v: %v", k, err)
		}
		want := s.Raw
		if k == governor.IOWeight {
			want = "default 100" // only the default line is written back
		}
		if got := readFixture(t, filepath.Join(dir, k.String())); got != want {
			t.Errorf("restore %v: file %q, want %q", k, got, want)
		}
	}
	if err := a.Restore(ctx, job, governor.IOWeight, governor.Setting{Raw: "8:0 100"}); err == nil {
		t.Error("io.weight restore without default line: no error")
	}
	if err := a.Restore(ctx, job, governor.MemoryHigh, governor.Setting{}); err == nil {
		t.Error("empty restore: no error")
	}
}

// fakeFile is a file seam: its Write runs fn.
type fakeFile struct {
	write  func([]byte) (int, error)
	closed *atomic.Bool
}

func (f fakeFile) Read([]byte) (int, error)    { return 0, nil }
func (f fakeFile) Write(b []byte) (int, error) { return f.write(b) }
func (f fakeFile) Close() error                { f.closed.Store(true); return nil }

func TestActuatorReclaim(t *testing.T) {
	root, a := actuatorFixture(t)
	ctx := context.Background()
	if err := a.Reclaim(ctx, job, 64<<20); err != nil {
		t.Fatal(err)
	}
	if got := readFixture(t, filepath.Join(root, "batch/job/memory.reclaim")); got != "67108864" {
		t.Errorf("memory.reclaim got %q", got)
	}
	if err := a.Reclaim(ctx, job, 0); err == nil {
		t.Error("reclaim 0: no error")
	}
	// EAGAIN: the kernel reclaimed less than asked, which is success.
	var closed atomic.Bool
	var flags int
	a.open = func(rel, name string, fl int) (file, error) {
		flags = fl
		return fakeFile{write: func([]byte) (int, error) { return 0, unix.EAGAIN }, closed: &closed}, nil
	}
	if err := a.Reclaim(ctx, job, 1<<30); err != nil {
		t.Errorf("EAGAIN reclaim: %v", err)
	}
	if !closed.Load() {
		t.Error("file not closed")
	}
	if flags&unix.O_NONBLOCK != 0 {
		t.Error("memory.reclaim opened O_NONBLOCK")
	}
	// Other errors name the file.
	a.open = func(rel, name string, fl int) (file, error) {
		return fakeFile{write: func([]byte) (int, error) { return 0, unix.EBUSY }, closed: &closed}, nil
	}
	err := a.Reclaim(ctx, job, 1<<30)
	want := "write " + filepath.Join(root, "batch/job/memory.reclaim") + ": device or resource busy"
	if err == nil || err.Error() != want || !errors.Is(err, unix.EBUSY) {
		t.Errorf("got %v, want %q", err, want)
	}
}

func TestActuatorWriteTimeout(t *testing.T) {
	_, a := actuatorFixture(t)
	a.WriteTimeout = 5 * time.Second
	release := make(chan struct{})
	var closed atomic.Bool
	var mu sync.Mutex
	var openFlags int
	a.open = func(rel, name string, fl int) (file, error) {
		mu.Lock()
		openFlags = fl
		mu.Unlock()
		return fakeFile{write: func(b []byte) (int, error) { <-release; return len(b), nil }, closed: &closed}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.Write(ctx, job, governor.MemoryHigh, 1<<20)
	if !errors.Is(err, governor.ErrTimeout) {
		t.Fatalf("blocked write: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %v, want about the 100ms deadline", d)
	}
	mu.Lock()
	if openFlags&unix.O_NONBLOCK == 0 {
		t.Error("memory.high not opened O_NONBLOCK")
	}
	mu.Unlock()
	// While the first write hangs, another one to the same file fails at
	// once instead of stacking goroutines.
	start = time.Now()
	if err := a.Write(context.Background(), job, governor.MemoryHigh, 2<<20); !errors.Is(err, governor.ErrTimeout) {
		t.Errorf("second write: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second write waited %v", d)
	}
	// The goroutine finishes and closes its file once the kernel returns.
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for !closed.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !closed.Load() {
		t.Fatal("blocked write's file never closed")
	}
	for time.Now().Before(deadline) {
		if err = a.Write(context.Background(), job, governor.MemoryHigh, 3<<20); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Errorf("write after release: %v", err)
	}

	// A context that is already done writes nothing.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	opened := false
	a.open = func(rel, name string, fl int) (file, error) {
		opened = true
		return nil, unix.EIO
	}
	if err := a.Write(done, job, governor.MemoryHigh, 1<<20); !errors.Is(err, context.Canceled) || opened {
		t.Errorf("write with a cancelled context: %v (opened %v)", err, opened)
	}

	// Default timeout applies without a context deadline.
	a.WriteTimeout = 50 * time.Millisecond
	block := make(chan struct{})
	defer close(block)
	a.open = func(rel, name string, fl int) (file, error) {
		return fakeFile{write: func(b []byte) (int, error) { <-block; return len(b), nil }, closed: &closed}, nil
	}
	if err := a.Write(context.Background(), job, governor.MemoryMax, 1<<20); !errors.Is(err, governor.ErrTimeout) {
		t.Errorf("write without deadline: %v, want ErrTimeout", err)
	}
}

func TestActuatorGoneAndUnsupported(t *testing.T) {
	root, a := actuatorFixture(t)
	ctx := context.Background()
	if _, err := a.Read(ctx, job, governor.MemoryHigh); err != nil {
		t.Fatal(err)
	}
	// Controller not enabled: the file is missing in an existing cgroup.
	nomem := governor.Ref{ID: 8, Path: "nomem"}
	for name, err := range map[string]error{
		"write": a.Write(ctx, nomem, governor.MemoryHigh, 1<<20),
		"cpu":   a.Write(ctx, nomem, governor.CPUWeight, 50),
		"read": func() error {
			_, err := a.Read(ctx, nomem, governor.MemoryHigh)
			return err
		}(),
		"reclaim": a.Reclaim(ctx, nomem, 1<<20),
		"kill":    a.Kill(ctx, nomem),
	} {
		if !errors.Is(err, governor.ErrUnsupported) {
			t.Errorf("%s on nomem: %v, want ErrUnsupported", name, err)
		}
	}
	// The cgroup vanishes between read and write.
	if err := os.RemoveAll(filepath.Join(root, "batch/job")); err != nil {
		t.Fatal(err)
	}
	err := a.Write(ctx, job, governor.MemoryHigh, 1<<20)
	if !errors.Is(err, governor.ErrGone) || !strings.Contains(err.Error(), filepath.Join(root, "batch/job/memory.high")) {
		t.Errorf("write to vanished cgroup: %v, want ErrGone naming the file", err)
	}
	for name, err := range map[string]error{
		"cpu.weight": a.Write(ctx, job, governor.CPUWeight, 50),
		"cpu.max":    a.Write(ctx, job, governor.CPUMax, 50),
		"freeze":     a.Freeze(ctx, job, true),
		"kill":       a.Kill(ctx, job),
		"restore":    a.Restore(ctx, job, governor.MemoryHigh, governor.Setting{Raw: "max"}),
	} {
		if !errors.Is(err, governor.ErrGone) {
			t.Errorf("%s on vanished cgroup: %v, want ErrGone", name, err)
		}
	}
	// ENODEV from a write (cgroup removed after open) is ErrGone too.
	mkCgroup(t, root, "batch/job", map[string]string{"memory.high": "max"})
	var closed atomic.Bool
	a.open = func(rel, name string, fl int) (file, error) {
		return fakeFile{write: func([]byte) (int, error) { return 0, unix.ENODEV }, closed: &closed}, nil
	}
	if err := a.Write(ctx, job, governor.MemoryHigh, 1); !errors.Is(err, governor.ErrGone) {
		t.Errorf("ENODEV: %v, want ErrGone", err)
	}
}

func TestActuatorRefusals(t *testing.T) {
	root, a := actuatorFixture(t)
	ctx := context.Background()
	rootRef := governor.Ref{ID: 1}
	if err := a.Write(ctx, rootRef, governor.MemoryHigh, 1); err == nil {
		t.Error("write to root: no error")
	}
	if err := a.Kill(ctx, rootRef); err == nil {
		t.Error("kill root: no error")
	}
	if err := a.Freeze(ctx, rootRef, true); err == nil {
		t.Error("freeze root: no error")
	}
	// Escapes and symlinks.
	outside := t.TempDir()
	mkCgroup(t, outside, "victim", map[string]string{"memory.high": "max", "cgroup.kill": ""})
	if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "batch", "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../" + filepath.Base(outside) + "/victim", "/etc", "batch/../batch/job", "batch//job", "batch/link", "./batch", "batch/job/"} {
		ref := governor.Ref{ID: 9, Path: p}
		if err := a.Write(ctx, ref, governor.MemoryHigh, 1); err == nil {
			t.Errorf("write via %q: no error", p)
		}
		if err := a.Kill(ctx, ref); err == nil {
			t.Errorf("kill via %q: no error", p)
		}
	}
	if got := readFixture(t, filepath.Join(outside, "victim/memory.high")); got != "max" {
		t.Errorf("write escaped the root: victim memory.high = %q", got)
	}
	if got := readFixture(t, filepath.Join(outside, "victim/cgroup.kill")); got != "" {
		t.Errorf("kill escaped the root: %q", got)
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	mkCgroup(t, root, "a/b", nil)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b", filepath.Join(root, "a", "rel")); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		for _, ok := range []string{"", "a", "a/b"} {
			got, err := Resolve(root, ok)
			if err != nil || got != filepath.Join(root, ok) {
				t.Errorf("Resolve(%q) = %q, %v", ok, got, err)
			}
		}
		for _, bad := range []string{"..", "../x", "a/../a", "/a", "a/link", "a/rel", "a/rel/", "a/./b", "a//b", "a\x00"} {
			if got, err := Resolve(root, bad); !errors.Is(err, ErrBadPath) {
				t.Errorf("Resolve(%q) = %q, %v; want ErrBadPath", bad, got, err)
			}
		}
		if _, err := Resolve(root, "a/missing"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing: %v, want ErrNotExist", err)
		}
	}
	t.Run("openat2", check)
	t.Run("lstat fallback", func(t *testing.T) {
		noOpenat2.Store(true)
		defer noOpenat2.Store(false)
		check(t)
	})
}

func TestActuatorFreezeKillFixture(t *testing.T) {
	root, a := actuatorFixture(t)
	dir := filepath.Join(root, "batch/job")
	ctx := context.Background()
	// The "kernel" reports frozen a little later.
	go func() {
		time.Sleep(30 * time.Millisecond)
		// Replace atomically: a reader must never see a half-written file.
		tmp := filepath.Join(dir, ".events.tmp")
		os.WriteFile(tmp, []byte("populated 1\nfrozen 1\n"), 0o644)
		os.Rename(tmp, filepath.Join(dir, "cgroup.events"))
	}()
	if err := a.Freeze(ctx, job, true); err != nil {
		t.Fatal(err)
	}
	if got := readFixture(t, filepath.Join(dir, "cgroup.freeze")); got != "1" {
		t.Errorf("cgroup.freeze %q", got)
	}
	// Never thaws: bounded wait.
	a.FreezeTimeout = 100 * time.Millisecond
	start := time.Now()
	if err := a.Freeze(ctx, job, false); !errors.Is(err, governor.ErrTimeout) {
		t.Errorf("thaw that never completes: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("freeze wait took %v", d)
	}
	if err := a.Kill(ctx, job); err != nil {
		t.Fatal(err)
	}
	if got := readFixture(t, filepath.Join(dir, "cgroup.kill")); got != "1" {
		t.Errorf("cgroup.kill %q", got)
	}
}

func TestProbeFixture(t *testing.T) {
	root, _ := actuatorFixture(t)
	writeFixture(t, filepath.Join(root, "cgroup.subtree_control"), "cpu memory\n")
	caps, err := Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Controllers["cpu"] || !caps.Controllers["memory"] || caps.Controllers["io"] || caps.Root != root {
		t.Errorf("caps %+v", caps)
	}
	// batch has no files and is no cgroup; the first cgroup the walk finds
	// is "nomem", which has neither cgroup.freeze nor cgroup.kill.
	if caps.Freeze || caps.Kill {
		t.Errorf("features from an empty child: %+v", caps)
	}
	if _, err := Probe(t.TempDir()); err == nil {
		t.Error("probe of a non-cgroup dir: no error")
	}
}

// A write refused on a file of a subtree delegated to another user (a
// user@UID.service's cgroups, created by the user's manager) says so and
// what to do, instead of a bare "permission denied" (found with the shipped
// unit, which has no CAP_DAC_OVERRIDE, and examples/desktop.hcl).
func TestPermissionDeniedNamesTheOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the fixture")
	}
	root, a := actuatorFixture(t)
	f := filepath.Join(root, "batch/job", "memory.low")
	if err := os.Chown(f, 1500, 1500); err != nil {
		t.Fatal(err)
	}
	err := a.mapErr("write", job, "memory.low", unix.EACCES)
	if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "belongs to uid 1500") || !strings.Contains(err.Error(), "CAP_DAC_OVERRIDE") {
		t.Errorf("mapErr = %v", err)
	}
	// Our own file: the plain error.
	os.Chown(f, 0, 0)
	if err := a.mapErr("write", job, "memory.low", unix.EACCES); strings.Contains(err.Error(), "uid") {
		t.Errorf("mapErr of our own file = %v", err)
	}
}

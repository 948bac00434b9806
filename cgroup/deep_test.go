package cgroup

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// mkDeep creates the directory chain names below root, each with a
// cpu.pressure file of the given some total and cgroup.events, by openat/mkdirat from
// each parent (the whole path is longer than PATH_MAX). It returns the
// relative path of the deepest.
func mkDeep(t *testing.T, root string, names []string, total int) string {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil && err != unix.EEXIST {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
		for file, content := range map[string]string{"cpu.pressure": psiFile(total, 0), "cgroup.events": "populated 1\nfrozen 0\n"} {
			f, err := unix.Openat(fd, file, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := unix.Write(f, []byte(content)); err != nil {
				t.Fatal(err)
			}
			unix.Close(f)
		}
	}
	unix.Close(fd)
	return strings.Join(names, "/")
}

// TestSourceDeepPaths: cgroups whose absolute path is longer than PATH_MAX
// (4 KiB) used to be invisible: their directory could not be opened by
// path. They are now found, read and followed (created and removed) like
// any other, with inotify and without.
func TestSourceDeepPaths(t *testing.T) {
	for _, walk := range []bool{false, true} {
		t.Run(map[bool]string{false: "inotify", true: "walk"}[walk], func(t *testing.T) {
			root, proc := sourceFixture(t)
			var names []string
			for i := range 40 { // 40 x 201 bytes: about 8 KiB, two hops
				names = append(names, strings.Repeat(string(rune('a'+i%26)), 200))
			}
			deep := mkDeep(t, root, names, 1_000_000)
			if len(filepath.Join(root, deep)) <= unix.PathMax {
				t.Fatalf("fixture path only %d bytes long", len(filepath.Join(root, deep)))
			}
			clk := &fakeClock{t: time.Unix(1000, 0)}
			src := NewSource(root, SourceOptions{ProcPressureDir: proc})
			defer src.Close()
			src.walkAll = walk
			src.now = clk.now
			var snap governor.Snapshot
			sample := func() map[string]*governor.Sample {
				t.Helper()
				clk.t = clk.t.Add(time.Second)
				snap.Reset(clk.t)
				if err := src.Sample(context.Background(), &snap); err != nil {
					t.Fatal(err)
				}
				byPath := map[string]*governor.Sample{}
				for _, c := range snap.Cgroups {
					byPath[c.Path] = c
				}
				return byPath
			}
			got := sample()
			for i := range names {
				rel := strings.Join(names[:i+1], "/")
				c := got[rel]
				if c == nil {
					t.Fatalf("cgroup %d deep (%d bytes of path) missing", i+1, len(filepath.Join(root, rel)))
				}
				wantSig(t, c, governor.CPUSomeAvg10, 1)
			}
			// The deepest one's counters move: a rate, so its files are
			// read again through the deep path.
			mkDeep(t, root, names, 2_000_000)
			got = sample()
			wantSig(t, got[deep], governor.CPUSomeStall, 100)
			// A child created and one removed below the deep end are seen.
			mkDeep(t, root, append(names, "child"), 0)
			if got = sample(); got[deep+"/child"] == nil {
				t.Fatalf("new deep child missing")
			}
			fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range names {
				next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
				unix.Close(fd)
				if err != nil {
					t.Fatal(err)
				}
				fd = next
			}
			for _, f := range []string{"child/cpu.pressure", "child/cgroup.events"} {
				if err := unix.Unlinkat(fd, f, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := unix.Unlinkat(fd, "child", unix.AT_REMOVEDIR); err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
			if got = sample(); got[deep+"/child"] != nil || got[deep] == nil {
				t.Fatalf("removed deep child still there, or its parent gone")
			}
		})
	}
}

// TestKernelSourceDeepPaths: on the real hierarchy, a cgroup nested past
// PATH_MAX is sampled, with its pressure and its id.
func TestKernelSourceDeepPaths(t *testing.T) {
	root := kernelRoot(t)
	parent := testCgroup(t, root, "deep")
	var names []string
	for i := range 24 { // 24 x 201 bytes: past 4 KiB
		names = append(names, strings.Repeat(string(rune('a'+i)), 200))
	}
	// Made and removed by hops from the test parent (its cleanup cannot
	// remove paths that long).
	pfd, err := unix.Open(filepath.Join(root, parent), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fds := []int{pfd}
	t.Cleanup(func() {
		for i := len(fds) - 1; i > 0; i-- {
			unix.Close(fds[i])
			if err := unix.Unlinkat(fds[i-1], names[i-1], unix.AT_REMOVEDIR); err != nil {
				t.Errorf("rmdir %s: %v", names[i-1], err)
			}
		}
		unix.Close(pfd)
	})
	for _, name := range names {
		fd := fds[len(fds)-1]
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, next)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fds[len(fds)-1], &st); err != nil {
		t.Fatal(err)
	}
	deep := parent + "/" + strings.Join(names, "/")
	if len(filepath.Join(root, deep)) <= unix.PathMax {
		t.Fatalf("path only %d bytes long", len(filepath.Join(root, deep)))
	}
	src := NewSource(root, SourceOptions{Filter: func(p string) bool { return p == "" || strings.HasPrefix(p, filepath.Dir(parent)) }})
	defer src.Close()
	var snap governor.Snapshot
	c := sampleCgroup(t, src, &snap, deep)
	if c == nil {
		t.Fatalf("the cgroup %d bytes deep is not sampled", len(filepath.Join(root, deep)))
	}
	if c.ID != governor.CgroupID(st.Ino) {
		t.Errorf("id %d, want %d", c.ID, st.Ino)
	}
	if !c.Has.Has(governor.CPUSomeAvg10) {
		t.Errorf("no cpu pressure read: %+v", c.Has)
	}
}

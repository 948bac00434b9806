package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/governor-dev/governor/governor"
)

// mkCgroup creates a fixture cgroup directory rel under root with files.
func mkCgroup(t testing.TB, root, rel string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(root, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFixture(t, filepath.Join(dir, name), content)
	}
	return dir
}

func writeFixture(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFixture(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inode returns the inode number of path, i.e. the cgroup id on cgroupfs.
func inode(t testing.TB, path string) governor.CgroupID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return governor.CgroupID(fi.Sys().(*syscall.Stat_t).Ino)
}

func psiFile(someTotal, fullTotal int) string {
	return "some avg10=1.00 avg60=2.00 avg300=3.00 total=" + itoa(someTotal) + "\n" +
		"full avg10=0.50 avg60=0.60 avg300=0.70 total=" + itoa(fullTotal) + "\n"
}

func itoa(i int) string { return strconv.Itoa(i) }

package procfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	unified := `25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
99 25 0:22 / /run/some\040where rw shared:4 - cgroup2 cgroup2 rw
`
	long := "/run/" + strings.Repeat("d", 250) + "/" + strings.Repeat("e", 250) + "/" + strings.Repeat("f", 3000)
	for _, tt := range []struct{ name, in, want string }{
		{"hybrid", hybrid, "/sys/fs/cgroup/unified"},
		{"unified", unified, "/sys/fs/cgroup"},
		{"escaped space", `99 25 0:22 / /run/some\040where rw shared:4 - cgroup2 cgroup2 rw` + "\n", "/run/some where"},
		{"space tab newline backslash", `99 25 0:22 / /run/a\040b\011c\012d\134e rw shared:4 - cgroup2 none rw` + "\n", "/run/a b\tc\nd\\e"},
		{"deleted after a live one", `98 25 0:22 / /run/old\040(deleted) rw - cgroup2 none rw
99 25 0:22 / /run/new rw - cgroup2 none rw
`, "/run/new"},
		{"only a deleted one", `98 25 0:22 / /run/old\040(deleted) rw - cgroup2 none rw` + "\n", "/run/old (deleted)"},
		{"preferred over a listed-first one", `97 25 0:22 / /mnt/x rw - cgroup2 none rw
98 25 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
`, "/sys/fs/cgroup"},
		{"very long", "99 25 0:22 / " + long + " rw - cgroup2 none rw\n", long},
		{"no trailing newline, optional fields", "99 25 0:22 / /x rw shared:4 master:1 - cgroup2 none rw", "/x"},
		{"an escape cut short stays", `99 25 0:22 / /x\04 rw - cgroup2 none rw`, `/x\04`},
		{"an escape at the end", `99 25 0:22 / /x\040 rw - cgroup2 none rw`, `/x `},
	} {
		got, err := ParseMountinfo([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	for _, in := range []string{"", strings.SplitN(hybrid, "\n", 3)[0], "99 25 0:22 / /x rw - cgroup none rw,cpu\n", "99 25 0:22 / /x rw cgroup2\n", "1 - cgroup2 x rw\n"} {
		if got, err := ParseMountinfo([]byte(in)); !errors.Is(err, ErrNoCgroup2) {
			t.Errorf("%q: got %q, %v; want ErrNoCgroup2", in, got, err)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	long := "/" + strings.Repeat("a", 255) + "/" + strings.Repeat("b/", 2000) + "c"
	for _, tt := range []struct{ name, in, want string }{
		{"unified", "0::/system.slice/governor.service\n", "/system.slice/governor.service"},
		{"root", "0::/\n", "/"},
		{"hybrid, v2 line last", "12:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/x.scope\n0::/user.slice/x.scope\n", "/user.slice/x.scope"},
		{"spaces and colons, unescaped", "0::/batch.slice/my job: 2 (copy)\n", "/batch.slice/my job: 2 (copy)"},
		{"octal stays literal", "0::/a\\040b\n", "/a\\040b"},
		{"no trailing newline", "0::/a", "/a"},
		{"very long", "0::" + long + "\n", long},
	} {
		got, err := ParseProcCgroup([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "\n", "12:cpu:/x\n", "0::\n", "10::/not-v2\n"} {
		if got, err := ParseProcCgroup([]byte(in)); !errors.Is(err, ErrNoCgroup2Line) {
			t.Errorf("%q: got %q, %v; want ErrNoCgroup2Line", in, got, err)
		}
	}
}

// TestProcCgroupSelf reads this process's own line and mount: on a host
// with cgroup v2 they name a directory of the hierarchy.
func TestProcCgroupSelf(t *testing.T) {
	rel, err := ProcCgroup(0)
	if err != nil {
		t.Skipf("no cgroup v2 line for this process: %v", err)
	}
	same, err := ProcCgroup(os.Getpid())
	if err != nil || same != rel {
		t.Errorf("ProcCgroup(pid) = %q, %v; ProcCgroup(0) = %q", same, err, rel)
	}
	root, err := Cgroup2Mount()
	if err != nil {
		t.Skip(err)
	}
	if fi, err := os.Stat(filepath.Join(root, rel)); err != nil || !fi.IsDir() {
		t.Errorf("%s%s is not a cgroup directory: %v", root, rel, err)
	}
}

func FuzzMountinfo(f *testing.F) {
	f.Add([]byte("36 35 98:0 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"))
	f.Add([]byte("36 35 98:0 / /run/some\\040where rw - cgroup2 none rw\n37 35 0:1 / /sys/fs/cgroup/unified rw - cgroup2 c rw\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseMountinfo(b)
		if err != nil {
			if !errors.Is(err, ErrNoCgroup2) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if !strings.Contains(string(b), "cgroup2") {
			t.Fatalf("found %q without a cgroup2 line", p)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("12:cpu:/x\n0::/a b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProcCgroup(b)
		if err != nil {
			if !errors.Is(err, ErrNoCgroup2Line) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if p == "" || strings.Contains(p, "\n") || !strings.Contains(string(b), "0::"+p) {
			t.Fatalf("%q from %q", p, b)
		}
	})
}

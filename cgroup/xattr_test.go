package cgroup

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// TestKernelXattrHints sets victim hints on real cgroups of the host's
// cgroup2 hierarchy (trusted.* as root; user.* works on cgroupfs from
// Linux 5.7) and reads them back the way last_resort does.
func TestKernelXattrHints(t *testing.T) {
	root := kernelRoot(t)
	parent := filepath.Dir(testCgroup(t, root, "none"))
	set := map[string]map[string]string{
		"none":           nil,
		"prefer":         {"trusted.governor.prefer": "1"},
		"user-avoid":     {"user.governor.avoid": "yes"},
		"oomd-prefer":    {"trusted.oomd_prefer": "1"},
		"both":           {"trusted.governor.prefer": "1", "trusted.governor.avoid": "1"},
		"ours-over-oomd": {"user.governor.prefer": "1", "trusted.oomd_avoid": "1"},
		"zero":           {"trusted.governor.prefer": "0"},
		"long-value":     {"trusted.governor.prefer": "a value longer than sixteen bytes"},
	}
	want := map[string]struct {
		h    governor.Hint
		from string
	}{
		"none":           {governor.HintNone, ""},
		"prefer":         {governor.HintPrefer, "trusted.governor.prefer"},
		"user-avoid":     {governor.HintNone, ""}, // a tenant cannot shield itself
		"user-prefer":    {governor.HintPrefer, "user.governor.prefer"},
		"oomd-prefer":    {governor.HintPrefer, "trusted.oomd_prefer"},
		"both":           {governor.HintAvoid, "trusted.governor.avoid"},
		"ours-over-oomd": {governor.HintPrefer, "user.governor.prefer"},
		"zero":           {governor.HintNone, ""},
		"long-value":     {governor.HintPrefer, "trusted.governor.prefer"},
	}
	x := XattrHints{Root: root}
	for name, attrs := range set {
		rel := parent + "/" + name
		if name != "none" {
			mkCgroupDir(t, filepath.Join(root, rel))
		}
		for k, v := range attrs {
			if err := unix.Setxattr(filepath.Join(root, rel), k, []byte(v), 0); err != nil {
				t.Fatalf("setxattr %s on %s: %v", k, rel, err)
			}
		}
		h, from, err := x.VictimHint(governor.Ref{Path: rel})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := want[name]; h != w.h || from != w.from {
			t.Errorf("%s: hint %v from %q, want %v from %q", name, h, from, w.h, w.from)
		}
	}
	if _, _, err := x.VictimHint(governor.Ref{Path: parent + "/../x"}); err == nil {
		t.Error("a path with .. was read")
	}
	if _, _, err := x.VictimHint(governor.Ref{Path: parent + "/gone"}); err == nil {
		t.Error("no error for a cgroup that does not exist")
	}
}

func mkCgroupDir(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

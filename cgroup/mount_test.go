package cgroup

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProbeFeaturesFixture: freeze and kill come from a non-root cgroup
// found by the walk (bare directories are not cgroups), else from the
// kernel's symbol table, else they are reported missing with the reason.
func TestProbeFeaturesFixture(t *testing.T) {
	syms := filepath.Join(t.TempDir(), "kallsyms")
	writeFixture(t, syms, "0000000000000000 T _stext\n"+
		"0000000000000000 t cgroup_freeze_write\n"+
		"0000000000000000 t cgroup_kill_writer_helper\n"+ // not the name
		"0000000000000000 t cgroup_kill_write\t[fake_module]\n")
	oldKernel := filepath.Join(t.TempDir(), "kallsyms")
	writeFixture(t, oldKernel, "0000000000000000 t cgroup_freeze_write\n")

	bare := func(t *testing.T) string {
		root := t.TempDir()
		mkCgroup(t, root, "", map[string]string{"cgroup.controllers": "memory\n", "cgroup.subtree_control": "memory\n"})
		return root
	}
	for _, tt := range []struct {
		name       string
		tree       func(t *testing.T, root string)
		kallsyms   string
		freeze     bool
		kill       bool
		from       string
		wantReason bool
	}{
		{name: "no child: the kernel's symbols", kallsyms: syms, freeze: true, kill: true, from: syms},
		{name: "no child, kernel without cgroup.kill", kallsyms: oldKernel, freeze: true, kill: false, from: oldKernel},
		{name: "no child, no symbol table", kallsyms: "/nonexistent/kallsyms", wantReason: true},
		{
			name: "a bare directory is skipped; a deeper cgroup answers",
			tree: func(t *testing.T, root string) {
				if err := os.MkdirAll(filepath.Join(root, "aaa/empty"), 0o755); err != nil {
					t.Fatal(err)
				}
				mkCgroup(t, root, "aaa/job", map[string]string{"cgroup.events": "populated 0\n", "cgroup.freeze": "0\n", "cgroup.kill": ""})
			},
			kallsyms: "/nonexistent/kallsyms", freeze: true, kill: true, from: "aaa/job",
		},
		{
			name: "a cgroup without cgroup.kill wins over the symbols",
			tree: func(t *testing.T, root string) {
				mkCgroup(t, root, "old", map[string]string{"cgroup.events": "populated 0\n", "cgroup.freeze": "0\n"})
			},
			kallsyms: syms, freeze: true, kill: false, from: "old",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := bare(t)
			if tt.tree != nil {
				tt.tree(t, root)
			}
			caps, err := probe(root, tt.kallsyms)
			if err != nil {
				t.Fatal(err)
			}
			if caps.Freeze != tt.freeze || caps.Kill != tt.kill {
				t.Errorf("freeze=%v kill=%v, want %v %v (%+v)", caps.Freeze, caps.Kill, tt.freeze, tt.kill, caps)
			}
			from := tt.from
			if tt.tree != nil {
				from = filepath.Join(root, tt.from)
			}
			switch {
			case tt.wantReason && (caps.FeaturesFrom == "" || caps.Freeze || caps.Kill):
				t.Errorf("FeaturesFrom %q, want a reason and nothing detected", caps.FeaturesFrom)
			case !tt.wantReason && caps.FeaturesFrom != from:
				t.Errorf("FeaturesFrom %q, want %q", caps.FeaturesFrom, from)
			}
		})
	}
}

// TestKernelProbeWithoutChild: on the host's hierarchy, a root without a
// child cgroup still reports cgroup.freeze and cgroup.kill when the
// kernel has them, checked against a real child's files.
func TestKernelProbeWithoutChild(t *testing.T) {
	root := kernelRoot(t)
	rel := testCgroup(t, root, "probe")
	child := filepath.Join(root, rel)
	wantFreeze, wantKill := exists(filepath.Join(child, "cgroup.freeze")), exists(filepath.Join(child, "cgroup.kill"))
	if !wantFreeze || !wantKill {
		t.Logf("this kernel lacks cgroup.freeze (%v) or cgroup.kill (%v)", wantFreeze, wantKill)
	}
	// A copy of the root's own files and no child: only the kernel can say.
	empty := t.TempDir()
	for _, f := range []string{"cgroup.controllers", "cgroup.subtree_control"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFixture(t, filepath.Join(empty, f), string(b))
	}
	caps, err := Probe(empty)
	if err != nil {
		t.Fatal(err)
	}
	if caps.Freeze != wantFreeze || caps.Kill != wantKill {
		t.Errorf("Probe of a root without children: freeze=%v kill=%v (from %s); a child cgroup has freeze=%v kill=%v",
			caps.Freeze, caps.Kill, caps.FeaturesFrom, wantFreeze, wantKill)
	}
	caps, err = Probe(root)
	if err != nil {
		t.Fatal(err)
	}
	if caps.Freeze != wantFreeze || caps.Kill != wantKill {
		t.Errorf("Probe(%s): freeze=%v kill=%v (from %s), want %v %v", root, caps.Freeze, caps.Kill, caps.FeaturesFrom, wantFreeze, wantKill)
	}
}

// TestProbeCPUIdle: a kernel without cpu.idle (5.10) is told from a child
// of the root when the root enables cpu, else from the symbol table; with
// neither it is not assumed missing.
func TestProbeCPUIdle(t *testing.T) {
	dir := t.TempDir()
	newKernel := filepath.Join(dir, "new")
	writeFixture(t, newKernel, "0000000000000000 t cpu_weight_write_u64\n0000000000000000 t cpu_idle_write_s64\n")
	oldKernel := filepath.Join(dir, "old")
	writeFixture(t, oldKernel, "0000000000000000 t cpu_weight_write_u64\n")
	for _, tt := range []struct {
		name     string
		cpuOn    bool
		idleFile bool
		kallsyms string
		want     bool
	}{
		{"cpu on, children have cpu.idle", true, true, oldKernel, false},
		{"cpu on, children lack cpu.idle", true, false, newKernel, true},
		{"cpu off, 5.10 symbols", false, false, oldKernel, true},
		{"cpu off, 6.1 symbols", false, false, newKernel, false},
		{"cpu off, no symbol table", false, false, "/nonexistent/kallsyms", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			ctl := "memory\n"
			if tt.cpuOn {
				ctl = "cpu memory\n"
			}
			mkCgroup(t, root, "", map[string]string{"cgroup.controllers": "cpu memory\n", "cgroup.subtree_control": ctl})
			files := map[string]string{"cgroup.events": "populated 0\n"}
			if tt.cpuOn {
				files["cpu.weight"] = "100\n"
				if tt.idleFile {
					files["cpu.idle"] = "0\n"
				}
			}
			mkCgroup(t, root, "batch.slice", files)
			caps, err := probe(root, tt.kallsyms)
			if err != nil {
				t.Fatal(err)
			}
			if caps.NoCPUIdle != tt.want {
				t.Errorf("NoCPUIdle %v, want %v", caps.NoCPUIdle, tt.want)
			}
		})
	}
}

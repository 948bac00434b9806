package cgroup

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/internal/procfs"
)

// ErrNoCgroup2 is returned by FindMount when no cgroup2 file system is
// mounted.
var ErrNoCgroup2 = procfs.ErrNoCgroup2

// FindMount returns the mount point of the cgroup v2 hierarchy from
// /proc/self/mountinfo: /sys/fs/cgroup on unified hosts, typically
// /sys/fs/cgroup/unified on hybrid ones (internal/procfs parses it).
func FindMount() (string, error) {
	return procfs.Cgroup2Mount()
}

// Probe reports what the hierarchy at root offers. Controllers are those the
// root enables for its children (cgroup.subtree_control), which is what the
// governed cgroups can use. Features are detected by file presence, but
// the root cgroup has no cgroup.freeze or cgroup.kill (and the kernel's
// delegate and features files in /sys/kernel/cgroup do not list them), so
// they are looked for in a non-root cgroup found by a bounded walk of the
// hierarchy; on a hierarchy that has none yet, the kernel is asked through
// /proc/kallsyms, which names the handlers of those files
// (cgroup_freeze_write, cgroup_kill_write) on every kernel that has them.
func Probe(root string) (governor.Capabilities, error) {
	return probe(root, "/proc/kallsyms")
}

// probeWalk bounds the search for a non-root cgroup (directories read).
const probeWalk = 64

func probe(root, kallsyms string) (governor.Capabilities, error) {
	caps := governor.Capabilities{Root: root, Controllers: map[string]bool{}}
	if _, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err != nil {
		return caps, fmt.Errorf("probe %s: %w", root, err)
	}
	sub, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control"))
	if err != nil {
		return caps, fmt.Errorf("probe %s: %w", root, err)
	}
	for _, c := range strings.Fields(string(sub)) {
		caps.Controllers[c] = true
	}
	caps.Reclaim = exists(filepath.Join(root, "memory.reclaim"))
	caps.NoCPUIdle = noCPUIdle(root, caps.Controllers["cpu"], kallsyms)
	if child := someCgroup(root); child != "" {
		caps.Reclaim = caps.Reclaim || exists(filepath.Join(child, "memory.reclaim"))
		caps.Freeze = exists(filepath.Join(child, "cgroup.freeze"))
		caps.Kill = exists(filepath.Join(child, "cgroup.kill"))
		caps.FeaturesFrom = child
		return caps, nil
	}
	syms, err := kernelSymbols(kallsyms, "cgroup_freeze_write", "cgroup_kill_write")
	if err != nil {
		caps.FeaturesFrom = "unknown: no cgroup below the root and " + err.Error()
		return caps, nil
	}
	caps.Freeze, caps.Kill = syms[0], syms[1]
	caps.FeaturesFrom = kallsyms
	return caps, nil
}

// noCPUIdle tells whether the kernel lacks cpu.idle (Linux < 5.15): from
// the root's children when the root enables cpu for them (each has
// cpu.weight, and cpu.idle where the kernel has it), else from the symbol
// table: with cpu off nothing shows cpu.idle, which says nothing about the
// kernel (systemd turns cpu on later, for a unit or a user session).
// Unknown is false.
func noCPUIdle(root string, cpuOn bool, kallsyms string) bool {
	if cpuOn {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			p := filepath.Join(root, e.Name())
			if e.IsDir() && exists(filepath.Join(p, "cpu.weight")) {
				return !exists(filepath.Join(p, "cpu.idle"))
			}
		}
	}
	syms, err := kernelSymbols(kallsyms, "cpu_idle_write_s64", "cpu_weight_write_u64")
	if err != nil || !syms[1] {
		return false // no symbol table, or one without the cpu controller's
	}
	return !syms[0]
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// someCgroup returns a non-root cgroup below root, a directory with
// cgroup.events (which every non-root cgroup has, like cgroup.freeze; a
// fixture's bare directory is not taken for one), looking into no more
// than probeWalk directories breadth first; "" if none.
func someCgroup(root string) string {
	queue := []string{root}
	for n := 0; len(queue) > 0 && n < probeWalk; n++ {
		dir := queue[0]
		queue = queue[1:]
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if exists(filepath.Join(p, "cgroup.events")) {
				return p
			}
			queue = append(queue, p)
		}
	}
	return ""
}

// kernelSymbols reports which of names the kernel symbol table at path
// lists (a line "ADDRESS TYPE NAME [MODULE]"; addresses may read zero
// without privilege, the names are there regardless).
func kernelSymbols(path string, names ...string) ([]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	found := make([]bool, len(names))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		// The name is the third field.
		_, rest, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			continue
		}
		_, name, ok := bytes.Cut(rest, []byte(" "))
		if !ok {
			continue
		}
		if i := bytes.IndexByte(name, '\t'); i >= 0 {
			name = name[:i]
		}
		for i, n := range names {
			if string(name) == n {
				found[i] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return found, nil
}

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/governor-dev/governor/governor"
)

// ErrNoCgroup2 is returned by FindMount when no cgroup2 file system is
// mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 mount found")

// FindMount returns the mount point of the cgroup v2 hierarchy from
// /proc/self/mountinfo: /sys/fs/cgroup on unified hosts, typically
// /sys/fs/cgroup/unified on hybrid ones.
func FindMount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return parseMountinfo(b)
}

// parseMountinfo picks the cgroup2 mount point from mountinfo content,
// preferring /sys/fs/cgroup, then /sys/fs/cgroup/unified, then the first
// cgroup2 mount listed.
func parseMountinfo(b []byte) (string, error) {
	var found []string
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			continue
		}
		fstype, _ := nextField(post)
		if string(fstype) != "cgroup2" {
			continue
		}
		fields := bytes.Fields(pre)
		if len(fields) < 5 {
			continue
		}
		found = append(found, unescapeMount(string(fields[4])))
	}
	if len(found) == 0 {
		return "", ErrNoCgroup2
	}
	for _, want := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		for _, f := range found {
			if f == want {
				return f, nil
			}
		}
	}
	return found[0], nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space etc.).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			o := s[i+1 : i+4]
			if o[0] >= '0' && o[0] <= '3' && o[1] >= '0' && o[1] <= '7' && o[2] >= '0' && o[2] <= '7' {
				out.WriteByte((o[0]-'0')<<6 | (o[1]-'0')<<3 | (o[2] - '0'))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

// Probe reports what the hierarchy at root offers. Controllers are those the
// root enables for its children (cgroup.subtree_control), which is what the
// governed cgroups can use. Features are detected by file presence: the root
// cgroup lacks cgroup.freeze and cgroup.kill, so those are looked for in the
// first child cgroup found (none found: reported false).
func Probe(root string) (governor.Capabilities, error) {
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
	dirs := []string{root}
	if child := firstChild(root); child != "" {
		dirs = append(dirs, child)
	}
	for _, d := range dirs {
		caps.Reclaim = caps.Reclaim || exists(filepath.Join(d, "memory.reclaim"))
		caps.Freeze = caps.Freeze || exists(filepath.Join(d, "cgroup.freeze"))
		caps.Kill = caps.Kill || exists(filepath.Join(d, "cgroup.kill"))
	}
	return caps, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// firstChild returns the first child cgroup directory of dir.
func firstChild(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if e.IsDir() {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

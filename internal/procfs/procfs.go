// Package procfs reads where the cgroup v2 hierarchy is mounted
// (/proc/self/mountinfo) and which cgroup a process is in (/proc/PID/cgroup):
// the one parser of each for the cgroup and bpf packages and the daemon.
// It imports nothing of the project, so any package may use it.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNoCgroup2 is returned when no cgroup2 file system is mounted.
var ErrNoCgroup2 = errors.New("no cgroup2 mount found")

// ErrNoCgroup2Line is returned for a process that /proc shows in no cgroup
// v2 (no "0::" line).
var ErrNoCgroup2Line = errors.New("no cgroup v2 line")

// Cgroup2Mount returns the mount point of the cgroup v2 hierarchy from
// /proc/self/mountinfo (see ParseMountinfo).
func Cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return ParseMountinfo(b)
}

// ParseMountinfo picks the cgroup2 mount point from mountinfo content,
// preferring /sys/fs/cgroup, then /sys/fs/cgroup/unified, then the first
// cgroup2 mount listed whose mount point was not deleted (the kernel shows
// a removed mount point with " (deleted)" appended, escaped \040), then
// the first one at all. Mount points are unescaped (\040 is a space).
func ParseMountinfo(b []byte) (string, error) {
	var found, deleted []string
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"
		pre, post, ok := bytes.Cut(line, []byte(" - "))
		if !ok {
			continue
		}
		if fstype, _, _ := bytes.Cut(post, []byte(" ")); string(fstype) != "cgroup2" {
			continue
		}
		fields := bytes.Fields(pre)
		if len(fields) < 5 {
			continue
		}
		if mp := unescape(string(fields[4])); strings.HasSuffix(mp, " (deleted)") {
			deleted = append(deleted, mp)
		} else {
			found = append(found, mp)
		}
	}
	if len(found) == 0 {
		if len(deleted) > 0 {
			return deleted[0], nil
		}
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

// ProcCgroup returns the cgroup v2 path of process pid (0: this process)
// from /proc/PID/cgroup, relative to the hierarchy's root and starting with
// "/" ("/" for the root itself).
func ProcCgroup(pid int) (string, error) {
	p := "/proc/self/cgroup"
	if pid != 0 {
		p = fmt.Sprintf("/proc/%d/cgroup", pid)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	rel, err := ParseProcCgroup(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return rel, nil
}

// ParseProcCgroup takes the path of the "0::PATH" line of /proc/PID/cgroup
// content (v1 lines "N:controllers:PATH" are skipped). The kernel writes
// the path unescaped: it runs to the end of the line, spaces and colons
// included.
func ParseProcCgroup(b []byte) (string, error) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if rest, ok := bytes.CutPrefix(line, []byte("0::")); ok && len(rest) > 0 {
			return string(rest), nil
		}
	}
	return "", ErrNoCgroup2Line
}

// nextLine splits off the first line of b (without its newline).
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// unescape undoes mountinfo's octal escapes (\040 for space etc.).
func unescape(s string) string {
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

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// One daemon per cgroup hierarchy and per state directory. Two governors
// on the same hierarchy undo each other's limits; two on the same state
// directory take each other's state for a crash, thaw each other's
// freezes and remove each other's socket. So `run` takes two exclusive
// flock(2) locks before it touches anything and holds them for its life:
//
//   - STATE_DIR/governor.lock, a file holding the owner's pid, cgroup root
//     and "dry-run" for a dry run (for the message a second instance
//     prints);
//   - the cgroup root directory itself (opened read-only): the lock is on
//     the hierarchy's inode, so it is keyed by the hierarchy's identity
//     whatever path or state directory names it, and needs no writable
//     path outside the state directory (the shipped unit's file system is
//     read-only but for the cgroup tree and /run/governor).
//
// flock locks belong to the open file: the kernel drops them when the
// process dies, kill -9 included, so a restart after a crash finds them
// free and goes on to re-adopt the crashed run's state.
//
// --dry-run writes no cgroup and no state file, so it takes only the state
// directory's lock (for its control socket there): it may run beside a
// live daemon, with a state directory (and metrics address) of its own.
const lockName = "governor.lock"

// stateDirMode is the mode of a state directory the daemon creates: 0700
// (docs/THREAT-MODEL.md). With --control-group, control.Listen then opens
// it to the socket's group (0710).
const stateDirMode = 0o700

type daemonLock struct {
	files []*os.File
}

// Close releases the locks (process exit does too).
func (l *daemonLock) Close() {
	for _, f := range l.files {
		f.Close()
	}
}

// lockDaemon takes the state directory's lock and, unless dryRun, the
// cgroup root's. It fails, naming the pid holding a lock, when another
// governor holds either.
func lockDaemon(stateDir, root string, dryRun bool) (*daemonLock, error) {
	if err := os.MkdirAll(stateDir, stateDirMode); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	l := &daemonLock{}
	path := filepath.Join(stateDir, lockName)
	sf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := unix.Flock(int(sf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		sf.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		pid, theirRoot, theirDry := readLockFile(path)
		if pid == 0 {
			pid = lockHolder(path)
		}
		if theirRoot == "" {
			theirRoot = "a cgroup hierarchy"
		}
		who := pidText(pid)
		if theirDry {
			who += ", dry run"
		}
		hint := ""
		if dryRun {
			hint = "; a --dry-run beside it needs a --state-dir (and --metrics-addr) of its own"
		}
		return nil, fmt.Errorf("another governor (%s) governs %s; state dir %s (locked: %s)%s", who, theirRoot, stateDir, path, hint)
	}
	l.files = append(l.files, sf)
	if !dryRun {
		rf, err := os.Open(root)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("cgroup root: %w", err)
		}
		if err := unix.Flock(int(rf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			rf.Close()
			l.Close()
			if !errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("lock cgroup root %s: %w", root, err)
			}
			pid := lockHolder(root)
			theirs := "unknown"
			if d := stateDirOf(pid); d != "" {
				theirs = d
			}
			return nil, fmt.Errorf("another governor (%s) governs %s; state dir %s", pidText(pid), root, theirs)
		}
		l.files = append(l.files, rf)
	}
	// Ours now: say whose it is (pid, cgroup root, "dry-run" for one).
	text := fmt.Sprintf("%d\n%s\n", os.Getpid(), root)
	if dryRun {
		text += "dry-run\n"
	}
	if err := sf.Truncate(0); err == nil {
		_, _ = sf.WriteAt([]byte(text), 0)
	}
	return l, nil
}

func pidText(pid int) string {
	if pid <= 0 {
		return "pid unknown"
	}
	return "pid " + strconv.Itoa(pid)
}

// readLockFile returns the pid and cgroup root a lock file's owner wrote,
// and whether it is a dry run.
func readLockFile(path string) (pid int, root string, dry bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", false
	}
	lines := strings.Split(string(b), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	if len(lines) > 1 {
		root = strings.TrimSpace(lines[1])
	}
	return pid, root, len(lines) > 2 && strings.TrimSpace(lines[2]) == "dry-run"
}

// lockHolder finds the pid holding a flock on path in /proc/locks (0 if
// none is listed, or the holder is in another pid namespace).
func lockHolder(path string) int {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"; waiters
		// have a "->" after the number.
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}

// stateDirOf finds the state directory of the governor with this pid: the
// directory of the lock file it holds open.
func stateDirOf(pid int) string {
	if pid <= 0 {
		return ""
	}
	fds := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fds)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && filepath.Base(t) == lockName {
			return filepath.Dir(t)
		}
	}
	return ""
}

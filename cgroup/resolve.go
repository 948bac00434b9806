package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrBadPath is wrapped by Resolve for paths that are not plain relative
// cgroup paths or that would leave the root (".." or a symlink).
var ErrBadPath = errors.New("bad cgroup path")

// checkRel validates a cgroup path relative to the root: "" (the root
// itself) or slash-separated names without ".", "..", empty elements or NUL.
func checkRel(rel string) error {
	if rel == "" {
		return nil
	}
	if strings.HasPrefix(rel, "/") {
		return fmt.Errorf("%w: %q is absolute", ErrBadPath, rel)
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return fmt.Errorf("%w: %q contains NUL", ErrBadPath, rel)
	}
	for _, e := range strings.Split(rel, "/") {
		switch e {
		case "":
			return fmt.Errorf("%w: %q has an empty element", ErrBadPath, rel)
		case ".", "..":
			return fmt.Errorf("%w: %q contains %q", ErrBadPath, rel, e)
		}
	}
	return nil
}

// Resolve returns the absolute path of the cgroup rel beneath root, after
// checking that rel is relative, has no "." or ".." elements and that no
// element is a symlink. It uses openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)
// where the kernel has it and falls back to Lstat checks of every element.
// A cgroup that does not exist yields an error wrapping fs.ErrNotExist.
func Resolve(root, rel string) (string, error) {
	fd, err := openBeneath(root, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return filepath.Join(root, rel), nil
}

// noOpenat2 is set once openat2 turned out to be unavailable (ENOSYS, or
// EPERM from a seccomp filter).
var noOpenat2 atomic.Bool

// openBeneath opens root/rel (rel already relative; may name a file inside
// a cgroup) with flags (O_CLOEXEC is added), refusing to leave root or to
// follow any symlink. Errors are *os.PathError values naming the full path.
func openBeneath(root, rel string, flags int) (int, error) {
	if err := checkRel(rel); err != nil {
		return -1, err
	}
	full := filepath.Join(root, rel)
	flags |= unix.O_CLOEXEC
	if !noOpenat2.Load() {
		fd, err := openat2Beneath(root, rel, flags)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
				return -1, fmt.Errorf("%w: %s: symlink or escape from the cgroup root (%v)", ErrBadPath, full, err)
			}
			return -1, &os.PathError{Op: "open", Path: full, Err: err}
		}
		noOpenat2.Store(true)
	}
	return openLstat(root, rel, flags)
}

func openat2Beneath(root, rel string, flags int) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rfd)
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(rfd, rel, &unix.OpenHow{
			Flags:   uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR || err == unix.EAGAIN && flags&unix.O_NONBLOCK == 0 {
			continue
		}
		return fd, err
	}
}

// openLstat is the fallback for kernels without openat2: Lstat every element
// below root, refuse symlinks, then open with O_NOFOLLOW.
func openLstat(root, rel string, flags int) (int, error) {
	full := filepath.Join(root, rel)
	if rel != "" {
		p := root
		for _, e := range strings.Split(rel, "/") {
			p = filepath.Join(p, e)
			fi, err := os.Lstat(p)
			if err != nil {
				return -1, err
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				return -1, fmt.Errorf("%w: %s is a symlink", ErrBadPath, p)
			}
		}
	}
	fd, err := unix.Open(full, flags|unix.O_NOFOLLOW, 0)
	if err != nil {
		if err == unix.ELOOP {
			return -1, fmt.Errorf("%w: %s is a symlink", ErrBadPath, full)
		}
		return -1, &os.PathError{Op: "open", Path: full, Err: err}
	}
	return fd, nil
}

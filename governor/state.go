package governor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// stateVersion is bumped when the state file's layout changes incompatibly.
const stateVersion = 1

// freezeKnob is the state file's name for a cgroup the governor froze.
const freezeKnob = "cgroup.freeze"

// StateEntry records one knob the governor changed: enough to put it back
// after a crash. Written is the value the governor last wrote (or is about
// to write: entries are saved before the write), Previous the value it wrote
// before that, so a crash between saving and writing is recognised too.
type StateEntry struct {
	ID       CgroupID `json:"id"`
	Path     string   `json:"path"`
	Knob     string   `json:"knob"`
	Original string   `json:"original"`
	OrigVal  int64    `json:"original_value"`
	Written  int64    `json:"written"`
	Previous int64    `json:"previous"`
	Owner    string   `json:"owner"`
}

type stateFile struct {
	Version int          `json:"version"`
	PID     int          `json:"pid"`
	Saved   time.Time    `json:"saved"`
	Entries []StateEntry `json:"entries"`
}

// MaxStateSize bounds how much of a state file is read at start-up. 16 MiB
// holds some 70,000 entries (about 240 bytes each): more than a large host
// has cgroups times the knobs a policy changes. A larger file is refused.
const MaxStateSize = 16 << 20

// LoadState reads a state file. A missing file is no error (nil entries).
//
// The file says which knobs to restore to which values, so it is trusted
// only when nobody but the governor can have written it: its directory and
// the file belong to the daemon's uid and are not group/world-writable, and
// the file is a regular file (not a symlink, FIFO or device: it is opened
// with O_NOFOLLOW|O_NONBLOCK and checked with fstat) of at most
// MaxStateSize bytes. A file that fails a check is moved aside as
// <file>.refused-<time> and the error says why. A truncated or corrupt file
// is reported as an error naming the file (kept as .corrupt). Either way the
// caller logs the error and starts without the state.
func LoadState(path string) ([]StateEntry, error) {
	b, err := readState(path)
	if err != nil || b == nil {
		return nil, err
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		_ = os.Rename(path, path+".corrupt")
		return nil, fmt.Errorf("state file %s is corrupt (kept as %s.corrupt): %v", path, path, err)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("state file %s has version %d, this governor understands %d", path, f.Version, stateVersion)
	}
	return f.Entries, nil
}

// readState returns the state file's content, nil if there is none, or an
// error after moving a file it refuses aside.
func readState(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := checkStateDir(dir); err != nil {
		if _, lerr := os.Lstat(path); errors.Is(lerr, os.ErrNotExist) {
			return nil, fmt.Errorf("state directory %s: %v; not using it", dir, err)
		}
		return nil, refuseState(path, fmt.Errorf("its directory %s %v", dir, err))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|stateOpenFlags, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, refuseState(path, errors.New("it is a symbolic link"))
		}
		return nil, refuseState(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, refuseState(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, refuseState(path, fmt.Errorf("it is not a regular file (%s)", fi.Mode().Type()))
	}
	if err := checkStateOwner(fi); err != nil {
		return nil, refuseState(path, fmt.Errorf("it %v", err))
	}
	if fi.Size() > MaxStateSize {
		return nil, refuseState(path, fmt.Errorf("it is %d bytes, more than the %d a state file may have", fi.Size(), MaxStateSize))
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	if len(b) > MaxStateSize {
		return nil, refuseState(path, fmt.Errorf("it grew beyond the %d bytes a state file may have", MaxStateSize))
	}
	return b, nil
}

// checkStateDir requires the state directory to be a directory of the
// daemon's uid that nobody else can write to.
func checkStateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // created 0700 by the first save
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errors.New("is not a directory")
	}
	return checkStateOwner(fi)
}

// refuseState moves a state file the governor will not trust aside (as
// <file>.refused-<time>, for the operator to inspect) and says why.
func refuseState(path string, why error) error {
	aside := path + ".refused-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("state file %s refused: %v (could not move it aside: %v)", path, why, err)
	}
	return fmt.Errorf("state file %s refused: %v (moved aside as %s)", path, why, aside)
}

// saveState writes the state file atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory. An empty state removes
// the file.
func saveState(path string, entries []StateEntry, now time.Time) error {
	if len(entries) == 0 {
		err := os.Remove(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove state file: %w", err)
		}
		return nil
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Path != entries[j].Path {
			return entries[i].Path < entries[j].Path
		}
		return entries[i].Knob < entries[j].Knob
	})
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, PID: os.Getpid(), Saved: now.UTC(), Entries: entries}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	// A file in a directory others can write is refused on the next start:
	// recording there is not recording.
	if err := checkStateDir(dir); err != nil {
		return fmt.Errorf("state directory %s %v", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

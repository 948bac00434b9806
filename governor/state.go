package governor

import (
	"encoding/json"
	"errors"
	"fmt"
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

// LoadState reads a state file. A missing file is no error (nil entries). A
// truncated or corrupt file is reported as an error naming the file; the
// caller logs it and starts without it (the file is kept as .corrupt for
// inspection).
func LoadState(path string) ([]StateEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
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

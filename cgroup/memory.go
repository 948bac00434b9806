package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"

	"github.com/governor-dev/governor/governor"
)

// DefaultProcSwaps is where the host lists its swap devices.
const DefaultProcSwaps = "/proc/swaps"

var _ governor.MemoryReader = (*Actuator)(nil)

// ReadMemory implements governor.MemoryReader: memory.current, the
// memory.stat fields reclaim needs, how much more the cgroup may swap
// (memory.swap.max - memory.swap.current, the tightest over the cgroup and
// its ancestors) and the host's swap (ProcSwaps). A cgroup without
// memory.swap.* files (swap accounting off) is limited by the host alone.
func (a *Actuator) ReadMemory(_ context.Context, cg governor.Ref) (governor.MemoryState, error) {
	var m governor.MemoryState
	if err := checkRel(cg.Path); err != nil {
		return m, err
	}
	cur, err := a.readFile(cg, "memory.current")
	if err != nil {
		return m, err
	}
	if m.Current, err = ParseValue([]byte(cur)); err != nil {
		return m, fmt.Errorf("%s: %w", a.path(cg, "memory.current"), err)
	}
	stat, err := a.readFile(cg, "memory.stat")
	if err != nil {
		return m, err
	}
	st, err := ParseMemoryStat([]byte(stat))
	if err != nil {
		return m, fmt.Errorf("%s: %w", a.path(cg, "memory.stat"), err)
	}
	m.Anon, m.File, m.Shmem = int64(st.Anon), int64(st.File), int64(st.Shmem)
	m.Pgscan, m.Pgsteal = st.Pgscan, st.Pgsteal
	m.Refaults = st.WorkingsetRefaultAnon + st.WorkingsetRefaultFile
	m.SwapRoom = governor.Unlimited
	for p := cg.Path; p != "" && p != "."; p = path.Dir(p) {
		room, ok, err := a.swapRoom(governor.Ref{Path: p})
		if err != nil {
			return m, err
		}
		if ok {
			m.SwapRoom = min(m.SwapRoom, room)
		}
	}
	swaps := a.ProcSwaps
	if swaps == "" {
		swaps = DefaultProcSwaps
	}
	b, err := os.ReadFile(swaps)
	if err != nil {
		return m, fmt.Errorf("read %s: %w", swaps, err)
	}
	if m.SwapTotal, m.SwapFree, err = ParseSwaps(b); err != nil {
		return m, fmt.Errorf("%s: %w", swaps, err)
	}
	return m, nil
}

// swapRoom reads memory.swap.max and memory.swap.current of one cgroup;
// ok is false where the files do not exist.
func (a *Actuator) swapRoom(cg governor.Ref) (room int64, ok bool, err error) {
	mx, err := a.readFile(cg, "memory.swap.max")
	if errors.Is(err, governor.ErrUnsupported) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	limit, err := ParseValue([]byte(mx))
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", a.path(cg, "memory.swap.max"), err)
	}
	if limit == governor.Unlimited {
		return governor.Unlimited, true, nil
	}
	cur, err := a.readFile(cg, "memory.swap.current")
	if err != nil {
		return 0, false, err
	}
	used, err := ParseValue([]byte(cur))
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", a.path(cg, "memory.swap.current"), err)
	}
	return max(0, limit-used), true, nil
}

// ParseSwaps sums /proc/swaps: total and free swap in bytes (the file
// gives KiB). The header line is skipped; a file with only the header
// means no swap.
func ParseSwaps(b []byte) (total, free int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if first {
			first = false
			if len(f) > 0 && string(f[0]) == "Filename" {
				continue
			}
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return 0, 0, fmt.Errorf("malformed swap line %q", sc.Text())
		}
		size, err1 := strconv.ParseInt(string(f[2]), 10, 64)
		used, err2 := strconv.ParseInt(string(f[3]), 10, 64)
		if err1 != nil || err2 != nil || size < 0 || used < 0 || size > 1<<50 || used > 1<<50 {
			return 0, 0, fmt.Errorf("malformed swap line %q", sc.Text())
		}
		total += size << 10
		free += max(0, size-used) << 10
	}
	return total, free, sc.Err()
}

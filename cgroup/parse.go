package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/governor-dev/governor/governor"
)

// The parsers in this file are pure functions of a file's content: no I/O,
// no allocation on the success path (apart from what the caller passes in to
// append to), and an error rather than a panic for any malformed input. Keys
// a parser does not know are ignored, so newer kernels that add lines keep
// working.

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("malformed cgroup file")

func syntaxErr(what string, line []byte) error {
	if len(line) > 64 {
		line = line[:64]
	}
	return fmt.Errorf("%w: %s: %q", ErrSyntax, what, line)
}

// nextLine splits off the first line of b (without its newline).
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// nextField splits off the first space-separated field of b, skipping
// leading blanks.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	b = b[i:]
	j := 0
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[:j], b[j:]
}

// isBlank reports whether b holds only white space (and NULs, which
// /proc/pressure trigger writes use as terminators).
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != 0 {
			return false
		}
	}
	return true
}

// parseUint parses a decimal unsigned integer without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseInt parses a decimal, possibly negative, integer.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	u, ok := parseUint(b)
	if !ok || u > 1<<63 || (!neg && u == 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// ParseValue parses a single-value file such as memory.high, memory.current,
// cpu.weight or cpu.idle. "max" yields governor.Unlimited.
func ParseValue(b []byte) (int64, error) {
	f, rest := nextField(trimSpace(b))
	if len(f) == 0 || !isBlank(rest) {
		return 0, syntaxErr("want one value", b)
	}
	if string(f) == "max" {
		return governor.Unlimited, nil
	}
	v, ok := parseInt(f)
	if !ok {
		return 0, syntaxErr("bad number", f)
	}
	return v, nil
}

func trimSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n\x00")
}

// PressureLine is one line ("some" or "full") of a PSI file. Averages are
// percentages (0..100); Total is the cumulative stall time in microseconds.
type PressureLine struct {
	Avg10, Avg60, Avg300 float64
	Total                uint64
}

// Pressure is the content of /proc/pressure/<res> or <res>.pressure.
// HasFull is false when the file has no "full" line (cpu.pressure on kernels
// before 5.13).
type Pressure struct {
	Some, Full PressureLine
	HasFull    bool
}

// ParsePressure parses a PSI file.
func ParsePressure(b []byte) (Pressure, error) {
	var p Pressure
	var hasSome bool
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if isBlank(line) {
			continue
		}
		kind, rest := nextField(line)
		var dst *PressureLine
		switch string(kind) {
		case "some":
			dst, hasSome = &p.Some, true
		case "full":
			dst, p.HasFull = &p.Full, true
		default:
			return Pressure{}, syntaxErr("pressure line must start with some or full", line)
		}
		var seen uint8
		for {
			var f []byte
			f, rest = nextField(rest)
			if len(f) == 0 {
				break
			}
			k, v, ok := bytes.Cut(f, []byte{'='})
			if !ok {
				return Pressure{}, syntaxErr("pressure field without '='", line)
			}
			var err error
			switch string(k) {
			case "avg10":
				dst.Avg10, err = parsePercent(v)
				seen |= 1
			case "avg60":
				dst.Avg60, err = parsePercent(v)
				seen |= 2
			case "avg300":
				dst.Avg300, err = parsePercent(v)
				seen |= 4
			case "total":
				var ok bool
				dst.Total, ok = parseUint(v)
				if !ok {
					err = syntaxErr("bad pressure total", line)
				}
				seen |= 8
			}
			if err != nil {
				return Pressure{}, err
			}
		}
		if seen != 15 {
			return Pressure{}, syntaxErr("pressure line lacks avg10/avg60/avg300/total", line)
		}
	}
	if !hasSome {
		return Pressure{}, syntaxErr("no some line in pressure file", nil)
	}
	return p, nil
}

func parsePercent(b []byte) (float64, error) {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || v < 0 || v > 100 || v != v {
		return 0, syntaxErr("bad pressure average", b)
	}
	return v, nil
}

// parseKeyed walks a flat keyed file ("key value" per line) and calls fn for
// each pair. Lines must have exactly two fields with an unsigned value.
func parseKeyed(b []byte, fn func(key []byte, v uint64)) error {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if isBlank(line) {
			continue
		}
		k, rest := nextField(line)
		f, rest := nextField(rest)
		if len(f) == 0 || !isBlank(rest) {
			return syntaxErr("want key and value", line)
		}
		v, ok := parseUint(f)
		if !ok {
			return syntaxErr("bad value", line)
		}
		fn(k, v)
	}
	return nil
}

// MemoryStat holds the memory.stat fields the governor uses (bytes unless
// noted). Other keys are ignored.
type MemoryStat struct {
	Anon, File, Kernel, Shmem, Sock              uint64
	FileDirty, FileWriteback, Slab, Swapcached   uint64
	Pgscan, Pgsteal, Pgmajfault                  uint64 // event counts
	WorkingsetRefaultAnon, WorkingsetRefaultFile uint64 // event counts
}

// ParseMemoryStat parses memory.stat.
func ParseMemoryStat(b []byte) (MemoryStat, error) {
	var s MemoryStat
	err := parseKeyed(b, func(k []byte, v uint64) {
		switch string(k) {
		case "anon":
			s.Anon = v
		case "file":
			s.File = v
		case "kernel":
			s.Kernel = v
		case "shmem":
			s.Shmem = v
		case "sock":
			s.Sock = v
		case "file_dirty":
			s.FileDirty = v
		case "file_writeback":
			s.FileWriteback = v
		case "slab":
			s.Slab = v
		case "swapcached":
			s.Swapcached = v
		case "pgscan":
			s.Pgscan = v
		case "pgsteal":
			s.Pgsteal = v
		case "pgmajfault":
			s.Pgmajfault = v
		case "workingset_refault_anon":
			s.WorkingsetRefaultAnon = v
		case "workingset_refault_file":
			s.WorkingsetRefaultFile = v
		}
	})
	if err != nil {
		return MemoryStat{}, err
	}
	return s, nil
}

// MemoryEvents is memory.events or memory.events.local (event counts).
type MemoryEvents struct {
	Low, High, Max, OOM, OOMKill, OOMGroupKill uint64
}

// ParseMemoryEvents parses memory.events or memory.events.local.
func ParseMemoryEvents(b []byte) (MemoryEvents, error) {
	var e MemoryEvents
	err := parseKeyed(b, func(k []byte, v uint64) {
		switch string(k) {
		case "low":
			e.Low = v
		case "high":
			e.High = v
		case "max":
			e.Max = v
		case "oom":
			e.OOM = v
		case "oom_kill":
			e.OOMKill = v
		case "oom_group_kill":
			e.OOMGroupKill = v
		}
	})
	if err != nil {
		return MemoryEvents{}, err
	}
	return e, nil
}

// CPUStat is cpu.stat. The throttling fields exist only where the cpu
// controller is enabled; HasThrottling says whether they were present.
type CPUStat struct {
	UsageUsec, UserUsec, SystemUsec       uint64
	NrPeriods, NrThrottled, ThrottledUsec uint64
	NrBursts, BurstUsec                   uint64
	HasThrottling                         bool
}

// ParseCPUStat parses cpu.stat. A file without usage_usec is an error.
func ParseCPUStat(b []byte) (CPUStat, error) {
	var s CPUStat
	var hasUsage bool
	err := parseKeyed(b, func(k []byte, v uint64) {
		switch string(k) {
		case "usage_usec":
			s.UsageUsec, hasUsage = v, true
		case "user_usec":
			s.UserUsec = v
		case "system_usec":
			s.SystemUsec = v
		case "nr_periods":
			s.NrPeriods = v
		case "nr_throttled":
			s.NrThrottled, s.HasThrottling = v, true
		case "throttled_usec":
			s.ThrottledUsec, s.HasThrottling = v, true
		case "nr_bursts":
			s.NrBursts = v
		case "burst_usec":
			s.BurstUsec = v
		}
	})
	if err != nil {
		return CPUStat{}, err
	}
	if !hasUsage {
		return CPUStat{}, syntaxErr("cpu.stat lacks usage_usec", b)
	}
	return s, nil
}

// CPUMax is cpu.max: Quota in microseconds per Period, or
// governor.Unlimited for "max".
type CPUMax struct {
	Quota  int64
	Period uint64
}

// ParseCPUMax parses cpu.max ("max 100000", "50000 100000", or a lone
// "max"/quota, in which case the period is the kernel default 100000).
func ParseCPUMax(b []byte) (CPUMax, error) {
	line := trimSpace(b)
	q, rest := nextField(line)
	p, rest := nextField(rest)
	if len(q) == 0 || !isBlank(rest) {
		return CPUMax{}, syntaxErr("cpu.max wants quota and period", b)
	}
	m := CPUMax{Period: 100000}
	if string(q) == "max" {
		m.Quota = governor.Unlimited
	} else {
		v, ok := parseUint(q)
		if !ok || v == 0 || v >= 1<<63 {
			return CPUMax{}, syntaxErr("bad cpu.max quota", b)
		}
		m.Quota = int64(v)
	}
	if len(p) > 0 {
		v, ok := parseUint(p)
		if !ok || v == 0 {
			return CPUMax{}, syntaxErr("bad cpu.max period", b)
		}
		m.Period = v
	}
	return m, nil
}

// Millionths returns the quota as millionths of a CPU (the unit of the
// governor.CPUMax knob), or governor.Unlimited.
func (m CPUMax) Millionths() int64 {
	if m.Quota == governor.Unlimited || m.Period == 0 {
		return governor.Unlimited
	}
	// quota/period CPUs; scale without overflow for sane values.
	return int64((float64(m.Quota)*1e6)/float64(m.Period) + 0.5)
}

// IOStat is one device line of io.stat.
type IOStat struct {
	Major, Minor               uint32
	RBytes, WBytes, RIOs, WIOs uint64
	DBytes, DIOs               uint64
}

// ParseIOStat parses io.stat, appending one IOStat per device line to dst
// (pass dst[:0] to reuse a slice).
func ParseIOStat(b []byte, dst []IOStat) ([]IOStat, error) {
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if isBlank(line) {
			continue
		}
		dev, rest := nextField(line)
		var s IOStat
		var ok bool
		if s.Major, s.Minor, ok = parseDev(dev); !ok {
			return dst, syntaxErr("bad io.stat device", line)
		}
		for {
			var f []byte
			f, rest = nextField(rest)
			if len(f) == 0 {
				break
			}
			k, vb, found := bytes.Cut(f, []byte{'='})
			if !found {
				return dst, syntaxErr("io.stat field without '='", line)
			}
			v, ok := parseUint(vb)
			if !ok {
				// Some keys (e.g. cost.* with iocost debug) are
				// unsigned too; anything else is malformed.
				return dst, syntaxErr("bad io.stat value", line)
			}
			switch string(k) {
			case "rbytes":
				s.RBytes = v
			case "wbytes":
				s.WBytes = v
			case "rios":
				s.RIOs = v
			case "wios":
				s.WIOs = v
			case "dbytes":
				s.DBytes = v
			case "dios":
				s.DIOs = v
			}
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// parseDev parses "MAJ:MIN".
func parseDev(b []byte) (maj, min uint32, ok bool) {
	a, c, found := bytes.Cut(b, []byte{':'})
	if !found {
		return 0, 0, false
	}
	x, ok1 := parseUint(a)
	y, ok2 := parseUint(c)
	if !ok1 || !ok2 || x > 1<<32-1 || y > 1<<32-1 {
		return 0, 0, false
	}
	return uint32(x), uint32(y), true
}

// IODeviceWeight is a per-device line of io.weight.
type IODeviceWeight struct {
	Major, Minor uint32
	Weight       int64
}

// IOWeight is io.weight: the "default N" line and per-device overrides.
type IOWeight struct {
	Default int64
	Devices []IODeviceWeight
}

// ParseIOWeight parses io.weight. A missing "default" line is an error.
func ParseIOWeight(b []byte) (IOWeight, error) {
	var w IOWeight
	var hasDefault bool
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if isBlank(line) {
			continue
		}
		k, rest := nextField(line)
		f, rest := nextField(rest)
		if len(f) == 0 || !isBlank(rest) {
			return IOWeight{}, syntaxErr("io.weight wants key and weight", line)
		}
		v, ok := parseUint(f)
		if !ok || v < 1 || v > 10000 {
			return IOWeight{}, syntaxErr("bad io.weight weight", line)
		}
		if string(k) == "default" {
			w.Default, hasDefault = int64(v), true
			continue
		}
		maj, min, ok := parseDev(k)
		if !ok {
			return IOWeight{}, syntaxErr("bad io.weight device", line)
		}
		w.Devices = append(w.Devices, IODeviceWeight{Major: maj, Minor: min, Weight: int64(v)})
	}
	if !hasDefault {
		return IOWeight{}, syntaxErr("io.weight lacks a default line", nil)
	}
	return w, nil
}

// Events is cgroup.events.
type Events struct {
	Populated, Frozen bool
}

// ParseEvents parses cgroup.events ("populated 0|1", "frozen 0|1").
func ParseEvents(b []byte) (Events, error) {
	var e Events
	var bad bool
	err := parseKeyed(b, func(k []byte, v uint64) {
		if v > 1 {
			bad = true
		}
		switch string(k) {
		case "populated":
			e.Populated = v == 1
		case "frozen":
			e.Frozen = v == 1
		}
	})
	if err != nil {
		return Events{}, err
	}
	if bad {
		return Events{}, syntaxErr("cgroup.events value not 0 or 1", b)
	}
	return e, nil
}

package governor

import (
	"fmt"
	"math/bits"
	"sort"
)

// Signal names one measured quantity of a cgroup. Signals are dense small
// integers so a Sample can hold them in a fixed array: no map and no
// allocation per cgroup per tick.
type Signal uint16

// Unit is what a signal's value means. Policy files give thresholds with units
// ("20%", "512MiB", "5ms", "3/s"); the policy compiler checks that the unit
// fits the signal and converts to the representation below.
type Unit uint8

const (
	// UnitPercent values are 0..100 (PSI averages, stall ratios).
	UnitPercent Unit = iota + 1
	// UnitBytes values are bytes.
	UnitBytes
	// UnitSeconds values are seconds (latency quantiles).
	UnitSeconds
	// UnitPerSecond values are events per second.
	UnitPerSecond
	// UnitCores values are CPUs' worth of time per second (1.5 = one and a
	// half CPUs busy).
	UnitCores
)

func (u Unit) String() string {
	switch u {
	case UnitPercent:
		return "percent"
	case UnitBytes:
		return "bytes"
	case UnitSeconds:
		return "seconds"
	case UnitPerSecond:
		return "per second"
	case UnitCores:
		return "cores"
	}
	return "unknown unit"
}

// The signals. PSI signals come from <res>.pressure: avg10/avg60/avg300 are
// the kernel's running averages; stall is the share of wall time stalled over
// the last sampling interval, derived from the cumulative total= counter (it
// reacts within one tick, where avg10 lags by seconds).
const (
	CPUSomeAvg10 Signal = iota
	CPUSomeAvg60
	CPUSomeAvg300
	CPUSomeStall
	CPUFullAvg10
	CPUFullAvg60
	CPUFullAvg300
	CPUFullStall
	MemorySomeAvg10
	MemorySomeAvg60
	MemorySomeAvg300
	MemorySomeStall
	MemoryFullAvg10
	MemoryFullAvg60
	MemoryFullAvg300
	MemoryFullStall
	IOSomeAvg10
	IOSomeAvg60
	IOSomeAvg300
	IOSomeStall
	IOFullAvg10
	IOFullAvg60
	IOFullAvg300
	IOFullStall

	// Memory usage (memory.current, memory.swap.current, memory.stat).
	MemoryCurrent
	MemorySwap
	MemoryAnon
	MemoryFile
	// MemoryHighRatio is memory.current / memory.high in percent; absent
	// while memory.high is "max". MemoryMaxRatio likewise for memory.max.
	MemoryHighRatio
	MemoryMaxRatio
	// Rates of the hierarchical memory.events counters.
	MemoryEventsHigh
	MemoryEventsMax
	MemoryEventsOOM
	MemoryEventsOOMKill

	// CPU usage from cpu.stat: usage in cores, share of wall time throttled
	// by the cgroup's own cpu.max, and throttling periods per second.
	CPUUsage
	CPUThrottled
	CPUThrottledPeriods

	// IO throughput from io.stat, summed over devices.
	IOReadBytes
	IOWriteBytes

	// BPF-derived signals (bpf/). Run-queue latency quantiles over the last
	// window, total run-queue wait as a share of wall time (can exceed 100%
	// with many tasks), preemptions of the cgroup's runnable tasks by tasks
	// of other cgroups, time lost in direct or memcg reclaim as a share of
	// wall time, and OOM kills.
	RunqP50
	RunqP90
	RunqP99
	RunqDelay
	RunqPreemptedByOthers
	ReclaimStall
	OOMKills

	// NumSignals is the number of signals; not a signal.
	NumSignals
)

var signalInfo = [NumSignals]struct {
	name string
	unit Unit
	help string
}{
	CPUSomeAvg10:          {"cpu.some.avg10", UnitPercent, "share of time some tasks waited for CPU, 10 s average"},
	CPUSomeAvg60:          {"cpu.some.avg60", UnitPercent, "share of time some tasks waited for CPU, 60 s average"},
	CPUSomeAvg300:         {"cpu.some.avg300", UnitPercent, "share of time some tasks waited for CPU, 300 s average"},
	CPUSomeStall:          {"cpu.some.stall", UnitPercent, "share of time some tasks waited for CPU over the last tick"},
	CPUFullAvg10:          {"cpu.full.avg10", UnitPercent, "share of time all tasks waited for CPU (includes own cpu.max throttling), 10 s average"},
	CPUFullAvg60:          {"cpu.full.avg60", UnitPercent, "as cpu.full.avg10, 60 s average"},
	CPUFullAvg300:         {"cpu.full.avg300", UnitPercent, "as cpu.full.avg10, 300 s average"},
	CPUFullStall:          {"cpu.full.stall", UnitPercent, "share of time all tasks waited for CPU over the last tick"},
	MemorySomeAvg10:       {"memory.some.avg10", UnitPercent, "share of time some tasks stalled on memory, 10 s average"},
	MemorySomeAvg60:       {"memory.some.avg60", UnitPercent, "as memory.some.avg10, 60 s average"},
	MemorySomeAvg300:      {"memory.some.avg300", UnitPercent, "as memory.some.avg10, 300 s average"},
	MemorySomeStall:       {"memory.some.stall", UnitPercent, "share of time some tasks stalled on memory over the last tick (at least what a BPF fast-path alert measured over 100 ms within it)"},
	MemoryFullAvg10:       {"memory.full.avg10", UnitPercent, "share of time all tasks stalled on memory, 10 s average"},
	MemoryFullAvg60:       {"memory.full.avg60", UnitPercent, "as memory.full.avg10, 60 s average"},
	MemoryFullAvg300:      {"memory.full.avg300", UnitPercent, "as memory.full.avg10, 300 s average"},
	MemoryFullStall:       {"memory.full.stall", UnitPercent, "share of time all tasks stalled on memory over the last tick"},
	IOSomeAvg10:           {"io.some.avg10", UnitPercent, "share of time some tasks waited for IO, 10 s average"},
	IOSomeAvg60:           {"io.some.avg60", UnitPercent, "as io.some.avg10, 60 s average"},
	IOSomeAvg300:          {"io.some.avg300", UnitPercent, "as io.some.avg10, 300 s average"},
	IOSomeStall:           {"io.some.stall", UnitPercent, "share of time some tasks waited for IO over the last tick"},
	IOFullAvg10:           {"io.full.avg10", UnitPercent, "share of time all tasks waited for IO, 10 s average"},
	IOFullAvg60:           {"io.full.avg60", UnitPercent, "as io.full.avg10, 60 s average"},
	IOFullAvg300:          {"io.full.avg300", UnitPercent, "as io.full.avg10, 300 s average"},
	IOFullStall:           {"io.full.stall", UnitPercent, "share of time all tasks waited for IO over the last tick"},
	MemoryCurrent:         {"memory.current", UnitBytes, "memory charged to the cgroup (memory.current)"},
	MemorySwap:            {"memory.swap", UnitBytes, "swap used by the cgroup (memory.swap.current)"},
	MemoryAnon:            {"memory.anon", UnitBytes, "anonymous memory (memory.stat anon)"},
	MemoryFile:            {"memory.file", UnitBytes, "page cache (memory.stat file)"},
	MemoryHighRatio:       {"memory.high_ratio", UnitPercent, "memory.current as a share of memory.high"},
	MemoryMaxRatio:        {"memory.max_ratio", UnitPercent, "memory.current as a share of memory.max"},
	MemoryEventsHigh:      {"memory.events.high", UnitPerSecond, "memory.high breaches per second"},
	MemoryEventsMax:       {"memory.events.max", UnitPerSecond, "memory.max hits per second"},
	MemoryEventsOOM:       {"memory.events.oom", UnitPerSecond, "OOM events per second"},
	MemoryEventsOOMKill:   {"memory.events.oom_kill", UnitPerSecond, "OOM kills per second"},
	CPUUsage:              {"cpu.usage", UnitCores, "CPU time used per second, in cores"},
	CPUThrottled:          {"cpu.throttled", UnitPercent, "share of time throttled by the cgroup's own cpu.max"},
	CPUThrottledPeriods:   {"cpu.throttled_periods", UnitPerSecond, "cpu.max periods throttled per second"},
	IOReadBytes:           {"io.read_bytes", UnitBytes, "bytes read per second (io.stat rbytes)"},
	IOWriteBytes:          {"io.write_bytes", UnitBytes, "bytes written per second (io.stat wbytes)"},
	RunqP50:               {"runq.p50", UnitSeconds, "median run-queue latency (BPF)"},
	RunqP90:               {"runq.p90", UnitSeconds, "90th percentile run-queue latency (BPF)"},
	RunqP99:               {"runq.p99", UnitSeconds, "99th percentile run-queue latency (BPF)"},
	RunqDelay:             {"runq.delay", UnitPercent, "total run-queue wait as a share of wall time (BPF)"},
	RunqPreemptedByOthers: {"runq.preempted", UnitPerSecond, "preemptions of runnable tasks by other cgroups' tasks per second (BPF)"},
	ReclaimStall:          {"reclaim.stall", UnitPercent, "time in direct/memcg reclaim as a share of wall time (BPF)"},
	OOMKills:              {"oom.kills", UnitPerSecond, "OOM kills of the cgroup's tasks per second (BPF)"},
}

// Name is the signal's name in policy files, e.g. "memory.some.avg10".
func (s Signal) Name() string {
	if s < NumSignals {
		return signalInfo[s].name
	}
	return fmt.Sprintf("signal(%d)", uint16(s))
}

func (s Signal) String() string { return s.Name() }

// Unit returns the signal's unit.
func (s Signal) Unit() Unit {
	if s < NumSignals {
		return signalInfo[s].unit
	}
	return 0
}

// Help is a one-line description for documentation and metrics.
func (s Signal) Help() string {
	if s < NumSignals {
		return signalInfo[s].help
	}
	return ""
}

var signalByName = func() map[string]Signal {
	m := make(map[string]Signal, NumSignals)
	for i := Signal(0); i < NumSignals; i++ {
		m[signalInfo[i].name] = i
	}
	return m
}()

// SignalByName looks a signal up by its policy name.
func SignalByName(name string) (Signal, bool) {
	s, ok := signalByName[name]
	return s, ok
}

// SignalNames returns every signal name, sorted.
func SignalNames() []string {
	out := make([]string, 0, NumSignals)
	for i := Signal(0); i < NumSignals; i++ {
		out = append(out, signalInfo[i].name)
	}
	sort.Strings(out)
	return out
}

// PSISignal returns the signal for a PSI resource ("cpu", "memory", "io"),
// line ("some", "full") and field (0 avg10, 1 avg60, 2 avg300, 3 stall).
func PSISignal(resource int, full bool, field int) Signal {
	s := Signal(resource*8 + field)
	if full {
		s += 4
	}
	return s
}

// SignalSet is a bit set of signals.
type SignalSet [(int(NumSignals) + 63) / 64]uint64

// Add puts s in the set.
func (b *SignalSet) Add(s Signal) { b[s/64] |= 1 << (s % 64) }

// Has reports whether s is in the set.
func (b *SignalSet) Has(s Signal) bool { return b[s/64]&(1<<(s%64)) != 0 }

// Len is the number of signals in the set.
func (b *SignalSet) Len() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

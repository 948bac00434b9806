package governor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// CgroupID identifies a cgroup v2 directory: its inode number in cgroupfs,
// which is also what BPF's cgroup id helpers return. Paths get reused when a
// cgroup is removed and created again; ids do not, so all per-cgroup state is
// keyed by id.
type CgroupID uint64

// Ref names a cgroup: its id and its path relative to the cgroup2 root, with
// "/" separators and no leading slash ("" is the root itself).
type Ref struct {
	ID   CgroupID
	Path string
}

func (r Ref) String() string {
	if r.Path == "" {
		return "/"
	}
	return r.Path
}

// Sample holds one cgroup's signals at one instant. Values[s] is meaningful
// only when Has.Has(s).
type Sample struct {
	Ref
	Values [NumSignals]float64
	Has    SignalSet
	// Populated reports whether the cgroup has tasks anywhere in its subtree
	// (cgroup.events populated).
	Populated bool
	// Stalled holds the pressure files' cumulative totals (for metrics'
	// counters; the Stall signals are their rates).
	Stalled PSITotals
	// PreemptedBy: the other cgroups whose tasks took the CPU from this
	// cgroup's runnable tasks over the sensor's window, most preemptions
	// first, at most MaxPreemptors of them (self-preemption and the CPU
	// going idle are not listed). Filled by the BPF source; nil without
	// it, and nil for a cgroup no other cgroup preempted. Whether the
	// sample has preemption data at all is whether it has the signal
	// RunqPreemptedByOthers, which counts every other cgroup's
	// preemptions, listed or not.
	PreemptedBy []Preemptor
}

// Preemptor is one cgroup whose tasks preempted a cgroup's runnable tasks:
// its id and how often, per second of the sensor's window.
type Preemptor struct {
	Cgroup    CgroupID
	PerSecond float64
}

// CgroupMove is what a cgroup.MoveSensor reports of one cgroup: values that change
// whenever the cgroup's pressure totals or cpu.stat usage do (and, rarely,
// when they do not), read for a whole hierarchy at once.
type CgroupMove struct {
	ID CgroupID
	// PSI holds, for io, memory and cpu, the kernel's per-CPU times in the
	// "some" and "full" states of the resource, summed (ns, each CPU's
	// modulo 2^32): the pressure file's totals are these plus the time
	// since the current state began.
	PSI [3]uint64
	// NonIdle is the same sum for the non-idle state (a task of the
	// subtree running, runnable or stalled): no task used CPU without it
	// growing.
	NonIdle uint64
	// Active: bit r, resource r is stalled now on some CPU; bit 3, some
	// task of the subtree is non-idle now. Time in a state in effect is
	// not in the sums yet.
	Active uint8
	// Unknown: the sensor has no such data for the cgroup (pressure
	// accounting off for it): take it as moved.
	Unknown bool
}

// MaxPreemptors is how many preemptors a Sample lists at most.
const MaxPreemptors = 8

// PSITotals are cumulative PSI stall times, the total= of a cgroup's
// pressure files, in microseconds, by resource (0 cpu, 1 memory, 2 io, as
// PSISignal) and line (0 some, 1 full).
type PSITotals struct {
	Micros [3][2]uint64
	Has    uint8 // bit resource*2+line: read
}

// Set stores the total of resource r, line l (1: full).
func (p *PSITotals) Set(r, l int, us uint64) {
	p.Micros[r][l] = us
	p.Has |= 1 << (r*2 + l)
}

// Get returns the total of resource r, line l and whether it was read.
func (p *PSITotals) Get(r, l int) (uint64, bool) {
	return p.Micros[r][l], p.Has&(1<<(r*2+l)) != 0
}

// Set stores a value and marks it present.
func (s *Sample) Set(sig Signal, v float64) {
	s.Values[sig] = v
	s.Has.Add(sig)
}

// Get returns a value and whether it is present.
func (s *Sample) Get(sig Signal) (float64, bool) {
	return s.Values[sig], s.Has.Has(sig)
}

// Snapshot is one tick's view of the hierarchy. Cgroups holds every cgroup
// the primary source found, root first; Host is the root cgroup / the
// system-wide /proc/pressure view. Sources after the primary one add signals
// to the samples they recognise by id and must not add or remove cgroups.
type Snapshot struct {
	Time    time.Time
	Host    *Sample
	Cgroups []*Sample
	byID    map[CgroupID]*Sample
}

// Lookup finds a cgroup's sample by id.
func (s *Snapshot) Lookup(id CgroupID) *Sample {
	if s.byID == nil {
		s.index()
	}
	return s.byID[id]
}

func (s *Snapshot) index() {
	s.byID = make(map[CgroupID]*Sample, len(s.Cgroups))
	for _, c := range s.Cgroups {
		s.byID[c.ID] = c
	}
}

// Reset empties the snapshot for reuse, keeping its allocations.
func (s *Snapshot) Reset(now time.Time) {
	s.Time = now
	s.Host = nil
	clear(s.Cgroups) // drop the old samples: they may belong to pooled chunks
	s.Cgroups = s.Cgroups[:0]
	for k := range s.byID {
		delete(s.byID, k)
	}
	s.byID = nil
}

// Source produces samples. The primary source (cgroup/) enumerates cgroups
// and fills snap.Cgroups and snap.Host; secondary sources (bpf/) add signals
// to existing samples via snap.Lookup. A source that keeps per-cgroup state
// (previous counters for rates) must drop the state of cgroups that are no
// longer in the snapshot.
type Source interface {
	Name() string
	Sample(ctx context.Context, snap *Snapshot) error
}

// Notifier wakes the loop early, e.g. when a PSI trigger fires. Wake delivers
// the cgroup (or the host, id 0) whose trigger fired; the loop treats it only
// as a hint to run a Step now.
type Notifier interface {
	Wake() <-chan Ref
}

// Knob is a cgroup limit the governor can change and must restore.
type Knob uint8

// The knobs. Values are int64 in the units noted; Unlimited means the
// kernel's "max".
const (
	MemoryHigh Knob = iota // bytes
	MemoryMax              // bytes
	MemoryLow              // bytes
	MemoryMin              // bytes
	CPUWeight              // 1..10000
	CPUMax                 // quota in millionths of a CPU (1_000_000 = one CPU); the period in the file is kept
	CPUIdle                // 0 or 1
	IOWeight               // default weight 1..10000
	NumKnobs
)

// Unlimited is the value of a knob set to "max".
const Unlimited int64 = math.MaxInt64

var knobNames = [NumKnobs]string{
	MemoryHigh: "memory.high",
	MemoryMax:  "memory.max",
	MemoryLow:  "memory.low",
	MemoryMin:  "memory.min",
	CPUWeight:  "cpu.weight",
	CPUMax:     "cpu.max",
	CPUIdle:    "cpu.idle",
	IOWeight:   "io.weight",
}

// Controller is the cgroup v2 controller a knob belongs to.
func (k Knob) Controller() string {
	switch k {
	case MemoryHigh, MemoryMax, MemoryLow, MemoryMin:
		return "memory"
	case CPUWeight, CPUMax, CPUIdle:
		return "cpu"
	case IOWeight:
		return "io"
	}
	return ""
}

// Name is the knob's cgroupfs file name.
func (k Knob) String() string {
	if k < NumKnobs {
		return knobNames[k]
	}
	return fmt.Sprintf("knob(%d)", uint8(k))
}

// KnobByName finds a knob by its file name.
func KnobByName(name string) (Knob, bool) {
	for i, n := range knobNames {
		if n == name {
			return Knob(i), true
		}
	}
	return 0, false
}

// FormatValue renders a knob value for logs: "max", bytes with a binary unit,
// cores for cpu.max, plain numbers otherwise.
func (k Knob) FormatValue(v int64) string {
	if v == Unlimited {
		return "max"
	}
	switch k {
	case MemoryHigh, MemoryMax, MemoryLow, MemoryMin:
		return FormatBytes(v)
	case CPUMax:
		return fmt.Sprintf("%.3gcpu", float64(v)/1e6)
	}
	return fmt.Sprint(v)
}

// FormatBytes renders a byte count with a binary unit (e.g. "1.5GiB").
func FormatBytes(v int64) string {
	const unit = 1024
	if v < unit && v > -unit {
		return fmt.Sprintf("%dB", v)
	}
	f := float64(v)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		f /= unit
		if math.Abs(f) < unit {
			return fmt.Sprintf("%.4g%s", f, u)
		}
	}
	return fmt.Sprintf("%.4gEiB", f/unit)
}

// Setting is a knob's value as read back from the kernel. Raw is the file's
// content (trimmed) exactly as read, which is what a restore writes back.
type Setting struct {
	Value int64
	Raw   string
}

// Errors an Actuator reports (wrapped, test with errors.Is).
var (
	// ErrGone: the cgroup no longer exists.
	ErrGone = errors.New("cgroup is gone")
	// ErrUnsupported: the knob's controller is not enabled for this cgroup,
	// or the kernel lacks the file.
	ErrUnsupported = errors.New("not supported here")
	// ErrTimeout: a write did not finish in time (it may still complete in
	// the kernel; the loop re-reads the value before trusting it).
	ErrTimeout = errors.New("write timed out")
	// ErrInProgress: the write was not made because an earlier write of
	// the same file has not finished (it comes with ErrTimeout).
	ErrInProgress = errors.New("an earlier write is still in progress")
)

// Actuator changes cgroups. Implementations: cgroupfs writes (cgroup/), the
// systemd D-Bus API, and the dry-run wrapper in this package. Every method
// must return within a bounded time.
type Actuator interface {
	// Read returns a knob's current value.
	Read(ctx context.Context, cg Ref, k Knob) (Setting, error)
	// Write sets a knob.
	Write(ctx context.Context, cg Ref, k Knob, v int64) error
	// Restore writes back a value previously returned by Read (its Raw).
	Restore(ctx context.Context, cg Ref, k Knob, s Setting) error
	// Reclaim asks the kernel to reclaim bytes from the cgroup through
	// memory.reclaim. A partial reclaim (EAGAIN) is not an error.
	Reclaim(ctx context.Context, cg Ref, bytes int64) error
	// Freeze freezes (true) or thaws (false) the cgroup's subtree and waits
	// for the kernel to report it done.
	Freeze(ctx context.Context, cg Ref, frozen bool) error
	// Kill kills every process in the cgroup's subtree (cgroup.kill).
	Kill(ctx context.Context, cg Ref) error
}

// Capabilities says which controllers and features the hierarchy offers, so
// the loop can tell the operator once which policy actions are impossible.
type Capabilities struct {
	Root        string          // cgroup2 mount point
	Controllers map[string]bool // controllers enabled for the governed cgroups ("memory", "cpu", "io", "pids", ...)
	Reclaim     bool            // memory.reclaim exists
	Freeze      bool            // cgroup.freeze exists
	Kill        bool            // cgroup.kill exists
	// NoCPUIdle: the kernel has no cpu.idle (before Linux 5.15), known
	// from a cgroup with the cpu controller or the kernel's symbol table.
	// False when it has or when that is unknown.
	NoCPUIdle bool
	// FeaturesFrom says where Freeze and Kill were detected: a non-root
	// cgroup's files, the kernel's symbol table, or why neither worked.
	FeaturesFrom string
}

// Clock is the loop's time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

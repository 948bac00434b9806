// Package record is the governor's flight recorder: a bounded on-disk ring
// of what the control loop saw and did at every tick, a reader for it, and
// the pieces that replay a recording through the same Loop.Step code
// without kernel access (a Source, a Clock and an in-memory Actuator).
//
// # Format
//
// A recording is a directory of segment files named seg-NNNNNNNN.jsonl.zst
// (NNNNNNNN increasing). Each segment is a sequence of blocks; each block is
// a zstd skippable frame (magic 0x184D2A5E, 24 bytes of content: "GVR2",
// the length of the data frame that follows, its CRC-32C, the number of
// ticks in it and the first tick's time in Unix nanoseconds, all
// little-endian) followed by one ordinary zstd frame (with zstd's own
// content checksum) holding JSON lines, one per tick (type Tick). zstd
// ignores skippable frames, so
//
//	zstd -dc seg-00000001.jsonl.zst | jq .
//
// shows a segment with common tools. Every block starts with a tick that
// carries Meta (the host's capabilities), so each block stands alone.
//
// In a GVR2 block, the first record of a cgroup (of the host) is in full
// and the later ones of the same id (the host) in the block may be delta
// records: they carry "m", a bit mask of the positions of Meta.Signals
// whose value changed (or appeared or disappeared) since that previous
// record, "v" only those positions' values in order (null: no longer
// measured), and "p" and "pop" only when they changed. Most of a cgroup's
// signals hold still from one tick to the next, so this is both smaller
// and cheaper to write and read. GVR1 blocks (recorders before delta
// records) are all in full; readers read both, and readers older than
// GVR2 refuse its blocks by their tag rather than misread them. The
// Reader returns every cgroup in full. The

// writer never appends to an existing segment: after a crash the last
// block of the last segment may be torn; readers skip it with a warning.
package record

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/governor-dev/governor/governor"
)

// Tick is one line of a recording: one Step of the loop.
type Tick struct {
	Time time.Time `json:"t"`
	// Seq counts the ticks of the recorder's life (from 1); a gap means
	// ticks were dropped (a write failed).
	Seq  uint64 `json:"seq"`
	Meta *Meta  `json:"meta,omitempty"`
	// Host is the root cgroup / /proc/pressure view; Cgroups every cgroup
	// the loop's sources found, in their order.
	Host    *Cgroup    `json:"host,omitempty"`
	Cgroups CgroupList `json:"cg"`
	// Controllers: one per controller of the policy, its global trigger's
	// state.
	Controllers []Controller `json:"ctl,omitempty"`
	// Reads are the knob values the loop read this tick (the kernel's,
	// before any write of the tick); Effects what it wrote and how that
	// went; Actions what it did, with reasons, as the audit log says.
	Reads   []Read   `json:"rd,omitempty"`
	Effects []Effect `json:"fx,omitempty"`
	Actions []Action `json:"act,omitempty"`
	// Memory is every reading of a cgroup's memory accounting the loop
	// took this tick (reclaim measures each write with one before and
	// one after), in order.
	Memory []MemRead `json:"mem,omitempty"`
}

// MemRead is one reading of a cgroup's memory accounting
// (governor.MemoryState), or the error it gave.
type MemRead struct {
	ID        uint64 `json:"id"`
	Current   int64  `json:"cur,omitempty"`
	Anon      int64  `json:"anon,omitempty"`
	File      int64  `json:"file,omitempty"`
	Shmem     int64  `json:"shmem,omitempty"`
	Pgscan    uint64 `json:"scan,omitempty"`
	Pgsteal   uint64 `json:"steal,omitempty"`
	Refaults  uint64 `json:"refault,omitempty"`
	SwapRoom  int64  `json:"swaproom,omitempty"`
	SwapTotal int64  `json:"swaptotal,omitempty"`
	SwapFree  int64  `json:"swapfree,omitempty"`
	ErrKind   string `json:"ek,omitempty"`
	Err       string `json:"err,omitempty"`
}

// State is the reading as the loop saw it.
func (m MemRead) State() governor.MemoryState {
	return governor.MemoryState{Current: m.Current, Anon: m.Anon, File: m.File, Shmem: m.Shmem,
		Pgscan: m.Pgscan, Pgsteal: m.Pgsteal, Refaults: m.Refaults,
		SwapRoom: m.SwapRoom, SwapTotal: m.SwapTotal, SwapFree: m.SwapFree}
}

func memRead(id uint64, s governor.MemoryState, err error) MemRead {
	ek, msg := errKind(err)
	return MemRead{ID: id, Current: s.Current, Anon: s.Anon, File: s.File, Shmem: s.Shmem,
		Pgscan: s.Pgscan, Pgsteal: s.Pgsteal, Refaults: s.Refaults,
		SwapRoom: s.SwapRoom, SwapTotal: s.SwapTotal, SwapFree: s.SwapFree, ErrKind: ek, Err: msg}
}

// Meta describes the recorded host: what the live loop was configured
// with that changes its decisions.
type Meta struct {
	Version string `json:"version,omitempty"`
	Root    string `json:"root,omitempty"`
	// Controllers: nil means unknown (the loop assumes present), empty
	// means none; kept apart in JSON (null vs {}).
	Controllers map[string]bool `json:"controllers"`
	// Enables lists controllers the actuator enables by itself (systemd).
	Enables      []string `json:"enables,omitempty"`
	Reclaim      bool     `json:"reclaim,omitempty"`
	Freeze       bool     `json:"freeze,omitempty"`
	Kill         bool     `json:"kill,omitempty"`
	NoCPUIdle    bool     `json:"no_cpu_idle,omitempty"`
	SelfPath     string   `json:"self,omitempty"`
	AllowSystemd []string `json:"allow_systemd,omitempty"`
	NumCPU       int      `json:"ncpu,omitempty"`
	DryRun       bool     `json:"dry_run,omitempty"`
	Tick         string   `json:"tick,omitempty"` // the live policy's tick
	// Signals names the positions of Cgroup.Values.
	Signals []string `json:"signals,omitempty"`
}

// Cgroup is one cgroup's sample. Values holds its signals by position in
// the block's Meta.Signals (null: not measured; NaN and infinities as the
// strings "NaN", "+Inf", "-Inf"): positions, not names, because a name
// per value would be most of the recording's size.
type Cgroup struct {
	ID        uint64  `json:"id"`
	Path      string  `json:"p"`
	Populated bool    `json:"pop,omitempty"`
	Values    []Value `json:"v,omitempty"`
	// By is the sample's PreemptedBy (the BPF sensor's preemptions of
	// this cgroup by others over the tick's window), each as
	// [id, preemptions per second]; absent when empty.
	By []Preemptor `json:"by,omitempty"`
}

// Preemptor is one entry of Cgroup.By: governor.Preemptor, written as the
// array [id, per second].
type Preemptor struct {
	ID        uint64
	PerSecond float64
}

// MarshalJSON writes [id, per second].
func (p Preemptor) MarshalJSON() ([]byte, error) {
	return appendPreemptor(nil, p.ID, p.PerSecond), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Preemptor) UnmarshalJSON(b []byte) error {
	ps := parser{b: b}
	if err := ps.preemptor(p); err != nil {
		return err
	}
	return ps.end()
}

func appendPreemptor(b []byte, id uint64, perSecond float64) []byte {
	b = append(b, '[')
	b = strconv.AppendUint(b, id, 10)
	b = append(b, ',')
	b = appendNum(b, perSecond)
	return append(b, ']')
}

// Value is one signal value: V when Set, JSON null otherwise; NaN and
// infinities are the strings "NaN", "+Inf", "-Inf".
type Value struct {
	V   float64
	Set bool
}

// MarshalJSON writes null, a number or one of the strings above.
func (v Value) MarshalJSON() ([]byte, error) {
	if !v.Set {
		return []byte("null"), nil
	}
	return appendNum(nil, v.V), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *Value) UnmarshalJSON(b []byte) error {
	p := parser{b: b}
	if err := p.value(v); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.b) {
		return p.errf("trailing data")
	}
	return nil
}

func appendNum(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	if b2, ok := appendShortNum(b, f); ok {
		return b2
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// pow10 holds the powers of ten a float64 has exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// appendShortNum writes f as a plain decimal with at most 6 digits after
// the point when one reads back as exactly f, which is most of what the
// kernel reports (byte counts, microsecond counters, PSI's two decimals),
// and is several times cheaper than strconv's shortest formatting. The
// test: m = |f|*10^6 rounded is an integer below 2^53, so m and 10^6 are
// exact and a reader's correctly rounded m/10^6 is this same division;
// if it gives f back, the digits of m with the point 6 places from the
// right parse as f, and so do they without m's trailing zeros (the same
// rational number). Integers are tested first, without the division.
// (Not always strconv's shortest form: it need not be.)
func appendShortNum(b []byte, f float64) ([]byte, bool) {
	if f == 0 {
		if math.Signbit(f) {
			return b, false
		}
		return append(b, '0'), true
	}
	a := math.Abs(f)
	if a >= 1<<53 || a < 1e-6 {
		return b, false
	}
	k := 0
	u := uint64(a)
	if float64(u) != a {
		m := math.Round(a * 1e6)
		if m >= 1<<53 || m/1e6 != a {
			return b, false
		}
		u, k = uint64(m), 6
		for u%10 == 0 && k > 0 {
			u /= 10
			k--
		}
	}
	if f < 0 {
		b = append(b, '-')
	}
	// The digits of u, at least k+1 of them (0.0x), right-aligned.
	var d [24]byte
	i := len(d)
	for u > 0 || len(d)-i <= k {
		i--
		d[i] = byte('0' + u%10)
		u /= 10
	}
	if k == 0 {
		return append(b, d[i:]...), true
	}
	ip := len(d) - k
	b = append(b, d[i:ip]...)
	b = append(b, '.')
	return append(b, d[ip:]...), true
}

// Controller is a controller's trigger state at a tick.
type Controller struct {
	Name     string `json:"n"`
	Kind     string `json:"k,omitempty"`
	Target   string `json:"target,omitempty"`
	Active   bool   `json:"a,omitempty"`
	Disabled string `json:"off,omitempty"`
	// Because is why it is active (only while active).
	Because string `json:"why,omitempty"`
}

// Error kinds of Read and Effect, the Actuator's errors by class.
const (
	ErrKindGone        = "gone"
	ErrKindUnsupported = "unsupported"
	ErrKindTimeout     = "timeout"
	ErrKindInProgress  = "in-progress" // not written: an earlier write still runs
	ErrKindOther       = "error"
)

// Read is a knob read by the loop.
type Read struct {
	ID      uint64 `json:"id"`
	Knob    string `json:"k"`
	Value   int64  `json:"v"`
	Raw     string `json:"raw,omitempty"`
	ErrKind string `json:"ek,omitempty"`
	Err     string `json:"err,omitempty"`
}

// Effect is a call the loop made to change a cgroup: Op is "write",
// "restore", "reclaim", "freeze", "thaw" or "kill".
type Effect struct {
	ID      uint64 `json:"id"`
	Op      string `json:"op"`
	Knob    string `json:"k,omitempty"`
	Value   int64  `json:"v,omitempty"`
	ErrKind string `json:"ek,omitempty"`
	Err     string `json:"err,omitempty"`
}

// Action is a governor.Action as recorded.
type Action struct {
	Time       time.Time               `json:"t"`
	Controller string                  `json:"ctl"`
	ID         uint64                  `json:"id"`
	Cgroup     string                  `json:"cg"`
	Kind       string                  `json:"kind"`
	Knob       string                  `json:"knob,omitempty"`
	Old        string                  `json:"old,omitempty"`
	New        string                  `json:"new,omitempty"`
	Reason     string                  `json:"why,omitempty"`
	DryRun     bool                    `json:"dry,omitempty"`
	Err        string                  `json:"err,omitempty"`
	Reclaim    *governor.ReclaimResult `json:"reclaim,omitempty"`
}

// FromAction converts a loop action for the recording.
func FromAction(a governor.Action) Action {
	r := Action{Time: a.Time, Controller: a.Controller, ID: uint64(a.Cgroup.ID), Cgroup: a.Cgroup.Path, Kind: a.Kind,
		Knob: a.Knob, Old: a.Old, New: a.New, Reason: a.Reason, DryRun: a.DryRun, Reclaim: a.Reclaim}
	if a.Err != nil {
		r.Err = a.Err.Error()
	}
	return r
}

// Sample turns a recorded cgroup back into a loop sample; sigs maps
// positions to this governor's signals (NumSignals: unknown, a newer
// governor's).
func (c *Cgroup) Sample(s *governor.Sample, sigs []governor.Signal) {
	*s = governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(c.ID), Path: c.Path}, Populated: c.Populated}
	for i, v := range c.Values {
		if v.Set && i < len(sigs) && sigs[i] < governor.NumSignals {
			s.Set(sigs[i], v.V)
		}
	}
	if len(c.By) > 0 {
		s.PreemptedBy = make([]governor.Preemptor, len(c.By))
		for i, p := range c.By {
			s.PreemptedBy[i] = governor.Preemptor{Cgroup: governor.CgroupID(p.ID), PerSecond: p.PerSecond}
		}
	}
}

// Signal returns the value of the signal named name, if recorded.
func (c *Cgroup) Signal(m *Meta, name string) (float64, bool) {
	for i, n := range m.Signals {
		if n == name {
			if i < len(c.Values) && c.Values[i].Set {
				return c.Values[i].V, true
			}
			return 0, false
		}
	}
	return 0, false
}

// SignalMap maps the positions of m.Signals to this governor's signals.
func (m *Meta) SignalMap() []governor.Signal {
	out := make([]governor.Signal, len(m.Signals))
	for i, n := range m.Signals {
		out[i] = governor.NumSignals
		if s, ok := governor.SignalByName(n); ok {
			out[i] = s
		}
	}
	return out
}

func signalNames() []string {
	out := make([]string, governor.NumSignals)
	for s := governor.Signal(0); s < governor.NumSignals; s++ {
		out[s] = s.Name()
	}
	return out
}

// appendCgroup encodes a sample as a Cgroup JSON object, without
// reflection (this runs for every cgroup at every tick).
func appendCgroup(b []byte, s *governor.Sample) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(s.ID), 10)
	b = append(b, `,"p":`...)
	b = appendString(b, s.Path)
	if s.Populated {
		b = append(b, `,"pop":true`...)
	}
	// Values by position in Meta.Signals: null where absent, trailing
	// absent ones left out.
	last := -1
	for sig := governor.Signal(0); sig < governor.NumSignals; sig++ {
		if s.Has.Has(sig) {
			last = int(sig)
		}
	}
	if last >= 0 {
		b = append(b, `,"v":[`...)
		for sig := governor.Signal(0); int(sig) <= last; sig++ {
			if sig > 0 {
				b = append(b, ',')
			}
			if v, ok := s.Get(sig); ok {
				b = appendNum(b, v)
			} else {
				b = append(b, "null"...)
			}
		}
		b = append(b, ']')
	}
	return append(appendBy(b, s), '}')
}

// appendBy appends s's preemptors as "by", if any. They are the tick's
// own (not a level), so a delta record carries them whole too.
func appendBy(b []byte, s *governor.Sample) []byte {
	if len(s.PreemptedBy) == 0 {
		return b
	}
	b = append(b, `,"by":[`...)
	for i, p := range s.PreemptedBy {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPreemptor(b, uint64(p.Cgroup), p.PerSecond)
	}
	return append(b, ']')
}

// appendString appends s as a JSON string; cgroup paths are nearly always
// plain, so the common case copies.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

package governor

import "time"

// Decisions are values. Each tick the loop reads what the controllers will
// need (observe, then prepare: the knob values, memory accounting and
// victim hints, each read at most once), then every controller decides
// from that View without touching the kernel and returns Intents, which
// apply alone carries out: it checks, records, acts and audits every kind
// of intent alike. Explain describes what decide would do from the same
// values.

// IntentKind is what an intent asks for.
type IntentKind string

// The intent kinds, as Action.Kind names them.
const (
	IntentWrite   IntentKind = "write"   // set Knob to Value
	IntentRestore IntentKind = "restore" // write Knob's original back and stop managing it
	IntentReclaim IntentKind = "reclaim" // memory.reclaim Value bytes
	IntentFreeze  IntentKind = "freeze"  // cgroup.freeze 1
	IntentThaw    IntentKind = "thaw"    // cgroup.freeze 0
	IntentKill    IntentKind = "kill"    // cgroup.kill, then thaw the emptied cgroup
)

// Intent is one effect a controller decided, with its reason. It is plain
// data: what apply executes, and what a recorder can keep.
type Intent struct {
	Kind       IntentKind
	Controller string // the controller's name
	Rule       string // its policy block: "rule", "suppress", "protect", ...
	Cgroup     Ref
	Knob       Knob  // write, restore
	Value      int64 // write: the value; reclaim: bytes
	// Reason is the rule's conditions, their values and thresholds, as the
	// audit line gives them.
	Reason string
	// Reclaim, for IntentReclaim: what the decision saw (usage, pressure,
	// the memory accounting read before it), for measuring the result.
	Reclaim *ReclaimBasis `json:",omitempty"`
	// Since, for IntentKill: when the victim was frozen.
	Since time.Time `json:",omitempty"`
}

// ReclaimBasis is what a reclaim decision was based on.
type ReclaimBasis struct {
	Usage    int64   // memory.current before the write
	Pressure float64 // the controller's signal
	Before   MemoryState
	Measured bool // Before was read
	// Earlier, when set: a write to this cgroup that outlived its deadline
	// at an earlier look and went on in the kernel. apply reports it,
	// measured against Before, ahead of this intent's own write (none
	// when the intent's Value is 0).
	Earlier *EarlierReclaim `json:",omitempty"`
}

// EarlierReclaim is a memory.reclaim write that outlived its deadline:
// what was asked and what the cgroup held before it.
type EarlierReclaim struct {
	Requested, Usage int64
	Pressure         float64
	Reason           string
	Before           MemoryState
	Measured         bool
	At               time.Time
}

// View is what controllers decide from: the tick's time, the snapshot's
// signals, the governed cgroups by class, the deny list, and what prepare
// read for them this tick (knob values, memory accounting), each read
// once, before any controller decides. Controllers only read it. The
// ledger of what the governor holds is the loop's managed and frozen
// tables (as StateEntry values in the state file). Its slices are reused
// from tick to tick: whoever keeps a View past its tick copies them.
type View struct {
	Now     time.Time
	Snap    *Snapshot
	Members map[string][]*Sample // class name -> samples of its cgroups
	Deny    *DenyList            // what no controller may act on
	Knobs   []KnobValue          // knob values read this tick
	Memory  []MemoryValue        // memory accounting read this tick
	// SelfThrottled: the cgroups whose CPU stall was of their own making
	// at the tick before (SelfThrottledSet), which keeps the judgement
	// from flickering (selfThrottledKeep). nil: none.
	SelfThrottled map[CgroupID]bool

	expl struct { // see explaining
		snap *Snapshot
		n    int
		done SignalSet
		by   map[Signal][]*Sample
	}
}

// KnobValue is a knob's value as read this tick; Err says why it could
// not be read.
type KnobValue struct {
	Cgroup CgroupID
	Knob   Knob
	Value  Setting
	Err    string `json:",omitempty"`
}

// MemoryValue is a cgroup's memory accounting as read this tick.
type MemoryValue struct {
	Cgroup CgroupID
	State  MemoryState
	Err    string `json:",omitempty"`
}

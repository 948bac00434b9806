package governor

import (
	"fmt"
	"time"
)

// Policy is a compiled policy: what policies/ produces from HCL files and the
// loop executes. It is plain data; every name and value has already been
// checked. Origin fields ("file.hcl:12") let log lines point at the source.
type Policy struct {
	// Tick is the loop's period (default 1 s).
	Tick time.Duration
	// ReportEvery is how often per-cgroup pressure is logged at info level
	// (default 60 s; the first tick always reports).
	ReportEvery time.Duration

	Classes    []Class
	Rules      []Rule
	Reclaim    []ReclaimController
	MemHigh    []MemoryHighController
	Suppress   []SuppressController
	Protect    []ProtectController
	LastResort []LastResortController

	// Admission, if set, is the node's verdict for batch schedulers.
	Admission *Admission
}

// Admission decides whether the node accepts more batch work: it stops
// accepting when Trigger becomes active (normally pressure of a protected
// class or of the host) and accepts again once it recovers; the trigger's
// hysteresis keeps the verdict from flapping. The headroom published with
// the verdict is, per When condition, the distance between the signal's
// current value and its threshold.
type Admission struct {
	Origin  string
	Trigger Trigger
}

// Class is a named set of cgroups selected by path globs relative to the
// cgroup root. "*" matches within one path element, "**" matches any number
// of elements (including none). A cgroup belongs to the first class, in
// declaration order, that matches it and that none of its Exclude patterns
// match.
type Class struct {
	Name    string
	Origin  string
	Match   []string
	Exclude []string
	// Protected classes are never limited, frozen or killed; their signals
	// can still drive conditions (e.g. batch suppression on their behalf).
	// Only a protect block may write to them, and only to raise their
	// memory.low / memory.min.
	Protected bool
}

// Op compares a signal with a threshold.
type Op uint8

const (
	Above Op = iota + 1 // value > threshold
	Below               // value < threshold
)

func (o Op) String() string {
	switch o {
	case Above:
		return ">"
	case Below:
		return "<"
	}
	return "?"
}

// Scope says whose signal a condition reads.
type Scope uint8

const (
	// ScopeSelf reads the cgroup the controller acts on.
	ScopeSelf Scope = iota + 1
	// ScopeClass reads every cgroup of Condition.Class; it holds when it
	// holds for any of them (the worst one decides).
	ScopeClass
	// ScopeHost reads the host (/proc/pressure, root cgroup).
	ScopeHost
)

// Condition is a threshold on one signal that must hold continuously for a
// duration. A missing signal never satisfies a condition.
type Condition struct {
	Origin string
	Scope  Scope
	Class  string // for ScopeClass
	Signal Signal
	Op     Op
	Value  float64 // in the signal's unit (see Signal.Unit)
	For    time.Duration
}

// Trigger is a condition set with hysteresis: it becomes active when any of
// When has held for its duration, and inactive again when all of Recover have
// held for theirs. An empty Recover means "when no When condition holds any
// more, for the longest of their durations".
type Trigger struct {
	When    []Condition
	Recover []Condition
}

// Step is how far one action moves a knob: a percentage of the current value
// or an absolute amount in the knob's unit. Steps are magnitudes; the
// controller decides the direction.
type Step struct {
	Percent float64 // if non-zero: percent of the current value
	Amount  int64   // otherwise: absolute amount
}

// Limits bound how a controller acts: Min/Max clamp every value it writes,
// Cooldown separates two actions on the same cgroup and knob, MaxPerMinute
// caps actions by this controller across all cgroups (0 = no cap).
type Limits struct {
	Min, Max     int64
	Cooldown     time.Duration
	MaxPerMinute int
}

// Rule is the generic form: while Trigger is active, move Knob of every
// cgroup of Target by Step in Direction (down = tighten), within Limits;
// when it recovers, move it back by Step each cooldown until the original
// value is restored.
type Rule struct {
	Name    string
	Origin  string
	Target  string // class name
	Trigger Trigger
	Knob    Knob
	Down    bool // true: decrease the knob while active
	Step    Step
	Limits  Limits
	// Blame, BlameMinShare: as SuppressController's; the culprits' knob
	// moves in Direction.
	Blame         Blame
	BlameMinShare float64
}

// ReclaimController is proactive reclaim in the senpai/TMO style: every
// Interval, if the cgroup's pressure (Signal, normally memory.some.stall or
// memory.some.avg10) is below Target, write Step (a percent of
// memory.current, at most MaxStep bytes) to memory.reclaim, scaled down as
// pressure approaches the target; at or above Target it backs off at once
// and does nothing. It never reclaims below MinSize bytes of memory.current.
type ReclaimController struct {
	Name     string
	Origin   string
	Target   string // class
	Signal   Signal
	Goal     float64 // pressure target, in the signal's unit
	Interval time.Duration
	Step     Step
	MaxStep  int64
	MinSize  int64
	// Ramp multiplies the step after each write that freed at least half
	// of what it asked while pressure was under half the goal (up to
	// MaxStep); pressure at or above half the goal halves it again. 1 keeps
	// the step fixed; 0 means DefaultReclaimRamp.
	Ramp float64
	// FutileBelow (percent of the request, 0 = DefaultReclaimFutileBelow):
	// a write that frees less is futile; three in a row back off.
	FutileBelow float64
	// MaxBackoff caps the interval multiplier while reclaim is futile
	// (0 = DefaultReclaimMaxBackoff).
	MaxBackoff int
}

// MemoryHighController adapts memory.high to keep a cgroup's memory pressure
// in a band: while Trigger (pressure high) is active it raises memory.high by
// Step (up to Limits.Max, or removes it when Limits.Max is Unlimited); while
// pressure is below Relax it lowers memory.high toward
// memory.current + Headroom, never more than Step at a time and never below
// memory.current minus MaxBelowCurrent.
type MemoryHighController struct {
	Name            string
	Origin          string
	Target          string
	Trigger         Trigger     // when to raise
	Relax           []Condition // when all hold, lower toward usage
	Step            Step
	Headroom        Step // percent of memory.current or bytes above it
	MaxBelowCurrent int64
	Limits          Limits
}

// SuppressController squeezes a batch class while a protected class suffers:
// while Trigger is active (its conditions normally read ScopeClass of the
// protected class), every cgroup of Target has each listed knob moved down by
// its step each cooldown, down to its floor; once it recovers, the knobs are
// given back gradually (one step per cooldown) until their original values.
type SuppressController struct {
	Name    string
	Origin  string
	Target  string
	Trigger Trigger
	Knobs   []SuppressKnob
	// Blame, if not BlameNone, squeezes only the members of Target that
	// caused the suffering (see blame.go); BlameMinShare (percent, 0..100)
	// leaves out those whose share is below it.
	Blame         Blame
	BlameMinShare float64
}

// Blame says which members of its target class a suppress squeezes.
type Blame uint8

const (
	// BlameNone squeezes every member alike.
	BlameNone Blame = iota
	// BlamePreemption squeezes the members whose tasks preempted the
	// suffering members' runnable tasks (the BPF sensor's preemption
	// pairs), each in proportion to its share of those preemptions.
	BlamePreemption
)

func (b Blame) String() string {
	switch b {
	case BlameNone:
		return "none"
	case BlamePreemption:
		return "preemption"
	}
	return fmt.Sprintf("blame(%d)", uint8(b))
}

// SuppressKnob is one knob of a SuppressController.
type SuppressKnob struct {
	Knob   Knob // CPUWeight, CPUMax or IOWeight
	Step   Step
	Limits Limits // Min is the floor while suppressed
}

// ProtectController sets memory.low / memory.min for every cgroup of Target
// while it exists (restored on exit). A zero value leaves that knob alone.
type ProtectController struct {
	Name   string
	Origin string
	Target string
	Low    int64
	Min    int64
}

// LastResortController freezes, then kills: when Trigger is active, the
// worst cgroup of Target is frozen (largest value of Rank's signal, with
// operators' hints first: see chooseVictim); if the trigger is still
// active after Grace the frozen cgroup is killed (cgroup.kill), otherwise
// it is thawed. Kill=false stops at freezing (thaw on recovery). Hook, when
// set, runs before the freeze, for at most HookTimeout.
type LastResortController struct {
	Name        string
	Origin      string
	Target      string
	Trigger     Trigger
	Grace       time.Duration
	Kill        bool
	Rank        VictimRank
	Hook        []string
	HookTimeout time.Duration
}

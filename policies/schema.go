package policies

import "github.com/hashicorp/hcl/v2"

// The structs below are the file schema, decoded with gohcl. Attributes are
// kept as *hcl.Attribute (nil when absent) and evaluated by the compiler, so
// that every value error, semantic or not, points at the attribute's source.
// No struct has a ",remain" field: unknown attributes and blocks are errors.

type fileSchema struct {
	Governor   []*governorBlock   `hcl:"governor,block"`
	Classes    []*classBlock      `hcl:"class,block"`
	Protect    []*protectBlock    `hcl:"protect,block"`
	Reclaim    []*reclaimBlock    `hcl:"reclaim,block"`
	MemoryHigh []*memoryHighBlock `hcl:"memory_high,block"`
	Suppress   []*suppressBlock   `hcl:"suppress,block"`
	LastResort []*lastResortBlock `hcl:"last_resort,block"`
	Rules      []*ruleBlock       `hcl:"rule,block"`
	Admission  []*admissionBlock  `hcl:"admission,block"`
}

// admissionBlock is the node's verdict for batch schedulers.
type admissionBlock struct {
	When     []*conditionBlock `hcl:"when,block"`
	Recover  []*conditionBlock `hcl:"recover,block"`
	DefRange hcl.Range         `hcl:",def_range"`
}

type governorBlock struct {
	Tick        *hcl.Attribute `hcl:"tick,optional"`
	ReportEvery *hcl.Attribute `hcl:"report_every,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type classBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Match     *hcl.Attribute `hcl:"match,optional"`
	Exclude   *hcl.Attribute `hcl:"exclude,optional"`
	Protected *hcl.Attribute `hcl:"protected,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

// conditionBlock is a when, recover or relax block.
type conditionBlock struct {
	Signal   *hcl.Attribute `hcl:"signal,optional"`
	Above    *hcl.Attribute `hcl:"above,optional"`
	Below    *hcl.Attribute `hcl:"below,optional"`
	For      *hcl.Attribute `hcl:"for,optional"`
	Class    *hcl.Attribute `hcl:"class,optional"`
	Host     *hcl.Attribute `hcl:"host,optional"`
	DefRange hcl.Range      `hcl:",def_range"`
}

type protectBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Target    *hcl.Attribute `hcl:"target,optional"`
	MemoryLow *hcl.Attribute `hcl:"memory_low,optional"`
	MemoryMin *hcl.Attribute `hcl:"memory_min,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type reclaimBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Target    *hcl.Attribute `hcl:"target,optional"`
	Signal    *hcl.Attribute `hcl:"signal,optional"`
	Goal      *hcl.Attribute `hcl:"goal,optional"`
	Interval  *hcl.Attribute `hcl:"interval,optional"`
	Step      *hcl.Attribute `hcl:"step,optional"`
	MaxStep   *hcl.Attribute `hcl:"max_step,optional"`
	MinSize   *hcl.Attribute `hcl:"min_size,optional"`
	// Ramp, FutileBelow, MaxBackoff: see REFERENCE.md (reclaim).
	Ramp        *hcl.Attribute `hcl:"ramp,optional"`
	FutileBelow *hcl.Attribute `hcl:"futile_below,optional"`
	MaxBackoff  *hcl.Attribute `hcl:"max_backoff,optional"`
	DefRange    hcl.Range      `hcl:",def_range"`
}

type memoryHighBlock struct {
	Name            string            `hcl:"name,label"`
	NameRange       hcl.Range         `hcl:"name,label_range"`
	Target          *hcl.Attribute    `hcl:"target,optional"`
	Step            *hcl.Attribute    `hcl:"step,optional"`
	Headroom        *hcl.Attribute    `hcl:"headroom,optional"`
	MaxBelowCurrent *hcl.Attribute    `hcl:"max_below_current,optional"`
	Min             *hcl.Attribute    `hcl:"min,optional"`
	Max             *hcl.Attribute    `hcl:"max,optional"`
	Cooldown        *hcl.Attribute    `hcl:"cooldown,optional"`
	MaxPerMinute    *hcl.Attribute    `hcl:"max_per_minute,optional"`
	When            []*conditionBlock `hcl:"when,block"`
	Recover         []*conditionBlock `hcl:"recover,block"`
	Relax           []*conditionBlock `hcl:"relax,block"`
	DefRange        hcl.Range         `hcl:",def_range"`
}

type suppressBlock struct {
	Name         string         `hcl:"name,label"`
	NameRange    hcl.Range      `hcl:"name,label_range"`
	Target       *hcl.Attribute `hcl:"target,optional"`
	MaxPerMinute *hcl.Attribute `hcl:"max_per_minute,optional"`
	// Blame, BlameMinShare: squeeze only the culprits (see REFERENCE.md).
	Blame         *hcl.Attribute    `hcl:"blame,optional"`
	BlameMinShare *hcl.Attribute    `hcl:"blame_min_share,optional"`
	When          []*conditionBlock `hcl:"when,block"`
	Recover       []*conditionBlock `hcl:"recover,block"`
	Knobs         []*knobBlock      `hcl:"knob,block"`
	DefRange      hcl.Range         `hcl:",def_range"`
}

type knobBlock struct {
	Knob      string         `hcl:"knob,label"`
	KnobRange hcl.Range      `hcl:"knob,label_range"`
	Step      *hcl.Attribute `hcl:"step,optional"`
	Min       *hcl.Attribute `hcl:"min,optional"`
	Cooldown  *hcl.Attribute `hcl:"cooldown,optional"`
	DefRange  hcl.Range      `hcl:",def_range"`
}

type lastResortBlock struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Target    *hcl.Attribute `hcl:"target,optional"`
	Grace     *hcl.Attribute `hcl:"grace,optional"`
	Kill      *hcl.Attribute `hcl:"kill,optional"`
	// Victim choice and the pre-freeze notification (see REFERENCE.md).
	Rank        *hcl.Attribute    `hcl:"rank,optional"`
	Hook        *hcl.Attribute    `hcl:"hook,optional"`
	HookTimeout *hcl.Attribute    `hcl:"hook_timeout,optional"`
	When        []*conditionBlock `hcl:"when,block"`
	Recover     []*conditionBlock `hcl:"recover,block"`
	DefRange    hcl.Range         `hcl:",def_range"`
}

type ruleBlock struct {
	Name         string         `hcl:"name,label"`
	NameRange    hcl.Range      `hcl:"name,label_range"`
	Target       *hcl.Attribute `hcl:"target,optional"`
	Knob         *hcl.Attribute `hcl:"knob,optional"`
	Direction    *hcl.Attribute `hcl:"direction,optional"`
	Step         *hcl.Attribute `hcl:"step,optional"`
	Min          *hcl.Attribute `hcl:"min,optional"`
	Max          *hcl.Attribute `hcl:"max,optional"`
	Cooldown     *hcl.Attribute `hcl:"cooldown,optional"`
	MaxPerMinute *hcl.Attribute `hcl:"max_per_minute,optional"`
	// Blame, BlameMinShare: as suppress's.
	Blame         *hcl.Attribute    `hcl:"blame,optional"`
	BlameMinShare *hcl.Attribute    `hcl:"blame_min_share,optional"`
	When          []*conditionBlock `hcl:"when,block"`
	Recover       []*conditionBlock `hcl:"recover,block"`
	DefRange      hcl.Range         `hcl:",def_range"`
}

package policies

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/governor-dev/governor/governor"
)

// Defaults applied at compile time. REFERENCE.md documents each of them.
const (
	defaultTick        = time.Second
	defaultReportEvery = 60 * time.Second

	defaultReclaimGoal     = 0.1 // percent
	defaultReclaimInterval = 6 * time.Second
	defaultReclaimStep     = 1.0 // percent of memory.current
	defaultReclaimMaxStep  = 64 << 20
	defaultReclaimMinSize  = 128 << 20

	defaultMemHighStep            = 10.0 // percent
	defaultMemHighHeadroom        = 10.0 // percent
	defaultMemHighMaxBelowCurrent = 64 << 20
	defaultMemHighCooldown        = 10 * time.Second

	defaultSuppressStep     = 50.0 // percent
	defaultSuppressCooldown = 5 * time.Second

	defaultLastResortGrace = 10 * time.Second

	defaultRuleCooldown = 10 * time.Second
)

var defaultReclaimSignal = governor.MemorySomeStall

// Pseudo-knobs for conflict detection: actions that are not governor.Knobs
// but must still have a single owner per class.
const (
	writeReclaim = "memory.reclaim"
	writeFreeze  = "cgroup.freeze/cgroup.kill"
)

type compiler struct {
	diags   hcl.Diagnostics
	pol     governor.Policy
	gov     *governorBlock
	classes map[string]*classBlock
	prot    map[string]bool
	names   map[string]named
	writes  map[writeKey]named
}

type named struct {
	kind, name string
	rng        hcl.Range
}

func (n named) String() string { return fmt.Sprintf("%s %q (%s)", n.kind, n.name, at(n.rng)) }

type writeKey struct{ class, knob string }

// compile turns parsed files, in order, into a Policy. It always runs to the
// end so that one load reports every problem it can find.
func compile(files []*hcl.File) (*governor.Policy, hcl.Diagnostics) {
	c := &compiler{
		classes: map[string]*classBlock{},
		prot:    map[string]bool{},
		names:   map[string]named{},
		writes:  map[writeKey]named{},
	}
	c.pol = governor.Policy{Tick: defaultTick, ReportEvery: defaultReportEvery}

	var all fileSchema
	for _, f := range files {
		var fs fileSchema
		c.diags = append(c.diags, gohcl.DecodeBody(f.Body, nil, &fs)...)
		all.Governor = append(all.Governor, fs.Governor...)
		all.Classes = append(all.Classes, fs.Classes...)
		all.Protect = append(all.Protect, fs.Protect...)
		all.Reclaim = append(all.Reclaim, fs.Reclaim...)
		all.MemoryHigh = append(all.MemoryHigh, fs.MemoryHigh...)
		all.Suppress = append(all.Suppress, fs.Suppress...)
		all.LastResort = append(all.LastResort, fs.LastResort...)
		all.Rules = append(all.Rules, fs.Rules...)
		all.Admission = append(all.Admission, fs.Admission...)
	}

	for _, g := range all.Governor {
		c.governor(g)
	}
	for _, b := range all.Classes {
		c.class(b)
	}

	// Controllers are compiled in source order (file order, then position),
	// so duplicates and conflicts are reported at the later declaration.
	fileIndex := map[string]int{}
	for i, f := range files {
		if f != nil && f.Body != nil {
			fileIndex[f.Body.MissingItemRange().Filename] = i
		}
	}
	type item struct {
		rng hcl.Range
		fn  func()
	}
	var items []item
	for _, b := range all.Protect {
		items = append(items, item{b.DefRange, func() { c.protect(b) }})
	}
	for _, b := range all.Reclaim {
		items = append(items, item{b.DefRange, func() { c.reclaim(b) }})
	}
	for _, b := range all.MemoryHigh {
		items = append(items, item{b.DefRange, func() { c.memoryHigh(b) }})
	}
	for _, b := range all.Suppress {
		items = append(items, item{b.DefRange, func() { c.suppress(b) }})
	}
	for _, b := range all.LastResort {
		items = append(items, item{b.DefRange, func() { c.lastResort(b) }})
	}
	for _, b := range all.Rules {
		items = append(items, item{b.DefRange, func() { c.rule(b) }})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(fileIndex[a.rng.Filename], fileIndex[b.rng.Filename]),
			cmp.Compare(a.rng.Start.Byte, b.rng.Start.Byte))
	})
	for _, it := range items {
		it.fn()
	}
	for _, b := range all.Admission {
		c.admission(b)
	}

	if c.diags.HasErrors() {
		return nil, c.diags
	}
	pol := c.pol
	return &pol, c.diags
}

func (c *compiler) governor(b *governorBlock) {
	if c.gov != nil {
		c.errorf(b.DefRange, "Duplicate governor block",
			"Only one governor block is allowed across all policy files; the first is at %s.", at(c.gov.DefRange))
		return
	}
	c.gov = b
	c.pol.Tick = c.duration(b.Tick, defaultTick)
	c.pol.ReportEvery = c.duration(b.ReportEvery, defaultReportEvery)
	if b.Tick != nil && (c.pol.Tick < 100*time.Millisecond || c.pol.Tick > time.Minute) {
		c.errorf(b.Tick.Expr.Range(), "Invalid tick", "tick must be from 100ms to 1m, not %s.", c.pol.Tick)
	}
	if b.ReportEvery != nil && c.pol.ReportEvery < c.pol.Tick {
		c.errorf(b.ReportEvery.Expr.Range(), "Invalid report_every",
			"report_every (%s) must not be shorter than tick (%s).", c.pol.ReportEvery, c.pol.Tick)
	}
}

// checkName validates a class or controller name: they appear in logs and
// metric labels.
func (c *compiler) checkName(what, name string, rng hcl.Range) bool {
	ok := name != ""
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			ok = false
		}
	}
	if !ok {
		c.errorf(rng, "Invalid "+what+" name",
			"%q is not a valid %s name: use letters, digits, '_', '-' and '.' only.", name, what)
	}
	return ok
}

func (c *compiler) class(b *classBlock) {
	if !c.checkName("class", b.Name, b.NameRange) {
		return
	}
	if prev, dup := c.classes[b.Name]; dup {
		c.errorf(b.NameRange, "Duplicate class",
			"Class %q is already declared at %s; class names must be unique across all policy files.", b.Name, at(prev.DefRange))
		return
	}
	c.classes[b.Name] = b
	cl := governor.Class{Name: b.Name, Origin: at(b.DefRange)}
	if b.Match == nil {
		c.errorf(b.DefRange, "Missing required argument",
			"class %q needs match, a list of cgroup path globs such as [\"batch.slice/**\"].", b.Name)
	} else {
		cl.Match = c.patterns(b.Match, true)
	}
	if b.Exclude != nil {
		cl.Exclude = c.patterns(b.Exclude, false)
	}
	if n := len(cl.Match) + len(cl.Exclude); n > governor.MaxClassPatterns {
		c.errorf(b.DefRange, "Too many patterns",
			"class %q has %d match and exclude patterns; the limit is %d (see Limits in the policy reference).", b.Name, n, governor.MaxClassPatterns)
	}
	cl.Protected = c.boolean(b.Protected, false)
	c.prot[b.Name] = cl.Protected
	c.pol.Classes = append(c.pol.Classes, cl)
}

func (c *compiler) patterns(a *hcl.Attribute, nonEmpty bool) []string {
	pats, rngs, ok := c.strList(a)
	if !ok {
		return nil
	}
	if nonEmpty && len(pats) == 0 {
		c.errorf(a.Expr.Range(), "Empty match", "match needs at least one pattern; a class that selects nothing is useless.")
	}
	for i, p := range pats {
		if err := governor.CheckPattern(p); err != nil {
			c.errorf(rngs[i], "Invalid pattern", "%s. Patterns are cgroup paths relative to the cgroup root, e.g. \"system.slice/*.service\" or \"batch.slice/**\".", capitalize(err.Error()))
		}
	}
	return pats
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// controller registers a controller's name and checks it is unique.
func (c *compiler) controller(kind, name string, nameRange, def hcl.Range) named {
	n := named{kind: kind, name: name, rng: def}
	if !c.checkName(kind, name, nameRange) {
		return n
	}
	if prev, dup := c.names[name]; dup {
		c.errorf(nameRange, "Duplicate name",
			"%s %q has the same name as %s; controller and rule names must be unique across all policy files.", kind, name, prev)
		return n
	}
	c.names[name] = n
	return n
}

// target resolves a controller's target class. writes is false only for
// protect, which adds protection and is therefore allowed on protected
// classes.
func (c *compiler) target(a *hcl.Attribute, n named, writes bool) (string, bool) {
	if a == nil {
		c.errorf(n.rng, "Missing required argument", "%s %q needs target, the name of the class it acts on.", n.kind, n.name)
		return "", false
	}
	name, ok := c.str(a)
	if !ok {
		return "", false
	}
	if !c.knownClass(name, a.Expr.Range()) {
		return name, false
	}
	if writes && c.prot[name] {
		c.errorf(a.Expr.Range(), "Target is protected",
			"%s %q targets class %q, which is protected (declared at %s): the governor never writes to protected classes. Their signals can still be used in conditions (class = %q).",
			n.kind, n.name, name, at(c.classes[name].DefRange), name)
		return name, false
	}
	return name, true
}

func (c *compiler) knownClass(name string, rng hcl.Range) bool {
	if _, ok := c.classes[name]; ok {
		return true
	}
	names := make([]string, 0, len(c.classes))
	for n := range c.classes {
		names = append(names, n)
	}
	sort.Strings(names)
	hint := suggest(name, names)
	if hint == "" && len(names) > 0 {
		hint = " Classes: " + strings.Join(names, ", ") + "."
	}
	c.errorf(rng, "Unknown class", "There is no class named %q.%s", name, hint)
	return false
}

// claim records that n writes knob on class and reports a conflict with an
// earlier writer.
func (c *compiler) claim(class, knob string, n named, rng hcl.Range) {
	if class == "" {
		return
	}
	k := writeKey{class, knob}
	if prev, taken := c.writes[k]; taken {
		c.errorf(rng, "Conflicting controllers",
			"%s %q and %s both write %s of class %q; two controllers would fight over it. Merge them or target different classes.",
			n.kind, n.name, prev, knob, class)
		return
	}
	c.writes[k] = n
	// The kernel refuses cpu.weight writes (EINVAL) while a cgroup's
	// cpu.idle is 1, and reports its weight as 0: a policy must not drive
	// both on one class.
	other := map[string]string{"cpu.idle": "cpu.weight", "cpu.weight": "cpu.idle"}[knob]
	if prev, taken := c.writes[writeKey{class, other}]; other != "" && taken {
		c.errorf(rng, "Conflicting knobs",
			"%s %q writes %s and %s writes %s of class %q; the kernel refuses cpu.weight while cpu.idle is 1. Use cpu.idle with cpu.max, or cpu.weight alone.",
			n.kind, n.name, knob, prev, other, class)
	}
}

func (c *compiler) duration(a *hcl.Attribute, def time.Duration) time.Duration {
	if a == nil {
		return def
	}
	s, ok := c.scalar(a)
	if !ok {
		return def
	}
	d, err := parseDuration(s.text)
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid duration", "%s: %v.", a.Name, err)
		return def
	}
	return d
}

// positiveDuration is a duration that must be above zero.
func (c *compiler) positiveDuration(a *hcl.Attribute, def time.Duration) time.Duration {
	d := c.duration(a, def)
	if a != nil && d <= 0 {
		c.errorf(a.Expr.Range(), "Invalid duration", "%s must be longer than 0.", a.Name)
	}
	return d
}

func (c *compiler) size(a *hcl.Attribute, def int64, allowMax bool) int64 {
	if a == nil {
		return def
	}
	s, ok := c.scalar(a)
	if !ok {
		return def
	}
	if strings.TrimSpace(s.text) == "max" {
		if allowMax {
			return governor.Unlimited
		}
		c.errorf(a.Expr.Range(), "Invalid size", "%s cannot be \"max\"; give a size such as \"64MiB\".", a.Name)
		return def
	}
	v, err := parseSize(s.text)
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid size", "%s: %v.", a.Name, err)
		return def
	}
	return v
}

func (c *compiler) step(a *hcl.Attribute, k governor.Knob, down bool, def governor.Step) governor.Step {
	if a == nil {
		return def
	}
	s, ok := c.scalar(a)
	if !ok {
		return def
	}
	st, err := parseStep(k, s.text, down)
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid step", "%s: %v.", a.Name, err)
		return def
	}
	return st
}

func (c *compiler) knobValue(a *hcl.Attribute, k governor.Knob, def int64) int64 {
	if a == nil {
		return def
	}
	s, ok := c.scalar(a)
	if !ok {
		return def
	}
	v, err := knobValue(k, s.text)
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid "+a.Name, "%s: %v.", a.Name, err)
		return def
	}
	return v
}

func (c *compiler) count(a *hcl.Attribute) int {
	if a == nil {
		return 0
	}
	s, ok := c.scalar(a)
	if !ok {
		return 0
	}
	n, err := parseInt(s.text)
	if err == nil && n > 1_000_000 {
		err = fmt.Errorf("%d is too large", n)
	}
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid "+a.Name, "%s: %v (a whole number; 0 means no cap).", a.Name, err)
		return 0
	}
	return int(n)
}

// limits reads min, max, cooldown and max_per_minute for knob k.
func (c *compiler) limits(k governor.Knob, minA, maxA, cooldownA, perMinA *hcl.Attribute, cooldown time.Duration) governor.Limits {
	_, hi := knobRange(k)
	l := governor.Limits{
		Min:          c.knobValue(minA, k, defaultMin(k)),
		Max:          c.knobValue(maxA, k, hi),
		Cooldown:     c.duration(cooldownA, cooldown),
		MaxPerMinute: c.count(perMinA),
	}
	if l.Min > l.Max {
		subject := minA
		if subject == nil {
			subject = maxA
		}
		c.errorf(subject.Expr.Range(), "Invalid limits", "min (%s) is greater than max (%s) for %s.",
			k.FormatValue(l.Min), k.FormatValue(l.Max), k)
	}
	return l
}

// knob resolves a knob name, restricted to allowed when it is non-nil.
func (c *compiler) knob(name string, rng hcl.Range, allowed []governor.Knob, where string) (governor.Knob, bool) {
	k, ok := governor.KnobByName(name)
	var names []string
	if allowed == nil {
		for i := governor.Knob(0); i < governor.NumKnobs; i++ {
			names = append(names, i.String())
		}
	} else {
		for _, a := range allowed {
			names = append(names, a.String())
		}
	}
	if !ok {
		c.errorf(rng, "Unknown knob", "There is no knob named %q.%s Knobs: %s.", name, suggest(name, names), strings.Join(names, ", "))
		return 0, false
	}
	if allowed != nil && !slices.Contains(allowed, k) {
		c.errorf(rng, "Knob not allowed here", "%s cannot use %s; it can use %s.", where, name, strings.Join(names, ", "))
		return 0, false
	}
	return k, true
}

func (c *compiler) signal(a *hcl.Attribute) (governor.Signal, bool) {
	name, ok := c.str(a)
	if !ok {
		return 0, false
	}
	sig, ok := governor.SignalByName(name)
	if !ok {
		c.errorf(a.Expr.Range(), "Unknown signal", "There is no signal named %q.%s REFERENCE.md lists every signal.",
			name, suggest(name, governor.SignalNames()))
		return 0, false
	}
	return sig, true
}

func (c *compiler) condition(b *conditionBlock, block string) (governor.Condition, bool) {
	cond := governor.Condition{Origin: at(b.DefRange), Scope: governor.ScopeSelf}
	ok := true
	if b.Signal == nil {
		c.errorf(b.DefRange, "Missing required argument", "A %s block needs signal, e.g. signal = \"memory.some.avg10\".", block)
		ok = false
	} else if s, good := c.signal(b.Signal); good {
		cond.Signal = s
	} else {
		ok = false
	}

	var thr *hcl.Attribute
	switch {
	case b.Above != nil && b.Below != nil:
		c.errorf(b.Below.Range, "Conflicting thresholds", "A %s block takes exactly one of above and below, not both.", block)
		ok = false
	case b.Above != nil:
		cond.Op, thr = governor.Above, b.Above
	case b.Below != nil:
		cond.Op, thr = governor.Below, b.Below
	default:
		c.errorf(b.DefRange, "Missing threshold", "A %s block needs above or below, e.g. above = \"10%%\".", block)
		ok = false
	}
	if thr != nil && b.Signal != nil && ok {
		if s, good := c.scalar(thr); good {
			v, err := parseThreshold(cond.Signal, s.text)
			if err != nil {
				c.errorf(thr.Expr.Range(), "Invalid threshold", "%s: %v.", thr.Name, err)
				ok = false
			}
			cond.Value = v
		} else {
			ok = false
		}
	}
	cond.For = c.duration(b.For, 0)

	host := c.boolean(b.Host, false)
	switch {
	case b.Class != nil && host:
		c.errorf(b.Host.Range, "Conflicting scope", "A %s block reads either a class (class = ...) or the host (host = true), not both.", block)
		ok = false
	case b.Class != nil:
		name, good := c.str(b.Class)
		if good && c.knownClass(name, b.Class.Expr.Range()) {
			cond.Scope, cond.Class = governor.ScopeClass, name
		} else {
			ok = false
		}
	case host:
		cond.Scope = governor.ScopeHost
	}
	return cond, ok
}

func (c *compiler) conditions(bs []*conditionBlock, block string) []governor.Condition {
	var out []governor.Condition
	for _, b := range bs {
		if cond, ok := c.condition(b, block); ok {
			out = append(out, cond)
		}
	}
	return out
}

func (c *compiler) trigger(n named, when, recover []*conditionBlock) governor.Trigger {
	if len(when) == 0 {
		c.errorf(n.rng, "Missing when block", "%s %q needs at least one when block saying when it acts.", n.kind, n.name)
	}
	return governor.Trigger{When: c.conditions(when, "when"), Recover: c.conditions(recover, "recover")}
}

func (c *compiler) protect(b *protectBlock) {
	n := c.controller("protect", b.Name, b.NameRange, b.DefRange)
	target, _ := c.target(b.Target, n, false)
	p := governor.ProtectController{Name: b.Name, Origin: at(b.DefRange), Target: target}
	// -1 marks "absent or invalid" so that an explicit 0 can be told apart.
	for _, f := range []struct {
		a   *hcl.Attribute
		dst *int64
	}{{b.MemoryLow, &p.Low}, {b.MemoryMin, &p.Min}} {
		v := c.size(f.a, -1, false)
		if v == 0 {
			c.errorf(f.a.Expr.Range(), "Invalid size", "%s must be above 0; leave it out to keep the cgroup's own value.", f.a.Name)
		}
		*f.dst = max(v, 0)
	}
	if b.MemoryLow == nil && b.MemoryMin == nil {
		c.errorf(b.DefRange, "Missing required argument", "protect %q needs memory_low, memory_min or both.", b.Name)
	}
	if p.Low > 0 && p.Min > p.Low {
		c.warnf(b.MemoryMin.Expr.Range(), "memory_min above memory_low",
			"memory_min (%s) is larger than memory_low (%s), so memory_low has no effect.", governor.FormatBytes(p.Min), governor.FormatBytes(p.Low))
	}
	if b.MemoryLow != nil {
		c.claim(target, governor.MemoryLow.String(), n, b.MemoryLow.Range)
	}
	if b.MemoryMin != nil {
		c.claim(target, governor.MemoryMin.String(), n, b.MemoryMin.Range)
	}
	c.pol.Protect = append(c.pol.Protect, p)
}

func (c *compiler) reclaim(b *reclaimBlock) {
	n := c.controller("reclaim", b.Name, b.NameRange, b.DefRange)
	target, _ := c.target(b.Target, n, true)
	r := governor.ReclaimController{
		Name: b.Name, Origin: at(b.DefRange), Target: target,
		Signal:   defaultReclaimSignal,
		Goal:     defaultReclaimGoal,
		Interval: c.positiveDuration(b.Interval, defaultReclaimInterval),
		Step:     c.step(b.Step, governor.MemoryHigh, true, governor.Step{Percent: defaultReclaimStep}),
		MaxStep:  c.size(b.MaxStep, defaultReclaimMaxStep, true),
		MinSize:  c.size(b.MinSize, defaultReclaimMinSize, false),

		Ramp:        c.reclaimRamp(b.Ramp),
		FutileBelow: c.reclaimFutileBelow(b.FutileBelow),
		MaxBackoff:  c.reclaimMaxBackoff(b.MaxBackoff),
	}
	sigOK := true
	if b.Signal != nil {
		if s, ok := c.signal(b.Signal); ok {
			if s.Unit() != governor.UnitPercent {
				c.errorf(b.Signal.Expr.Range(), "Unsuitable signal",
					"reclaim keeps a pressure signal below its goal; %s is measured in %s, not percent. Use memory.some.stall or memory.some.avg10.", s, s.Unit())
				sigOK = false
			}
			r.Signal = s
		} else {
			sigOK = false
		}
	}
	if b.Goal != nil && sigOK {
		if s, ok := c.scalar(b.Goal); ok {
			v, err := parseThreshold(r.Signal, s.text)
			if err == nil && v <= 0 {
				err = fmt.Errorf("a goal of 0 would stop reclaim at the slightest pressure; it must be above 0%%")
			}
			if err != nil {
				c.errorf(b.Goal.Expr.Range(), "Invalid goal", "goal: %v.", err)
			}
			r.Goal = v
		}
	}
	if b.MaxStep != nil && r.MaxStep == 0 {
		c.errorf(b.MaxStep.Expr.Range(), "Invalid size", "max_step must be above 0.")
	}
	c.claim(target, writeReclaim, n, rangeOr(b.Target, b.DefRange))
	c.pol.Reclaim = append(c.pol.Reclaim, r)
}

// reclaimRamp reads reclaim's ramp: a plain number from 1 (a fixed step)
// to 16.
func (c *compiler) reclaimRamp(a *hcl.Attribute) float64 {
	if a == nil {
		return governor.DefaultReclaimRamp
	}
	s, ok := c.scalar(a)
	if !ok {
		return governor.DefaultReclaimRamp
	}
	v, unit, err := splitNumber(strings.TrimSpace(s.text))
	if err == nil && unit != "" {
		err = fmt.Errorf("%q is not a plain number (a factor such as 2)", s.text)
	}
	if err == nil && (v < 1 || v > 16) {
		err = fmt.Errorf("%g is out of range: 1 keeps the step fixed, at most 16", v)
	}
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid ramp", "ramp: %v.", err)
		return governor.DefaultReclaimRamp
	}
	return v
}

// reclaimFutileBelow reads futile_below: a percentage above 0% and below
// 100%.
func (c *compiler) reclaimFutileBelow(a *hcl.Attribute) float64 {
	if a == nil {
		return governor.DefaultReclaimFutileBelow
	}
	s, ok := c.scalar(a)
	if !ok {
		return governor.DefaultReclaimFutileBelow
	}
	v, err := parsePercent(s.text)
	if err == nil && (v <= 0 || v >= 100) {
		err = fmt.Errorf("%s must be above 0%% and below 100%%", s.text)
	}
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid futile_below", "futile_below: %v.", err)
		return governor.DefaultReclaimFutileBelow
	}
	return v
}

// reclaimMaxBackoff reads max_backoff: a whole number 1..1024.
func (c *compiler) reclaimMaxBackoff(a *hcl.Attribute) int {
	if a == nil {
		return governor.DefaultReclaimMaxBackoff
	}
	s, ok := c.scalar(a)
	if !ok {
		return governor.DefaultReclaimMaxBackoff
	}
	n, err := parseInt(s.text)
	if err == nil && (n < 1 || n > 1024) {
		err = fmt.Errorf("%d is out of range 1..1024 (1: never slow down)", n)
	}
	if err != nil {
		c.errorf(a.Expr.Range(), "Invalid max_backoff", "max_backoff: %v.", err)
		return governor.DefaultReclaimMaxBackoff
	}
	return int(n)
}

func rangeOr(a *hcl.Attribute, def hcl.Range) hcl.Range {
	if a != nil {
		return a.Range
	}
	return def
}

func (c *compiler) memoryHigh(b *memoryHighBlock) {
	n := c.controller("memory_high", b.Name, b.NameRange, b.DefRange)
	target, _ := c.target(b.Target, n, true)
	m := governor.MemoryHighController{
		Name: b.Name, Origin: at(b.DefRange), Target: target,
		Trigger:         c.trigger(n, b.When, b.Recover),
		Relax:           c.conditions(b.Relax, "relax"),
		Step:            c.step(b.Step, governor.MemoryHigh, true, governor.Step{Percent: defaultMemHighStep}),
		MaxBelowCurrent: c.size(b.MaxBelowCurrent, defaultMemHighMaxBelowCurrent, false),
	}
	if b.Headroom == nil {
		m.Headroom = governor.Step{Percent: defaultMemHighHeadroom}
	} else if s, ok := c.scalar(b.Headroom); ok {
		if strings.HasSuffix(strings.TrimSpace(s.text), "%") {
			p, err := parsePercent(s.text)
			if err == nil && p > 100 {
				err = fmt.Errorf("%s is more than 100%%", s.text)
			}
			if err != nil {
				c.errorf(b.Headroom.Expr.Range(), "Invalid headroom", "headroom: %v.", err)
			}
			m.Headroom = governor.Step{Percent: p}
		} else {
			m.Headroom = governor.Step{Amount: c.size(b.Headroom, 0, false)}
		}
	}
	if len(b.Relax) == 0 {
		c.errorf(b.DefRange, "Missing relax block",
			"memory_high %q needs at least one relax block saying when memory.high may be lowered again toward usage + headroom, e.g. relax { signal = \"memory.some.avg10\" below = \"0.5%%\" for = \"30s\" }.", b.Name)
	}
	if b.Min == nil {
		c.errorf(b.DefRange, "Missing required argument",
			"memory_high %q needs min, the lowest memory.high it may set (e.g. min = \"256MiB\"); there is no safe default.", b.Name)
	}
	if b.MaxBelowCurrent != nil && m.MaxBelowCurrent == 0 {
		c.errorf(b.MaxBelowCurrent.Expr.Range(), "Invalid size", "max_below_current must be above 0, or memory.high could never be lowered below usage.")
	}
	m.Limits = c.limits(governor.MemoryHigh, b.Min, b.Max, b.Cooldown, b.MaxPerMinute, defaultMemHighCooldown)
	c.claim(target, governor.MemoryHigh.String(), n, rangeOr(b.Target, b.DefRange))
	c.pol.MemHigh = append(c.pol.MemHigh, m)
}

var suppressKnobs = []governor.Knob{governor.CPUWeight, governor.CPUMax, governor.IOWeight}

func (c *compiler) suppress(b *suppressBlock) {
	n := c.controller("suppress", b.Name, b.NameRange, b.DefRange)
	target, _ := c.target(b.Target, n, true)
	s := governor.SuppressController{
		Name: b.Name, Origin: at(b.DefRange), Target: target,
		Trigger: c.trigger(n, b.When, b.Recover),
	}
	if len(b.Knobs) == 0 {
		c.errorf(b.DefRange, "Missing knob block",
			"suppress %q needs at least one knob block, e.g. knob \"cpu.weight\" { step = \"50%%\" min = 1 }.", b.Name)
	}
	// max_per_minute caps the controller as a whole (governor.Limits), so
	// every knob carries the same value.
	perMinute := c.count(b.MaxPerMinute)
	seen := map[governor.Knob]hcl.Range{}
	for _, kb := range b.Knobs {
		k, ok := c.knob(kb.Knob, kb.KnobRange, suppressKnobs, "suppress")
		if !ok {
			continue
		}
		if prev, dup := seen[k]; dup {
			c.errorf(kb.KnobRange, "Duplicate knob", "knob %q is already listed at %s.", kb.Knob, at(prev))
			continue
		}
		seen[k] = kb.DefRange
		sk := governor.SuppressKnob{
			Knob:   k,
			Step:   c.step(kb.Step, k, true, governor.Step{Percent: defaultSuppressStep}),
			Limits: c.limits(k, kb.Min, nil, kb.Cooldown, nil, defaultSuppressCooldown),
		}
		sk.Limits.MaxPerMinute = perMinute
		c.claim(target, k.String(), n, kb.DefRange)
		s.Knobs = append(s.Knobs, sk)
	}
	s.Blame, s.BlameMinShare = c.blame(b.Blame, b.BlameMinShare, "suppress", b.Name, target, s.Trigger)
	c.pol.Suppress = append(c.pol.Suppress, s)
}

// blameNames are blame's values, by governor.Blame.
var blameNames = []string{governor.BlameNone: "none", governor.BlamePreemption: "preemption"}

// blame compiles the blame and blame_min_share (a percentage, default 0%:
// any share) of a suppress or rule (kind) named name.
func (c *compiler) blame(blameAttr, minAttr *hcl.Attribute, kind0, name, target string, t governor.Trigger) (governor.Blame, float64) {
	kind := governor.BlameNone
	if blameAttr != nil {
		if s, ok := c.str(blameAttr); ok {
			found := false
			for i, n := range blameNames {
				if s == n {
					kind, found = governor.Blame(i), true
				}
			}
			if !found {
				c.errorf(blameAttr.Expr.Range(), "Invalid blame",
					"blame must be %q (squeeze only the members whose tasks preempted the suffering class's, in proportion to their share) or %q (every member alike, the default), not %q.%s",
					"preemption", "none", s, suggest(s, blameNames))
			}
		}
	}
	var share float64
	if minAttr != nil {
		if s, ok := c.scalar(minAttr); ok {
			v, err := parsePercent(s.text)
			if err == nil && (v < 0 || v > 100) {
				err = fmt.Errorf("%s is not between 0%% and 100%%", s.text)
			}
			if err != nil {
				c.errorf(minAttr.Expr.Range(), "Invalid blame_min_share", "blame_min_share: %v.", err)
			} else {
				share = v
			}
		}
		if kind == governor.BlameNone {
			c.errorf(minAttr.NameRange, "blame_min_share without blame",
				"blame_min_share is the smallest share of the preemptions that makes a member a culprit; it needs blame = \"preemption\" in %s %q.", kind0, name)
		}
	}
	if kind == governor.BlameNone {
		return kind, share
	}
	// The victims are the members of the classes the when conditions
	// read; without one there is no one to be blamed for.
	cpu := false
	victims := false
	for _, cond := range t.When {
		if cond.Scope != governor.ScopeClass || cond.Class == target {
			continue
		}
		victims = true
		if cond.Signal >= governor.CPUSomeAvg10 && cond.Signal <= governor.CPUFullStall ||
			cond.Signal >= governor.RunqP50 && cond.Signal <= governor.RunqPreemptedByOthers {
			cpu = true
		}
	}
	if !victims {
		c.errorf(blameAttr.NameRange, "blame without a suffering class",
			"blame = %q acts on the members of %q that preempted the suffering class's; %s %q's when conditions read no class other than %q (e.g. when { class = \"services\" signal = \"cpu.some.avg10\" above = \"10%%\" }).",
			kind, target, kind0, name, target)
	} else if !cpu {
		c.warnf(blameAttr.NameRange, "blame by preemption on a stall that is not CPU",
			"%s %q blames by CPU preemption, but its when conditions on other classes read no CPU or run-queue signal: the members acted on are those that preempted the suffering ones, whatever they suffer from.", kind0, name)
	}
	return kind, share
}

func (c *compiler) lastResort(b *lastResortBlock) {
	n := c.controller("last_resort", b.Name, b.NameRange, b.DefRange)
	target, _ := c.target(b.Target, n, true)
	l := governor.LastResortController{
		Name: b.Name, Origin: at(b.DefRange), Target: target,
		Trigger: c.trigger(n, b.When, b.Recover),
		Grace:   c.duration(b.Grace, defaultLastResortGrace),
		Kill:    c.boolean(b.Kill, false),
	}
	l.Rank = c.victimRank(b.Rank)
	l.Hook, l.HookTimeout = c.hook(b.Hook, b.HookTimeout)
	c.claim(target, writeFreeze, n, rangeOr(b.Target, b.DefRange))
	c.pol.LastResort = append(c.pol.LastResort, l)
}

// victimRank compiles last_resort's rank (default "memory").
func (c *compiler) victimRank(a *hcl.Attribute) governor.VictimRank {
	if a == nil {
		return governor.RankMemory
	}
	s, ok := c.str(a)
	if !ok {
		return governor.RankMemory
	}
	names := governor.RankNames[:]
	for i, n := range names {
		if s == n {
			return governor.VictimRank(i)
		}
	}
	c.errorf(a.Expr.Range(), "Invalid rank", "rank must be one of %s, not %q.%s",
		`"memory" (memory.current), "swap" (memory.swap.current) or "pressure" (memory.some.avg10)`, s, suggest(s, names))
	return governor.RankMemory
}

// hook compiles last_resort's hook (an argv list whose first element is an
// absolute path: no shell, no PATH search) and hook_timeout.
func (c *compiler) hook(a, timeout *hcl.Attribute) ([]string, time.Duration) {
	d := c.positiveDuration(timeout, governor.DefaultHookTimeout)
	if timeout != nil && d > governor.MaxHookTimeout {
		c.errorf(timeout.Expr.Range(), "hook_timeout too long",
			"hook_timeout is at most %s: the control loop waits for the hook (and systemd's watchdog for the loop).", governor.MaxHookTimeout)
		d = governor.MaxHookTimeout
	}
	if a == nil {
		if timeout != nil {
			c.errorf(timeout.NameRange, "hook_timeout without hook", "hook_timeout bounds the hook command; add hook = [\"/path/to/command\", ...] or remove it.")
		}
		return nil, 0
	}
	argv, rngs, ok := c.strList(a)
	if !ok {
		return nil, d
	}
	if len(argv) == 0 {
		c.errorf(a.Expr.Range(), "Empty hook", "hook is the command to run before freezing, as a list: [\"/usr/local/bin/notify\", \"arg\"]; remove it to run none.")
		return nil, d
	}
	if strings.ContainsAny(argv[0], " \t|;&$<>`") {
		c.errorf(rngs[0], "Hook command looks like a shell command line",
			"hook's first element is the program to run, not %q: it is run without a shell, so give the program and its arguments as separate list elements, e.g. [\"/usr/bin/logger\", \"-t\", \"governor\"].", argv[0])
		return nil, d
	}
	if !filepath.IsAbs(argv[0]) {
		c.errorf(rngs[0], "Hook command not an absolute path",
			"hook's first element is the program to run and must be an absolute path (no PATH search), not %q.", argv[0])
		return nil, d
	}
	return argv, d
}

// admission compiles the batch-admission verdict. Its conditions must read
// a class or the host: there is no acted-on cgroup.
func (c *compiler) admission(b *admissionBlock) {
	if c.pol.Admission != nil {
		c.errorf(b.DefRange, "Duplicate admission block",
			"Only one admission block is allowed across all policy files; the first is at %s.", c.pol.Admission.Origin)
		return
	}
	a := &governor.Admission{Origin: at(b.DefRange)}
	if len(b.When) == 0 {
		c.errorf(b.DefRange, "Missing when block", "admission needs at least one when block saying when the node stops accepting batch work.")
	}
	for _, list := range [][]*conditionBlock{b.When, b.Recover} {
		for _, cb := range list {
			if cb.Class == nil && !c.boolean(cb.Host, false) {
				c.errorf(cb.DefRange, "Missing scope", "A condition of the admission block must read a class (class = \"NAME\") or the host (host = true).")
			}
		}
	}
	a.Trigger = governor.Trigger{When: c.conditions(b.When, "when"), Recover: c.conditions(b.Recover, "recover")}
	c.pol.Admission = a
}

func (c *compiler) rule(b *ruleBlock) {
	n := c.controller("rule", b.Name, b.NameRange, b.DefRange)
	target, _ := c.target(b.Target, n, true)
	r := governor.Rule{
		Name: b.Name, Origin: at(b.DefRange), Target: target,
		Trigger: c.trigger(n, b.When, b.Recover),
	}
	knobOK := false
	if b.Knob == nil {
		c.errorf(b.DefRange, "Missing required argument", "rule %q needs knob, the cgroup file it changes (e.g. knob = \"cpu.weight\").", b.Name)
	} else if name, ok := c.str(b.Knob); ok {
		r.Knob, knobOK = c.knob(name, b.Knob.Expr.Range(), nil, "rule")
	}
	if b.Direction == nil {
		c.errorf(b.DefRange, "Missing required argument", "rule %q needs direction = \"down\" (tighten while active) or \"up\".", b.Name)
	} else if d, ok := c.str(b.Direction); ok {
		switch d {
		case "down":
			r.Down = true
		case "up":
		default:
			c.errorf(b.Direction.Expr.Range(), "Invalid direction", "direction must be \"down\" or \"up\", not %q.", d)
		}
	}
	if !knobOK {
		return
	}
	if b.Step == nil {
		c.errorf(b.DefRange, "Missing required argument", "rule %q needs step, e.g. step = \"20%%\" or an amount in %s's unit.", b.Name, r.Knob)
	}
	r.Step = c.step(b.Step, r.Knob, r.Down, governor.Step{})
	r.Limits = c.limits(r.Knob, b.Min, b.Max, b.Cooldown, b.MaxPerMinute, defaultRuleCooldown)
	r.Blame, r.BlameMinShare = c.blame(b.Blame, b.BlameMinShare, "rule", b.Name, target, r.Trigger)
	c.claim(target, r.Knob.String(), n, b.Knob.Range)
	c.pol.Rules = append(c.pol.Rules, r)
}

package governor

import (
	"errors"
	"io/fs"
	"time"
)

// Armer arms PSI triggers on cgroups (cgroup/ implements it over
// cgroup.Triggers). With one configured, the loop arms a trigger on every
// cgroup whose pressure a condition watches, so a Step runs as soon as the
// kernel sees the stall instead of at the next tick.
type Armer interface {
	Arm(cg Ref, resource string, full bool, stall, window time.Duration) error
	Disarm(id CgroupID)
}

// triggerWindow is the PSI trigger window the loop asks for: a multiple of
// 2 s works without CAP_SYS_RESOURCE.
const triggerWindow = 2 * time.Second

// defaultMaxTriggers bounds the file descriptors spent on triggers.
const defaultMaxTriggers = 256

// armSpec is one trigger to arm on each cgroup of a class.
type armSpec struct {
	resource string
	full     bool
	stall    time.Duration
}

var psiResources = [...]string{"cpu", "memory", "io"}

// watchSpecs derives, per class, the PSI triggers that wake the loop: one per
// rising pressure condition (Op Above on a PSI signal) that reads the class,
// or reads the acted-on cgroup of a controller targeting it. The stall is
// the threshold's share of the window (10% → 200 ms per 2 s), the lowest
// threshold per resource and line winning.
func watchSpecs(p *Policy, ctrls []controller) map[string][]armSpec {
	out := make(map[string][]armSpec)
	add := func(class string, c Condition) {
		if c.Op != Above || c.Signal > IOFullStall || c.Signal.Unit() != UnitPercent {
			return
		}
		res := psiResources[int(c.Signal)/8]
		full := int(c.Signal)%8 >= 4
		stall := time.Duration(c.Value / 100 * float64(triggerWindow))
		stall = max(stall, 10*time.Millisecond)
		specs := out[class]
		for i := range specs {
			if specs[i].resource == res && specs[i].full == full {
				specs[i].stall = min(specs[i].stall, stall)
				return
			}
		}
		out[class] = append(specs, armSpec{resource: res, full: full, stall: stall})
	}
	visit := func(target string, conds []Condition) {
		for _, c := range conds {
			switch c.Scope {
			case ScopeClass:
				add(c.Class, c)
			case ScopeSelf:
				add(target, c)
			}
		}
	}
	for _, c := range ctrls {
		if tr := c.trigger(); tr != nil {
			visit(c.target(), tr.t.When)
		}
	}
	if p.Admission != nil {
		visit("", p.Admission.Trigger.When)
	}
	return out
}

// arm arms the triggers a newly seen cgroup's class calls for.
func (l *Loop) arm(cg *cgState) {
	if l.cfg.Armer == nil || cg.class < 0 || cg.armTried {
		return
	}
	cg.armTried = true
	specs := l.watch[l.policy.Classes[cg.class].Name]
	if len(specs) == 0 {
		return
	}
	limit := l.cfg.MaxTriggers
	if limit <= 0 {
		limit = defaultMaxTriggers
	}
	if l.armed+len(specs) > limit {
		l.warnOnce("armer-limit", "PSI trigger limit reached; further cgroups are seen at the tick only", "limit", limit)
		return
	}
	for _, s := range specs {
		if err := l.cfg.Armer.Arm(cg.ref, s.resource, s.full, s.stall, triggerWindow); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrGone) {
				// Removed since the snapshot: the next Step forgets it.
				l.log.Debug("cgroup gone before its PSI trigger was armed", "cgroup", cg.ref.String())
				break
			}
			l.warnOnceCG(cg, "arm:"+s.resource, "cannot arm PSI trigger; relying on the tick", "cgroup", cg.ref.String(), "resource", s.resource, "error", err)
			continue
		}
		l.armed++
		cg.armed = true
		cg.nArmed++
	}
}

// disarm removes a cgroup's triggers.
func (l *Loop) disarm(cg *cgState) {
	if l.cfg.Armer == nil || !cg.armed {
		cg.armTried = false
		return
	}
	l.cfg.Armer.Disarm(cg.ref.ID)
	l.armed -= cg.nArmed
	cg.armed, cg.armTried, cg.nArmed = false, false, 0
}

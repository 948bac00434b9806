package governor

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Built-in admission thresholds, used when the policy has no Admission: the
// node stops accepting batch work when the host or any protected class has
// memory.some.avg10 above 10 % or cpu.some.avg10 above 20 % for 10 s, and
// accepts again once all of them have been below half of that for 30 s.
const (
	DefaultAdmissionMemory  = 10.0
	DefaultAdmissionCPU     = 20.0
	DefaultAdmissionFor     = 10 * time.Second
	DefaultAdmissionRecover = 30 * time.Second
)

// DefaultAdmission is the admission trigger used when a policy declares
// none: memory and CPU pressure of the host and of every protected class.
func DefaultAdmission(p *Policy) *Admission {
	subjects := []Condition{{Scope: ScopeHost}}
	for _, c := range p.Classes {
		if c.Protected {
			subjects = append(subjects, Condition{Scope: ScopeClass, Class: c.Name})
		}
	}
	a := &Admission{Origin: "built-in"}
	for _, s := range subjects {
		for _, lim := range []struct {
			sig Signal
			v   float64
		}{{MemorySomeAvg10, DefaultAdmissionMemory}, {CPUSomeAvg10, DefaultAdmissionCPU}} {
			w := s
			w.Origin, w.Signal, w.Op, w.Value, w.For = "built-in", lim.sig, Above, lim.v, DefaultAdmissionFor
			r := w
			r.Op, r.Value, r.For = Below, lim.v/2, DefaultAdmissionRecover
			a.Trigger.When = append(a.Trigger.When, w)
			a.Trigger.Recover = append(a.Trigger.Recover, r)
		}
	}
	return a
}

// AdmissionVerdict is the node's answer to batch schedulers: whether it
// accepts more batch work, why not, and how much headroom each condition
// has left.
type AdmissionVerdict struct {
	Accepting bool
	// Since is when the verdict last changed (the loop's start if never).
	Since time.Time
	// Reason names the conditions that stopped admission (subject, signal,
	// value against threshold), or, while recovering, what it waits for.
	Reason string
	// Origin is where the admission rule comes from ("file.hcl:12" or
	// "built-in").
	Origin     string
	Conditions []AdmissionCondition
}

// AdmissionCondition is one When condition of the admission trigger with
// its current value.
type AdmissionCondition struct {
	Subject   string // "host" or "class NAME"
	Signal    string
	Unit      string
	Op        string // ">" or "<"
	Value     float64
	Threshold float64
	For       time.Duration
	Present   bool // the signal was measured (a missing signal never holds)
	Holding   bool // the threshold is crossed now
	// Headroom is the distance from the current value to the threshold in
	// the signal's unit: positive while the condition does not hold.
	Headroom float64
}

// admission evaluates the admission trigger once per Step.
type admission struct {
	a       *Admission
	state   *triggerState
	verdict AdmissionVerdict
	// agg holds, per class, one sample with the highest value of every
	// signal among the class's cgroups: for admission a class is as
	// pressured as its worst member, for "below" too, so a recover
	// condition on a class holds only when every member is below.
	agg     map[string]*Sample
	members map[string][]*Sample
	present map[presentKey]bool
	host    Sample
	snap    Snapshot
	conds   []Condition
}

// newAdmission builds the admission state for a policy, keeping the verdict
// of prev (a reload does not flip it).
func newAdmission(p *Policy, prev *admission, now time.Time) *admission {
	a := p.Admission
	if a == nil {
		a = DefaultAdmission(p)
	}
	ad := &admission{
		a:       a,
		state:   newTriggerState(&a.Trigger),
		agg:     make(map[string]*Sample),
		members: make(map[string][]*Sample),
		present: make(map[presentKey]bool),
	}
	ad.verdict = AdmissionVerdict{Accepting: true, Since: now, Origin: a.Origin}
	if prev != nil {
		ad.verdict.Accepting, ad.verdict.Since, ad.verdict.Reason = prev.verdict.Accepting, prev.verdict.Since, prev.verdict.Reason
		ad.state.active = !prev.verdict.Accepting
		ad.state.changedAt = prev.verdict.Since
	}
	return ad
}

// view returns the view admission conditions are evaluated against: the
// Step's, with each class reduced to one sample holding its worst member's
// values. A signal that is not measured at all (an empty class, a host
// without PSI) counts as zero, so it never blocks admission and never keeps
// it from recovering; present records what was really measured.
func (ad *admission) view(v *View) *View {
	for k := range ad.members {
		delete(ad.members, k)
	}
	for k := range ad.present {
		delete(ad.present, k)
	}
	ad.host = Sample{}
	if v.Snap.Host != nil {
		ad.host = *v.Snap.Host
	}
	t := &ad.a.Trigger
	conds := append(append(ad.conds[:0], t.When...), t.Recover...)
	ad.conds = conds
	for _, c := range conds {
		if c.Scope != ScopeClass {
			if v.Snap.Host != nil && v.Snap.Host.Has.Has(c.Signal) {
				ad.present[presentKey{"", c.Signal}] = true
			} else {
				ad.host.Set(c.Signal, 0)
			}
			continue
		}
		s := ad.agg[c.Class]
		if s == nil {
			s = &Sample{}
			ad.agg[c.Class] = s
		}
		if _, done := ad.members[c.Class]; !done {
			*s = Sample{Ref: Ref{Path: "class " + c.Class}}
			ad.members[c.Class] = []*Sample{s}
		}
		// The worst member's value; the map is written once per
		// condition, not once per member (1,000 containers in a class
		// made this loop 2 % of the daemon's CPU).
		worst, present := 0.0, false
		if cur, has := s.Get(c.Signal); has {
			worst, present = cur, true
		}
		measured := false
		for _, m := range v.Members[c.Class] {
			x, ok := m.Get(c.Signal)
			if !ok {
				continue
			}
			measured = true
			if !present || x > worst {
				worst, present = x, true
			}
		}
		if measured {
			s.Set(c.Signal, worst)
			ad.present[presentKey{c.Class, c.Signal}] = true
		}
		if !s.Has.Has(c.Signal) {
			s.Set(c.Signal, 0)
		}
	}
	ad.snap = Snapshot{Time: v.Now, Host: &ad.host}
	return &View{Now: v.Now, Snap: &ad.snap, Members: ad.members}
}

type presentKey struct {
	class  string // "" for the host
	signal Signal
}

func subject(c *Condition) string {
	if c.Scope == ScopeClass {
		return "class " + c.Class
	}
	return "host"
}

// step re-evaluates the verdict.
func (ad *admission) step(l *Loop, v *View) {
	av := ad.view(v)
	t := &ad.a.Trigger
	// A condition on the acted-on cgroup has no meaning for the node:
	// evaluate it against the host.
	active, changed := ad.state.update(av, t, &ad.host)
	conds := make([]AdmissionCondition, len(t.When))
	var holding []string
	for i := range t.When {
		c := &t.When[i]
		k := presentKey{signal: c.Signal}
		if c.Scope == ScopeClass {
			k.class = c.Class
		}
		present := ad.present[k]
		x, crossed := av.evalCondition(c, &ad.host)
		crossed = crossed && present
		ac := AdmissionCondition{
			Subject: subject(c), Signal: c.Signal.Name(), Unit: c.Signal.Unit().String(), Op: c.Op.String(),
			Value: x, Threshold: c.Value, For: c.For, Present: present, Holding: crossed,
		}
		if c.Op == Above {
			ac.Headroom = c.Value - x
		} else {
			ac.Headroom = x - c.Value
		}
		conds[i] = ac
		if crossed {
			s := fmt.Sprintf("%s:%s=%s %s %s", ac.Subject, ac.Signal, formatSignal(c.Signal, x), c.Op, formatSignal(c.Signal, c.Value))
			if held := v.Now.Sub(ad.state.when[i].since); held > 0 {
				s += " for " + held.Round(time.Second).String()
			}
			holding = append(holding, s)
		}
	}
	vd := &ad.verdict
	vd.Conditions = conds
	vd.Origin = ad.a.Origin
	if changed {
		vd.Since = v.Now
	}
	vd.Accepting = !active
	switch {
	case active && len(holding) > 0:
		vd.Reason = strings.Join(holding, ", ")
	case active:
		vd.Reason = "recovering, waiting for: " + ad.state.describe(t, true)
	case len(holding) > 0:
		vd.Reason = "accepting; crossed but not yet for long enough: " + strings.Join(holding, ", ")
	default:
		vd.Reason = "no admission condition holds"
	}
	if changed {
		if active {
			l.log.Warn("admission: not accepting batch work", "why", vd.Reason, "origin", vd.Origin)
		} else {
			l.log.Info("admission: accepting batch work again", "recovered", ad.state.describe(t, true), "origin", vd.Origin)
		}
	}
}

func (ad *admission) copyVerdict() AdmissionVerdict {
	vd := ad.verdict
	vd.Conditions = append([]AdmissionCondition(nil), vd.Conditions...)
	return vd
}

// Admission returns the node's current admission verdict (see Do).
func (l *Loop) Admission(ctx context.Context) (AdmissionVerdict, error) {
	var vd AdmissionVerdict
	err := l.Do(ctx, func() { vd = l.adm.copyVerdict() })
	return vd, err
}

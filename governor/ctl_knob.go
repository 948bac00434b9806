package governor

import (
	"fmt"
	"strings"
	"time"
)

// knobCtl: generic rules and batch suppression. While the trigger is active
// each knob moves one step per cooldown toward its bound; once recovered it
// moves back one step per cooldown and is restored when it reaches its
// original value.

type knobMove struct {
	knob Knob
	down bool
	step Step
	lim  Limits
}

type knobCtl struct {
	ctlName string
	ctlKind string
	tgt     string
	trig    *triggers
	knobs   []knobMove
	rate    *rateLimit
}

func (c *knobCtl) kind() string { return c.ctlKind }

func (c *knobCtl) trigger() *triggers { return c.trig }

func (c *knobCtl) reads(class string) bool {
	return condsRead(class, c.trig.t.When, c.trig.t.Recover)
}

func (c *knobCtl) next(l *Loop, cg *cgState) string {
	ts := c.trig.state(cg.ref.ID)
	var out []string
	for i := range c.knobs {
		km := &c.knobs[i]
		next, release, ok := c.proposal(l, cg, ts, km)
		switch {
		case !ok && ts.active:
			out = append(out, km.knob.String()+": nothing (at its bound, or not available)")
		case !ok:
			out = append(out, km.knob.String()+": nothing while the trigger is inactive")
		case release:
			out = append(out, km.knob.String()+": restore the original value")
		default:
			out = append(out, fmt.Sprintf("%s: set to %s", km.knob, km.knob.FormatValue(next)))
		}
	}
	return strings.Join(out, "; ")
}

func (c *knobCtl) name() string { return c.ctlName }

func (c *knobCtl) target() string { return c.tgt }

func (c *knobCtl) forget(id CgroupID) {
	c.trig.forget(id)
}

func (c *knobCtl) needs() needs {
	n := needs{}
	seen := map[string]bool{}
	for _, k := range c.knobs {
		if ctl := k.knob.Controller(); !seen[ctl] {
			seen[ctl] = true
			n.controllers = append(n.controllers, ctl)
		}
	}
	return n
}

func (c *knobCtl) observe(l *Loop, v *View) {
	if !c.trig.perCG {
		if active, changed := c.trig.global.update(v, c.trig.t, nil); changed {
			c.logTransition(l, active, c.trig.global, "")
		}
		c.logSelfInflicted(l, v.Now, c.trig.global)
		return
	}
	for _, s := range v.Members[c.tgt] {
		ts := c.trig.state(s.ID)
		if active, changed := ts.update(v, c.trig.t, s); changed {
			c.logTransition(l, active, ts, s.Ref.String())
		}
		c.logSelfInflicted(l, v.Now, ts)
	}
}

// logSelfInflicted says once per episode that a condition did not hold
// because the stall it saw was of the suffering cgroup's own making.
func (c *knobCtl) logSelfInflicted(l *Loop, now time.Time, ts *triggerState) {
	if why := ts.selfInflictedNews(now); why != "" {
		l.log.Info("not acting on "+c.tgt+": the stall is self-inflicted", "controller", c.ctlName, "why", why)
	}
}

// wants: while the trigger is active, each knob it may move and the
// governor does not hold (a held knob's value is what it wrote).
func (c *knobCtl) wants(l *Loop, v *View, w *wants) {
	if !c.trig.perCG && !c.trig.global.active {
		return
	}
	for _, s := range v.Members[c.tgt] {
		if !c.trig.state(s.ID).active {
			continue
		}
		cg := l.cgs[s.ID]
		for i := range c.knobs {
			k := c.knobs[i].knob
			if l.managedBy(cg, k) == nil && l.mayTouch(cg, k) {
				w.knob(cg, k)
			}
		}
	}
}

func (c *knobCtl) decide(l *Loop, v *View) []Intent {
	var out []Intent
	for _, s := range v.Members[c.tgt] {
		cg := l.cgs[s.ID]
		ts := c.trig.state(s.ID)
		for i := range c.knobs {
			if in, ok := c.move(l, v.Now, cg, ts, &c.knobs[i]); ok {
				out = append(out, in)
			}
		}
	}
	return out
}

func (c *knobCtl) logTransition(l *Loop, active bool, ts *triggerState, cgroup string) {
	args := []interface{}{"controller", c.ctlName, "target", c.tgt}
	if cgroup != "" {
		args = append(args, "cgroup", cgroup)
	}
	if active {
		l.log.Info("trigger active", append(args, "because", ts.describe(c.trig.t, false))...)
	} else {
		l.log.Info("trigger recovered; giving limits back step by step", append(args, "because", ts.describe(c.trig.t, true))...)
	}
}

func (c *knobCtl) move(l *Loop, now time.Time, cg *cgState, ts *triggerState, km *knobMove) (Intent, bool) {
	k := km.knob
	if m := l.managedBy(cg, k); m != nil && (m.owner != c.ctlName || (km.lim.Cooldown > 0 && now.Sub(m.changed) < km.lim.Cooldown)) {
		return Intent{}, false
	}
	next, release, ok := c.proposal(l, cg, ts, km)
	if !ok {
		return Intent{}, false
	}
	in := Intent{Kind: IntentWrite, Controller: c.ctlName, Rule: c.ctlKind, Cgroup: cg.ref, Knob: k, Value: next}
	if release {
		in.Kind, in.Value, in.Reason = IntentRestore, 0, "recovered: "+ts.describe(c.trig.t, true)
		return in, true
	}
	if ts.active && !c.rate.allow(now) {
		l.warnOnce("rate:"+c.ctlName, "rate cap reached; skipping actions this minute", "controller", c.ctlName, "max_per_minute", km.lim.MaxPerMinute)
		return Intent{}, false
	}
	in.Reason = ts.describe(c.trig.t, false)
	if !ts.active {
		in.Reason = "recovered: " + ts.describe(c.trig.t, true)
	}
	return in, true
}

// proposal computes the knob's next value: one step toward the bound while
// the trigger is active; once recovered, one step back toward the original
// (a step of the original's size, so a long squeeze is undone in a few
// steps) and finally the original itself (release).
func (c *knobCtl) proposal(l *Loop, cg *cgState, ts *triggerState, km *knobMove) (next int64, release, ok bool) {
	k := km.knob
	m := l.managedBy(cg, k)
	if m != nil && m.owner != c.ctlName {
		return 0, false, false
	}
	lo := max(km.lim.Min, hardFloor(k))
	hi := km.lim.Max
	if hi <= 0 {
		hi = Unlimited
	}
	hi = min(hi, hardCeil(k))
	if ts.active {
		if !l.mayTouch(cg, k) {
			return 0, false, false
		}
		cur, ok := l.current(cg, k)
		if !ok {
			return 0, false, false
		}
		from := cur
		if cur == Unlimited {
			if from = l.base(cg, k); from == 0 {
				return 0, false, false
			}
		}
		if km.down {
			next = clamp(from-stepSize(km.step, from), lo, hi)
			return next, false, next < cur
		}
		if from > Unlimited-stepSize(km.step, from) {
			next = Unlimited
		} else {
			next = clamp(from+stepSize(km.step, from), lo, hi)
		}
		return next, false, next > cur
	}
	if m == nil {
		return 0, false, false
	}
	orig := m.orig.Value
	ref := orig
	if orig == Unlimited {
		ref = l.base(cg, k)
	}
	d := stepSize(km.step, ref)
	if km.down {
		next = m.written + d
		return next, next >= ref || m.written >= orig, true
	}
	next = m.written - d
	return next, next <= orig, true
}

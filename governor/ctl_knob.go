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
	// blame, if set, squeezes only the culprits (blame.go); blameActive:
	// whether the trigger was active (for any member) at the last tick.
	blame       *blameState
	blameActive bool
}

// squeeze says whether member id is squeezed now, the factor of its step
// and, with blame, why.
func (c *knobCtl) squeeze(ts *triggerState, ref Ref) (bool, float64, string) {
	if !ts.active {
		return false, 0, ""
	}
	return c.blame.verdict(ref.ID, ref.String())
}

func (c *knobCtl) kind() string { return c.ctlKind }

func (c *knobCtl) trigger() *triggers { return c.trig }

func (c *knobCtl) reads(class string) bool {
	return condsRead(class, c.trig.t.When, c.trig.t.Recover)
}

func (c *knobCtl) next(l *Loop, cg *cgState) string {
	ts := c.trig.state(cg.ref.ID)
	sq, scale, why := c.squeeze(ts, cg.ref)
	var out []string
	if why != "" {
		out = append(out, "blame: "+why)
	}
	for i := range c.knobs {
		km := &c.knobs[i]
		next, release, ok := c.proposal(l, cg, sq, scale, km)
		switch {
		case !ok && sq:
			out = append(out, km.knob.String()+": nothing (at its bound, or not available)")
		case !ok && ts.active:
			out = append(out, km.knob.String()+": nothing (not a culprit)")
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
	defer c.observeBlame(l, v)
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

// observeBlame updates the culprits' shares after the triggers (blame.go)
// and says once, when it matters, that there is no data to blame with.
func (c *knobCtl) observeBlame(l *Loop, v *View) {
	if c.blame == nil {
		return
	}
	active := false
	if !c.trig.perCG {
		active = c.trig.global.active
	} else {
		for _, s := range v.Members[c.tgt] {
			if c.trig.state(s.ID).active {
				active = true
				break
			}
		}
	}
	c.blame.observe(v, blameVictims(v, c.trig.t, c.tgt, active), v.Members[c.tgt], active)
	if active && c.blame.noData {
		l.warnOnce("blame-nodata:"+c.ctlName, "no preemption data: squeezing the whole class",
			"controller", c.ctlName, "target", c.tgt, "blame", c.blame.kind.String())
	} else if active && !c.blameActive {
		l.log.Info("trigger active; blaming", "controller", c.ctlName, "target", c.tgt, "blame", c.blame.culprits(v.Snap))
	}
	c.blameActive = active
}

// blameSummary: the culprits, for status (with blame, while active).
func (c *knobCtl) blameSummary(snap *Snapshot) string {
	return c.blame.culprits(snap)
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
		if sq, _, _ := c.squeeze(c.trig.state(s.ID), s.Ref); !sq {
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
	sq, scale, why := c.squeeze(ts, cg.ref)
	next, release, ok := c.proposal(l, cg, sq, scale, km)
	if !ok {
		return Intent{}, false
	}
	in := Intent{Kind: IntentWrite, Controller: c.ctlName, Rule: c.ctlKind, Cgroup: cg.ref, Knob: k, Value: next}
	// Given back: recovered, or (with blame) no longer a culprit while
	// the trigger is still active.
	back := "recovered: " + ts.describe(c.trig.t, true)
	if ts.active && !sq {
		back = "blame: " + why + "; giving back while " + ts.describe(c.trig.t, false)
	}
	if release {
		in.Kind, in.Value, in.Reason = IntentRestore, 0, back
		return in, true
	}
	if sq && !c.rate.allow(now) {
		l.warnOnce("rate:"+c.ctlName, "rate cap reached; skipping actions this minute", "controller", c.ctlName, "max_per_minute", km.lim.MaxPerMinute)
		return Intent{}, false
	}
	in.Reason = back
	if sq {
		in.Reason = ts.describe(c.trig.t, false)
		if why != "" {
			in.Reason += "; blame: " + why
		}
	}
	return in, true
}

// proposal computes the knob's next value: one step toward the bound while
// the member is squeezed (the trigger is active and, with blame, it is a
// culprit; scale is the step's factor, see scaledStep); otherwise, one
// step back toward the original (a step of the original's size, so a long
// squeeze is undone in a few steps) and finally the original itself
// (release).
func (c *knobCtl) proposal(l *Loop, cg *cgState, squeeze bool, scale float64, km *knobMove) (next int64, release, ok bool) {
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
	if squeeze {
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
		d := scaledStep(km.step, from, scale)
		if km.down {
			next = clamp(from-d, lo, hi)
			return next, false, next < cur
		}
		if from > Unlimited-d {
			next = Unlimited
		} else {
			next = clamp(from+d, lo, hi)
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

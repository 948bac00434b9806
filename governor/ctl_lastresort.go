package governor

import (
	"fmt"
	"time"
)

// lastResortCtl: freeze the worst cgroup of a class, kill it after a grace
// period if the trigger still holds, thaw it if the trigger recovers.

type lastResortCtl struct {
	c      *LastResortController
	trig   *triggers
	victim *cgState
	since  time.Time
	quiet  time.Time // no new victim before this
	cands  []candidate
}

func (r *lastResortCtl) name() string { return r.c.Name }

func (r *lastResortCtl) target() string { return r.c.Target }

func (r *lastResortCtl) forget(id CgroupID) {
	r.trig.forget(id)
	if r.victim != nil && r.victim.ref.ID == id {
		r.victim = nil
	}
}

func (r *lastResortCtl) needs() needs { return needs{freeze: true} }

func (r *lastResortCtl) kind() string { return "last_resort" }

func (r *lastResortCtl) trigger() *triggers { return r.trig }

func (r *lastResortCtl) reads(class string) bool {
	return condsRead(class, r.c.Trigger.When, r.c.Trigger.Recover)
}

func (r *lastResortCtl) next(l *Loop, cg *cgState) string {
	if r.victim != nil && r.victim.ref.ID == cg.ref.ID {
		if r.c.Kill {
			return fmt.Sprintf("frozen; killed at %s unless the trigger recovers", r.since.Add(r.c.Grace).Format(time.RFC3339))
		}
		return "frozen until the trigger recovers"
	}
	return fmt.Sprintf("freeze the cgroup of the class with the largest %s (preferred ones first, avoided ones last) when the trigger is active", r.c.Rank.Signal().Name())
}

func (r *lastResortCtl) observe(l *Loop, v *View) {
	r.cands = r.cands[:0]
	if !r.trig.perCG {
		if active, changed := r.trig.global.update(v, r.trig.t, nil); changed && active {
			l.log.Warn("last-resort trigger active", "controller", r.c.Name, "because", r.trig.global.describe(r.trig.t, false))
		}
	}
	for _, s := range v.Members[r.c.Target] {
		ts := r.trig.state(s.ID)
		if r.trig.perCG {
			ts.update(v, r.trig.t, s)
		}
		cg := l.cgs[s.ID]
		if r.handedBack(cg, ts) {
			continue
		}
		if !ts.active || !s.Populated || !l.allowed(cg) {
			continue
		}
		r.cands = append(r.cands, candidate{cg: cg, ts: ts})
	}
}

// choosing reports whether decide will choose a victim this tick.
func (r *lastResortCtl) choosing(now time.Time) bool {
	return r.victim == nil && len(r.cands) > 0 && !now.Before(r.quiet)
}

// wants: the candidates' victim hints, when a victim is to be chosen.
func (r *lastResortCtl) wants(_ *Loop, v *View, w *wants) {
	if r.choosing(v.Now) {
		w.hints = append(w.hints, r.cands)
	}
}

func (r *lastResortCtl) decide(l *Loop, v *View) []Intent {
	if r.victim != nil {
		if in, ok := r.decideVictim(l, v); ok {
			return []Intent{in}
		}
		return nil
	}
	if !r.choosing(v.Now) {
		return nil
	}
	ch := chooseVictim(r.c.Rank, r.cands)
	next := "stays frozen until it recovers (kill = false)"
	if r.c.Kill {
		next = "killed after " + r.c.Grace.String() + " unless it recovers"
	}
	reason := fmt.Sprintf("last resort (%s): %s; %s", ch.describe(r.c.Rank, len(r.cands)), ch.ts.describe(r.trig.t, false), next)
	return []Intent{{Kind: IntentFreeze, Controller: r.c.Name, Rule: "last_resort", Cgroup: ch.cg.ref, Reason: reason}}
}

// decideVictim: thaw the frozen victim once the trigger recovers, kill it
// once the grace has passed.
func (r *lastResortCtl) decideVictim(l *Loop, v *View) (Intent, bool) {
	if l.cgs[r.victim.ref.ID] == nil || l.frozen[r.victim.ref.ID] == nil {
		// Gone, or thawed by someone else (checkManaged handed it back):
		// this episode neither kills nor freezes it again.
		r.victim = nil
		return Intent{}, false
	}
	ts := r.trig.state(r.victim.ref.ID)
	in := Intent{Controller: r.c.Name, Rule: "last_resort", Cgroup: r.victim.ref}
	switch {
	case !ts.active:
		in.Kind, in.Reason = IntentThaw, "recovered: "+ts.describe(r.trig.t, true)
		return in, true
	case r.c.Kill && v.Now.Sub(r.since) >= r.c.Grace:
		in.Kind, in.Since = IntentKill, r.since
		in.Reason = "frozen " + v.Now.Sub(r.since).String() + " and still " + ts.describe(r.trig.t, false)
		return in, true
	}
	return Intent{}, false
}

// applied is what apply reports back: the victim frozen at, the thaw or
// kill done.
func (r *lastResortCtl) applied(in *Intent, ok bool, at time.Time, cg *cgState) {
	switch in.Kind {
	case IntentFreeze:
		if ok {
			// The grace runs from the freeze, not from the step's start:
			// the hook may have taken seconds since.
			r.victim, r.since = cg, at
		}
	case IntentThaw:
		r.victim = nil
	case IntentKill:
		if ok {
			r.victim = nil
			r.quiet = at.Add(r.c.Grace)
		}
	}
}

// handedBack reports whether cg was thawed (or found frozen) by someone
// else during this trigger episode: then it is neither frozen nor killed.
// The mark goes once the trigger is quiet for it (inactive, no condition
// holding), so a reload, which restarts the trigger state, does not end
// the episode while its conditions still hold.
func (r *lastResortCtl) handedBack(cg *cgState, ts *triggerState) bool {
	if !cg.freezeBack {
		return false
	}
	if !ts.active {
		quiet := true
		for i := range ts.when {
			if !ts.when[i].since.IsZero() {
				quiet = false
			}
		}
		if quiet {
			cg.freezeBack = false
			return false
		}
	}
	return true
}

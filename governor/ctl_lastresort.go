package governor

import (
	"context"
	"errors"
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

func (r *lastResortCtl) step(ctx context.Context, l *Loop, v *view) {
	var cands []candidate
	if !r.trig.perCG {
		if active, changed := r.trig.global.update(v, r.trig.t, nil); changed && active {
			l.log.Warn("last-resort trigger active", "controller", r.c.Name, "because", r.trig.global.describe(r.trig.t, false))
		}
	}
	for _, s := range v.members[r.c.Target] {
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
		cands = append(cands, candidate{cg: cg, ts: ts})
	}

	if r.victim != nil {
		if l.cgs[r.victim.ref.ID] == nil {
			r.victim = nil
			return
		}
		ts := r.trig.state(r.victim.ref.ID)
		f := l.frozen[r.victim.ref.ID]
		if f == nil {
			// Thawed by someone else (checkManaged handed it back): this
			// episode neither kills nor freezes it again.
			r.victim = nil
			return
		}
		switch {
		case !ts.active:
			l.thaw(ctx, f, "recovered: "+ts.describe(r.trig.t, true))
			r.victim = nil
		case r.c.Kill && v.now.Sub(r.since) >= r.c.Grace:
			err := l.exec(ctx, effect{kind: effKill, cg: r.victim, owner: r.c.Name})
			if errors.Is(err, errRefused) {
				return // not recorded: stays frozen, tried again next tick
			}
			l.result.Actions++
			if err != nil {
				l.result.Errors++
				l.emit(Action{Controller: r.c.Name, Cgroup: r.victim.ref, Kind: "kill", Knob: "cgroup.kill", New: "1", Err: err})
				return
			}
			l.emit(Action{Controller: r.c.Name, Cgroup: r.victim.ref, Kind: "kill", Knob: "cgroup.kill", New: "1", Reason: "frozen " + v.now.Sub(r.since).String() + " and still " + ts.describe(r.trig.t, false)})
			l.thaw(ctx, f, "killed; thawing the empty cgroup")
			r.victim = nil
			r.quiet = v.now.Add(r.c.Grace)
		}
		return
	}
	if len(cands) == 0 || v.now.Before(r.quiet) {
		return
	}
	ch := l.chooseVictim(r.c.Rank, cands)
	worst := ch.cg
	next := "stays frozen until it recovers (kill = false)"
	if r.c.Kill {
		next = "killed after " + r.c.Grace.String() + " unless it recovers"
	}
	reason := fmt.Sprintf("last resort (%s): %s; %s", ch.describe(r.c.Rank, len(cands)), ch.ts.describe(r.trig.t, false), next)
	if out := l.runHook(ctx, r.c, worst.ref, reason); out != "" {
		reason += "; " + out
	}
	if l.freeze(ctx, worst, r.c.Name, reason) {
		// The grace runs from the freeze, not from the step's start: the
		// hook may have taken seconds since.
		r.victim, r.since = worst, l.clock.Now()
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

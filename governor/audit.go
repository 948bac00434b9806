package governor

import (
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LogAction logs one action as the single line the daemon writes for it:
// what (controller, cgroup, knob, old and new value, kind), why (the signal
// values against thresholds) and when (at, RFC 3339 in UTC). The fields
// lead with controller, cgroup and knob so a grep for
// "action: controller=X cgroup=Y knob=Z" finds it. Freezes, kills and
// hand-backs are warnings, failures errors (a failure that repeats the
// knob's previous one, Repeat, at debug); in dry-run the message says
// the action would have been taken.
func LogAction(log hclog.Logger, a Action) {
	args := []interface{}{
		"controller", a.Controller, "cgroup", a.Cgroup.String(), "knob", a.Knob, "old", a.Old, "new", a.New,
		"kind", a.Kind, "why", a.Reason, "cgroup_id", uint64(a.Cgroup.ID), "dry_run", a.DryRun,
		"at", a.Time.UTC().Format(time.RFC3339Nano),
	}
	if r := a.Reclaim; r != nil {
		args = append(args, reclaimArgs(r)...)
	}
	msg := "action"
	if a.DryRun {
		msg = "would act (dry-run: nothing written)"
	}
	switch {
	case a.Err != nil && a.Repeat:
		log.Debug(msg+" failed again", append(args, "error", a.Err.Error())...)
	case a.Err != nil:
		log.Error(msg+" failed", append(args, "error", a.Err.Error())...)
	case a.Kind == "freeze" || a.Kind == "kill" || a.Kind == "hand-back":
		log.Warn(msg, args...)
	default:
		log.Info(msg, args...)
	}
}

// reclaimArgs are a reclaim's measured result for its audit line:
// requested and reclaimed bytes and the efficiency (pages reclaimed per
// page scanned, memory.stat pgsteal/pgscan) — "unmeasured" where the
// loop could not read the cgroup's memory accounting (or in dry-run).
func reclaimArgs(r *ReclaimResult) []interface{} {
	args := []interface{}{"requested", FormatBytes(r.Requested)}
	if !r.Measured {
		return append(args, "reclaimed", "unmeasured")
	}
	args = append(args, "reclaimed", FormatBytes(r.Reclaimed))
	if r.Refaulted > 0 {
		args = append(args, "refaulted", FormatBytes(r.Refaulted))
	}
	if e := r.Efficiency(); e >= 0 {
		args = append(args, "efficiency", strconv.FormatFloat(e, 'f', 2, 64))
	} else {
		args = append(args, "efficiency", "nothing scanned")
	}
	return args
}

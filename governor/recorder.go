package governor

import "time"

// Recorder receives what the loop saw and did (the flight recorder,
// governor/record). All its methods are called on the loop's goroutine and
// must not block for long: a recorder that cannot keep up drops its own
// data, never the loop's tick.
type Recorder interface {
	// Action is called for every action, as Config.OnAction is.
	Action(Action)
	// Tick is called once at the end of every Step that sampled. t and
	// everything it points to are valid only during the call.
	Tick(t *TickRecord)
}

// TickRecord is one Step as the loop saw it: the whole snapshot (host and
// every cgroup the sources found, in the order they were found) and the
// state of every controller (global triggers' activity and why).
type TickRecord struct {
	Time        time.Time
	Snap        *Snapshot
	Controllers []ControllerStatus
}

// recordTick hands the tick to Config.Recorder.
func (l *Loop) recordTick() {
	l.cfg.Recorder.Tick(&TickRecord{Time: l.snap.Time, Snap: &l.snap, Controllers: l.statusHead().Controllers})
}

// teeActions makes on (which may be nil) also pass every action to r.
func teeActions(r Recorder, on func(Action)) func(Action) {
	return func(a Action) {
		r.Action(a)
		if on != nil {
			on(a)
		}
	}
}

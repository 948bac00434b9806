package governor

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Blame-directed suppression (suppress { blame = "preemption" }).
//
// A uniform suppress squeezes every member of its target class while
// another class suffers. With blame it squeezes only the culprits: the
// target's members whose tasks preempted the suffering members' runnable
// tasks, as the BPF sensor counts them (Sample.PreemptedBy, and the
// signal RunqPreemptedByOthers for all preemptions by others).
//
// Victims, at each tick: the members of the classes the when conditions
// read (other than the target) whose reading crosses the condition's
// threshold, leaving out a member whose stall is self-inflicted (as
// evalGuarded does). While the trigger is active but no member crosses any
// more (it holds on until recover, or for the conditions' duration), every
// member of those classes is a victim.
//
// Shares are smoothed over the last blameWindow ticks: a culprit's share is
// the sum over those ticks of its preemptions per second of the tick's
// victims, divided by the sum of all their preemptions per second by other
// cgroups (RunqPreemptedByOthers: self-preemption and the CPU going idle
// are not counted; preemptors beyond the MaxPreemptors a sample lists still
// are, so a share is never overstated). A culprit therefore does not drop
// out, and come back, with one quiet or busy tick. Counts are per cgroup,
// so a member stands for its subtree: a victim member's preemptions are
// those of every cgroup at or below it (less those among its own
// subtree), and a preemptor counts for the nearest target member at or
// above it (see observe).
//
// Each tick's decision: a member is squeezed while the trigger is active
// and its share is above zero and at least the minimum share. Its step is
// the knob's step × share / the biggest share among the target's members
// (rounded to a whole value of the knob's unit, at least 1 and at most
// the full step), so the biggest culprit moves a full step. A member
// that is not (or no longer) a culprit is given back as after recovery:
// one full step per cooldown until its original value.
//
// Except a culprit held back by the squeeze: squeezing a culprit takes
// away the very preemptions that blamed it, so its share falls because
// the squeeze works, not because it stopped. Were it given back, it would
// preempt again, be blamed again and squeezed again, over and over (seen
// in the VM scenario blame: the culprits went from 0.1 CPU back to 1.1
// every few seconds). Nor should its step shrink with it: the culprit
// squeezed the hardest loses its preemptions first, and its step fell
// below the others' (seen: the bigger culprit, 40% at first, at 10% and
// step × 0.53 within 8 s, its cpu.weight then coming down one unit per
// cooldown). So a member that was a culprit in this episode (since the
// trigger became active) keeps the biggest share it had in the episode
// while its share now is smaller and its own tasks are held back: its
// cpu.max throttles it (cpu.throttled >= 5%) or its tasks wait for CPU
// (cpu.some.stall >= 10%). That share counts for the biggest share too.
// A culprit not held back has its share now; one that stops working is
// not held back, and below the minimum share it is given back as above.
// The episode ends when the trigger goes inactive.
//
// Without preemption data (no cgroup at or below a victim has the signal
// RunqPreemptedByOthers over the window: no BPF sensor, e.g. --no-bpf) the controller squeezes the whole class as
// without blame, says so once in the log and in explain.

// blameWindow is how many ticks shares are smoothed over.
const blameWindow = 5

// A culprit's own tasks are held back by the squeeze (see above) when its
// cpu.max throttles it at least heldThrottledMin percent of the time or
// they wait for CPU at least heldStallMin percent.
const (
	heldThrottledMin = selfThrottledMin
	heldStallMin     = 10.0
)

// blameTick is one tick's preemptions of the victims.
type blameTick struct {
	by    map[CgroupID]float64 // target member -> its subtree's preemptions/s of the victims
	total float64              // all preemptions/s of the victims by others
	data  bool                 // some cgroup at or below a victim had preemption data
}

// blameState is a blaming controller's view of who is to blame.
type blameState struct {
	kind     Blame
	minShare float64 // fraction 0..1
	ring     [blameWindow]blameTick
	n        int // ticks recorded so far (capped at blameWindow)
	at       int // next slot

	// The result of the last observe.
	noData   bool                 // no preemption data over the window: uniform
	share    map[CgroupID]float64 // target members with a share > 0
	maxShare float64
	victims  []string // the last tick's victims (paths), for reasons

	// culprit: this episode's culprits, each with the biggest share it
	// had in the episode; held: those among them whose share now is below
	// it but who keep it (held back by the squeeze), with their share now.
	culprit map[CgroupID]float64
	held    map[CgroupID]float64
}

func newBlameState(kind Blame, minSharePercent float64) *blameState {
	if kind == BlameNone {
		return nil
	}
	return &blameState{kind: kind, minShare: minSharePercent / 100, noData: true}
}

// victims returns the members that suffer this tick (see above) and the
// classes read.
func blameVictims(v *View, t *Trigger, target string, active bool) []*Sample {
	var out []*Sample
	seen := map[CgroupID]bool{}
	var classes []string
	for i := range t.When {
		c := &t.When[i]
		if c.Scope != ScopeClass || c.Class == target {
			continue
		}
		classes = append(classes, c.Class)
		for _, m := range v.Members[c.Class] {
			y, ok := m.Get(c.Signal)
			if !ok || seen[m.ID] {
				continue
			}
			if (c.Op == Above && !(y > c.Value)) || (c.Op == Below && !(y < c.Value)) {
				continue
			}
			if _, out := v.leftOut(m, c.Signal, y, true); out {
				continue
			}
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	if len(out) == 0 && active {
		for _, cl := range classes {
			for _, m := range v.Members[cl] {
				if !seen[m.ID] && !v.isGovernor(m) {
					seen[m.ID] = true
					out = append(out, m)
				}
			}
		}
	}
	return out
}

// observe records the tick's preemptions of victims and recomputes the
// shares of target's members; active: whether the trigger is active (an
// inactive trigger ends the episode: its culprits are forgotten).
//
// Preemption counts are per cgroup, not per subtree: a victim member's
// count is that of every cgroup at or below it (the nearest victim member
// above a cgroup takes it), less preemptions among its own subtree's
// cgroups (they are its own doing, as self-preemption is); a preemptor
// counts for the nearest member of the target at or above it (a slice is
// blamed for its jobs).
func (b *blameState) observe(v *View, victims []*Sample, members []*Sample, active bool) {
	tk := blameTick{by: map[CgroupID]float64{}}
	names := make([]string, 0, len(victims))
	victimAt := make(map[string]*Sample, len(victims))
	for _, s := range victims {
		victimAt[s.Path] = s
		names = append(names, s.Ref.String())
	}
	memberAt := make(map[string]*Sample, len(members))
	for _, m := range members {
		memberAt[m.Path] = m
	}
	if len(victims) > 0 {
		for _, s := range v.Snap.Cgroups {
			vm := nearest(victimAt, s.Path)
			if vm == nil {
				continue
			}
			tot, ok := s.Get(RunqPreemptedByOthers)
			if !ok {
				continue
			}
			tk.data = true
			var inside float64
			for _, p := range s.PreemptedBy {
				if p.Cgroup == 0 || p.Cgroup == s.ID {
					continue
				}
				ps := v.Snap.Lookup(p.Cgroup)
				if ps == nil {
					continue // gone: nobody's to blame, still in the total
				}
				if m := nearest(memberAt, ps.Path); m != nil {
					tk.by[m.ID] += p.PerSecond
				} else if within(ps.Path, vm.Path) {
					inside += p.PerSecond
				}
			}
			tk.total += max(tot-inside, 0)
		}
		b.victims = names
	}
	b.ring[b.at] = tk
	b.at = (b.at + 1) % blameWindow
	b.n = min(b.n+1, blameWindow)

	var total float64
	by := map[CgroupID]float64{}
	data := false
	for i := 0; i < b.n; i++ {
		t := &b.ring[i]
		data = data || t.data
		total += t.total
		for id, x := range t.by {
			by[id] += x
		}
	}
	b.noData = !data
	b.share = map[CgroupID]float64{}
	b.held = map[CgroupID]float64{}
	b.maxShare = 0
	if !active || b.culprit == nil {
		b.culprit = map[CgroupID]float64{}
	}
	for _, m := range members {
		sh := 0.0
		if x := by[m.ID]; x > 0 && total > 0 {
			sh = min(x/total, 1)
		}
		peak, was := b.culprit[m.ID]
		switch {
		case was && sh < peak && heldBack(m):
			// Held back by the squeeze: its episode's biggest share.
			b.held[m.ID] = sh
			sh = peak
		case sh > 0 && sh >= b.minShare:
			if active {
				b.culprit[m.ID] = max(peak, sh)
			}
		case was:
			delete(b.culprit, m.ID)
		}
		if sh > 0 {
			b.share[m.ID] = sh
			b.maxShare = max(b.maxShare, sh)
		}
	}
}

// heldBack reports whether a member's own tasks are held back: throttled
// by its cpu.max or waiting for CPU (heldThrottledMin, heldStallMin).
func heldBack(m *Sample) bool {
	if thr, ok := m.Get(CPUThrottled); ok && thr >= heldThrottledMin {
		return true
	}
	stall, ok := m.Get(CPUSomeStall)
	return ok && stall >= heldStallMin
}

// nearest returns the sample in at whose path is path or its nearest
// ancestor, or nil.
func nearest(at map[string]*Sample, path string) *Sample {
	for {
		if s := at[path]; s != nil {
			return s
		}
		if path == "" {
			return nil
		}
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
	}
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return dir == "" || path == dir || strings.HasPrefix(path, dir) && path[len(dir)] == '/'
}

// verdict says whether member id is squeezed while the trigger is active,
// the factor its step is scaled by, and why (for reasons and explain).
func (b *blameState) verdict(id CgroupID, path string) (squeeze bool, scale float64, why string) {
	if b == nil {
		return true, 1, ""
	}
	if b.noData {
		return true, 1, "no preemption data: squeezing the whole class"
	}
	sh := b.share[id]
	of := b.victimsText()
	switch {
	case sh <= 0:
		return false, 0, fmt.Sprintf("%s is not a culprit: 0%% of %s", path, of)
	case sh < b.minShare:
		return false, 0, fmt.Sprintf("%s is not a culprit: %s of %s, below blame_min_share %s", path, pct(sh), of, pct(b.minShare))
	}
	scale = sh / b.maxShare
	held := ""
	if now, ok := b.held[id]; ok {
		held = fmt.Sprintf("; %s now, held back by the squeeze", pct(now))
	}
	return true, scale, fmt.Sprintf("%s: %s of %s (step × %.2f%s)", path, pct(sh), of, scale, held)
}

// victimsText: "web.service's preemptions by others" or "the preemptions
// by others of a, b and 3 more".
func (b *blameState) victimsText() string {
	const most = 3
	v := b.victims
	switch len(v) {
	case 0:
		return "the victims' preemptions by others"
	case 1:
		return v[0] + "'s preemptions by others"
	}
	names := v
	extra := ""
	if len(v) > most {
		names, extra = v[:most], fmt.Sprintf(" and %d more", len(v)-most)
	}
	return "the preemptions by others of " + strings.Join(names, ", ") + extra
}

// culprits renders the culprits and their shares, biggest first, for
// status ("batch.slice/job3 71%, batch.slice/job1 12%").
func (b *blameState) culprits(snap *Snapshot) string {
	if b == nil {
		return ""
	}
	if b.noData {
		return "no preemption data: squeezing the whole class"
	}
	type cs struct {
		id CgroupID
		sh float64
	}
	var list []cs
	for id, sh := range b.share {
		if sh >= b.minShare {
			list = append(list, cs{id, sh})
		}
	}
	if len(list) == 0 {
		return "no culprit: no member has blame_min_share " + pct(b.minShare) + " or more of " + b.victimsText()
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].sh != list[j].sh {
			return list[i].sh > list[j].sh
		}
		return list[i].id < list[j].id
	})
	parts := make([]string, len(list))
	for i, c := range list {
		name := fmt.Sprintf("cgroup %d", c.id)
		if s := snap.Lookup(c.id); s != nil {
			name = s.Ref.String()
		}
		parts[i] = name + " " + pct(c.sh)
	}
	return "culprits " + strings.Join(parts, ", ") + " of " + b.victimsText()
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// scaledStep is stepSize scaled by f (0 < f <= 1): rounded to the
// nearest whole value, at least 1 and at most the full step. Rounded, not
// truncated: near a knob's bottom truncation halved a culprit's step
// (cpu.weight 5, 50%, × 0.77: 1.93 -> 1 where the full step is 2, so the
// smaller culprit came down one unit per cooldown).
func scaledStep(st Step, from int64, f float64) int64 {
	full := stepSize(st, from)
	if f >= 1 {
		return full
	}
	var x float64
	if st.Percent != 0 {
		x = float64(from) * st.Percent / 100 * f
	} else {
		x = float64(st.Amount) * f
	}
	return min(max(int64(math.Round(x)), 1), max(full, 1))
}

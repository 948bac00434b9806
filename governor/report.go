package governor

import (
	"context"
	"sort"

	"github.com/hashicorp/go-hclog"
)

// maxReported bounds the per-cgroup lines of one pressure report.
const maxReported = 20

// report logs the host's pressure and that of the governed cgroups (those in
// a class), or of the most pressured cgroups when no class matches anything.
func (l *Loop) report() {
	if h := l.snap.Host; h != nil {
		l.log.Info("pressure", append([]interface{}{"cgroup", "host"}, pressureArgs(h)...)...)
	}
	var list []*cgState
	for _, cg := range l.cgs {
		if cg.class >= 0 {
			list = append(list, cg)
		}
	}
	governed := len(list) > 0
	if !governed {
		for _, cg := range l.cgs {
			if cg.ref.Path != "" { // the root is the host line
				list = append(list, cg)
			}
		}
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := stallSum(list[i].sample), stallSum(list[j].sample)
		if a != b {
			return a > b
		}
		return list[i].ref.Path < list[j].ref.Path
	})
	if len(list) > maxReported {
		l.log.Info("pressure report truncated", "shown", maxReported, "cgroups", len(list))
		list = list[:maxReported]
	}
	for _, cg := range list {
		args := []interface{}{"cgroup", cg.ref.String()}
		if cg.class >= 0 {
			args = append(args, "class", l.policy.Classes[cg.class].Name)
		}
		l.log.Info("pressure", append(args, pressureArgs(cg.sample)...)...)
	}
}

func stallSum(s *Sample) float64 {
	if s == nil {
		return 0
	}
	return s.Values[CPUSomeAvg10] + s.Values[MemorySomeAvg10] + s.Values[IOSomeAvg10]
}

func pressureArgs(s *Sample) []interface{} {
	var args []interface{}
	if s == nil {
		return args
	}
	for _, sig := range [...]Signal{CPUSomeAvg10, MemorySomeAvg10, MemoryFullAvg10, IOSomeAvg10, IOFullAvg10, MemoryCurrent, CPUUsage, RunqP99} {
		if v, ok := s.Get(sig); ok {
			args = append(args, sig.Name(), formatSignal(sig, v))
		}
	}
	return args
}

// dryRun wraps an Actuator: reads pass through, changes are not made. The
// audit line of each action (Config.OnAction) says what would have been
// done; these debug lines only trace the actuator calls.
type dryRun struct {
	Actuator
	log hclog.Logger
}

func (d dryRun) Write(_ context.Context, cg Ref, k Knob, v int64) error {
	d.log.Debug("would write", "cgroup", cg.String(), "knob", k.String(), "value", k.FormatValue(v))
	return nil
}

func (d dryRun) Restore(_ context.Context, cg Ref, k Knob, s Setting) error {
	d.log.Debug("would restore", "cgroup", cg.String(), "knob", k.String(), "value", s.Raw)
	return nil
}

func (d dryRun) Reclaim(_ context.Context, cg Ref, bytes int64) error {
	d.log.Debug("would reclaim", "cgroup", cg.String(), "bytes", FormatBytes(bytes))
	return nil
}

func (d dryRun) Freeze(_ context.Context, cg Ref, frozen bool) error {
	d.log.Debug("would "+map[bool]string{true: "freeze", false: "thaw"}[frozen], "cgroup", cg.String())
	return nil
}

func (d dryRun) Kill(_ context.Context, cg Ref) error {
	d.log.Debug("would kill every process", "cgroup", cg.String())
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/record"
	"github.com/governor-dev/governor/policies"
	"github.com/hashicorp/go-hclog"
)

// recordFlags are run's flight recorder flags.
type recordFlags struct {
	dir  string
	size sizeFlag
}

func (r *recordFlags) register(fs *flag.FlagSet) {
	r.size = record.DefaultSize
	fs.StringVar(&r.dir, "record-dir", "", "flight recorder `DIR` (default "+record.DefaultDir+", or DIR/record of a --state-dir other than the default)")
	fs.Var(&r.size, "record-size", "flight recorder ring size (`SIZE`: bytes or with KiB, MiB, GiB; 0 turns recording off)")
}

// sizeFlag is a byte count with an optional binary unit.
type sizeFlag int64

func (s *sizeFlag) String() string {
	if v := int64(*s); v > 0 && v%(1<<20) == 0 {
		return strconv.FormatInt(v>>20, 10) + "MiB"
	}
	return strconv.FormatInt(int64(*s), 10)
}

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	mult := int64(1)
	num := strings.TrimSpace(v)
	for _, u := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(num, u.s) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.s)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB or GiB", v)
	}
	return n * mult, nil
}

// openRecorder starts the flight recorder for cfg, or returns nil when it
// is off or cannot start (a warning: the daemon runs without it).
func openRecorder(f runFlags, cfg governor.Config, log hclog.Logger) *record.Recorder {
	if f.record.size == 0 {
		return nil
	}
	dir := f.record.dir
	if dir == "" {
		dir = record.DefaultDir
		if f.stateDir != "/run/governor" {
			dir = filepath.Join(f.stateDir, "record")
		}
	}
	rec, err := record.Open(record.Options{Dir: dir, Size: int64(f.record.size), Meta: record.NewMeta(cfg, version), Logger: log})
	if err != nil {
		log.Warn("flight recorder cannot start; running without it (--record-size 0 turns it off)", "dir", dir, "error", err)
		return nil
	}
	log.Info("flight recorder on", "dir", dir, "size", governor.FormatBytes(int64(f.record.size)))
	return rec
}

var replayHelp = help{name: "replay", usage: "governor replay --config POLICY [--from T] [--to T] [--compare POLICY2] [--json] [--check] RECORDING",
	about: `Run a policy over a flight recording (a directory of segments or one
segment file) with the daemon's own decision code, without kernel access or
root, and print the actions it would have taken: time, cgroup, knob,
old -> new, and the reason. Knob values come from the recording; knobs the
recorded host did not have, or that the live policy never read, are listed
at the end, not invented. --compare prints only the actions in which
POLICY2 differs (- POLICY only, + POLICY2 only). --check replays the
policy the live daemon ran and exits 1 unless it took the recorded
actions, in order (cgroup, kind, knob, old and new value; restores at
shutdown aside). T is RFC 3339 (2026-03-01T12:00:00Z).`}

func loadPolicyFile(path string, stderr io.Writer) (*governor.Policy, error) {
	res := policies.Load([]string{path}, policies.Options{AllowInsecure: true}) // a replay acts on nothing
	if len(res.Diags) > 0 {
		_ = res.WriteDiagnostics(stderr, false)
	}
	if res.Diags.HasErrors() || res.Policy == nil {
		return nil, fmt.Errorf("policy %s does not load", path)
	}
	return res.Policy, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339, e.g. 2026-03-01T12:00:00Z", s)
	}
	return t, nil
}

func replayCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	config := fs.String("config", "", "policy `FILE` to replay")
	compare := fs.String("compare", "", "second policy `FILE`: print where its actions differ")
	from := fs.String("from", "", "replay from `TIME` (RFC 3339)")
	to := fs.String("to", "", "replay up to `TIME` (RFC 3339)")
	asJSON := fs.Bool("json", false, "print JSON")
	check := fs.Bool("check", false, "compare the replayed actions with the recorded ones; exit 1 where they differ")
	pos, code, ok := parseFlags(fs, replayHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 || *config == "" {
		fmt.Fprintf(stderr, "governor replay: want --config POLICY and one RECORDING\nRun 'governor replay --help' for usage.\n")
		return 2
	}
	if *check && (*compare != "" || *asJSON) {
		fmt.Fprintf(stderr, "governor replay: --check takes neither --compare nor --json\n")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "governor replay: %v\n", err); return 1 }
	var opt record.ReplayOptions
	var err error
	if opt.From, err = parseTime(*from); err != nil {
		return fail(err)
	}
	if opt.To, err = parseTime(*to); err != nil {
		return fail(err)
	}
	run := func(path string) (*record.ReplayResult, error) {
		pol, err := loadPolicyFile(path, stderr)
		if err != nil {
			return nil, err
		}
		o := opt
		o.Policy = pol
		return record.Replay(context.Background(), pos[0], o)
	}
	a, err := run(*config)
	if err != nil {
		return fail(err)
	}
	for _, w := range a.Warnings {
		fmt.Fprintf(stderr, "governor replay: warning: %s\n", w)
	}
	if *check {
		return replayCheck(a, *config, stdout)
	}
	var b *record.ReplayResult
	if *compare != "" {
		if b, err = run(*compare); err != nil {
			return fail(err)
		}
	}
	if *asJSON {
		out := map[string]any{"ticks": a.Ticks, "from": a.First, "to": a.Last, "actions": nonNil(a.Actions),
			"recorded": nonNil(a.Recorded), "missing": nonNil(a.Missing), "unsupported": nonNil(a.Unsupported)}
		if b != nil {
			onlyA, onlyB := diffActions(a.Actions, b.Actions)
			out["compare"] = map[string]any{"actions": nonNil(b.Actions), "only_first": nonNil(onlyA), "only_second": nonNil(onlyB),
				"missing": nonNil(b.Missing), "unsupported": nonNil(b.Unsupported)}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(err)
		}
		return 0
	}
	span := "no ticks"
	if a.Ticks > 0 {
		span = a.First.UTC().Format(time.RFC3339) + " .. " + a.Last.UTC().Format(time.RFC3339)
	}
	if b == nil {
		fmt.Fprintf(stdout, "# %d ticks, %s: %d actions with %s (%d recorded live)\n", a.Ticks, span, len(a.Actions), *config, len(a.Recorded))
		for _, x := range a.Actions {
			fmt.Fprintln(stdout, actionLine(x))
		}
	} else {
		onlyA, onlyB := diffActions(a.Actions, b.Actions)
		fmt.Fprintf(stdout, "# %d ticks, %s: %d actions with %s, %d with %s; %d only with the first (-), %d only with the second (+)\n",
			a.Ticks, span, len(a.Actions), *config, len(b.Actions), *compare, len(onlyA), len(onlyB))
		type line struct {
			t    time.Time
			sign string
			a    record.Action
		}
		var ls []line
		for _, x := range onlyA {
			ls = append(ls, line{x.Time, "- ", x})
		}
		for _, x := range onlyB {
			ls = append(ls, line{x.Time, "+ ", x})
		}
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].t.Before(ls[j].t) })
		for _, l := range ls {
			fmt.Fprintln(stdout, l.sign+actionLine(l.a))
		}
	}
	notes := func(what string, list []string) {
		if len(list) > 0 {
			fmt.Fprintf(stdout, "# %s:\n", what)
			for _, m := range list {
				fmt.Fprintf(stdout, "#   %s\n", m)
			}
		}
	}
	notes("knobs the recorded host did not have", a.Unsupported)
	notes("knobs the recording has no value for (treated as absent)", a.Missing)
	if b != nil {
		notes("with "+*compare+": knobs the recorded host did not have", b.Unsupported)
		notes("with "+*compare+": knobs the recording has no value for (treated as absent)", b.Missing)
	}
	return 0
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func actionLine(a record.Action) string {
	cg := a.Cgroup
	if cg == "" {
		cg = "/"
	}
	knob := a.Knob
	if knob == "" {
		knob = "-"
	}
	change := a.Kind
	if a.Old != "" || a.New != "" {
		change = fmt.Sprintf("%s %s -> %s", a.Kind, a.Old, a.New)
	}
	s := fmt.Sprintf("%s  %s  %s  %s  %s: %s", a.Time.UTC().Format(time.RFC3339), cg, knob, change, a.Controller, a.Reason)
	if a.Err != "" {
		s += " (failed: " + a.Err + ")"
	}
	return s
}

// replayCheck compares the actions a replay took with those recorded live,
// in order, on cgroup, kind, knob, old and new value. Times are not
// compared (live actions carry the wall clock of the write, replayed ones
// the recorded tick's), nor reasons (a hook's outcome, a measured
// duration). Live restores at shutdown ("governor stopping") have no
// replayed counterpart and are left out.
func replayCheck(a *record.ReplayResult, config string, stdout io.Writer) int {
	var live []record.Action
	for _, x := range a.Recorded {
		if x.Reason != "governor stopping" {
			live = append(live, x)
		}
	}
	key := func(x record.Action) string {
		return strings.Join([]string{strconv.FormatUint(x.ID, 10), x.Kind, x.Knob, x.Old, x.New}, " ")
	}
	n := min(len(live), len(a.Actions))
	for i := 0; i < n; i++ {
		if key(live[i]) != key(a.Actions[i]) {
			fmt.Fprintf(stdout, "# replay with %s differs from the recording at action %d of %d:\n- %s\n+ %s\n",
				config, i+1, len(live), actionLine(live[i]), actionLine(a.Actions[i]))
			return 1
		}
	}
	if len(live) != len(a.Actions) {
		fmt.Fprintf(stdout, "# replay with %s took %d actions, the recording has %d (first %d alike)\n", config, len(a.Actions), len(live), n)
		for _, x := range live[n:] {
			fmt.Fprintln(stdout, "- "+actionLine(x))
		}
		for _, x := range a.Actions[n:] {
			fmt.Fprintln(stdout, "+ "+actionLine(x))
		}
		return 1
	}
	fmt.Fprintf(stdout, "# replay with %s matches the recording: %d ticks, %d actions alike\n", config, a.Ticks, n)
	return 0
}

// diffActions returns the actions of a not in b and of b not in a, matched
// on time, cgroup, kind, knob and values, in order.
func diffActions(a, b []record.Action) (onlyA, onlyB []record.Action) {
	key := func(x record.Action) string {
		return strings.Join([]string{x.Time.UTC().Format(time.RFC3339Nano), strconv.FormatUint(x.ID, 10), x.Kind, x.Knob, x.Old, x.New}, "\x00")
	}
	count := map[string]int{}
	for _, x := range b {
		count[key(x)]++
	}
	for _, x := range a {
		if k := key(x); count[k] > 0 {
			count[k]--
		} else {
			onlyA = append(onlyA, x)
		}
	}
	countA := map[string]int{}
	for _, x := range a {
		countA[key(x)]++
	}
	for _, x := range b {
		if k := key(x); countA[k] > 0 {
			countA[k]--
		} else {
			onlyB = append(onlyB, x)
		}
	}
	return onlyA, onlyB
}

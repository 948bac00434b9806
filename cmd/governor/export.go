package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/record"
)

var exportHelp = help{name: "export", usage: "governor export --openmetrics [-o FILE] RECORDING",
	about: `Write a flight recording as OpenMetrics text with timestamps, which
'promtool tsdb create-blocks-from openmetrics FILE DIR' turns into
Prometheus blocks: the governor_* series the daemon exports (host and cgroup
PSI avg10, run-queue p99, knob values, actions) plus every recorded signal
as governor_recorded_signal{cgroup,signal} and each controller's trigger
state as governor_controller_active.`}

func exportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	om := fs.Bool("openmetrics", false, "write OpenMetrics text (the only format so far)")
	out := fs.String("o", "", "write to `FILE` instead of standard output")
	pos, code, ok := parseFlags(fs, exportHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 || !*om {
		fmt.Fprintf(stderr, "governor export: want --openmetrics and one RECORDING\nRun 'governor export --help' for usage.\n")
		return 2
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "governor export: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	warnings, err := exportOpenMetrics(pos[0], w)
	for _, m := range warnings {
		fmt.Fprintf(stderr, "governor export: warning: %s\n", m)
	}
	if err != nil {
		fmt.Fprintf(stderr, "governor export: %v\n", err)
		return 1
	}
	return 0
}

// omFamily writes one metric family from every tick.
type omFamily struct {
	name, typ, help string
	emit            func(t *record.Tick, m *record.Meta, put func(labels string, v float64))
}

var psiKinds = []struct{ kind, resource, signal string }{
	{"some", "cpu", "cpu.some.avg10"}, {"full", "cpu", "cpu.full.avg10"},
	{"some", "memory", "memory.some.avg10"}, {"full", "memory", "memory.full.avg10"},
	{"some", "io", "io.some.avg10"}, {"full", "io", "io.full.avg10"},
}

func cgLabel(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// knobUnit converts a recorded knob value to the daemon's metric units.
func knobUnit(knob string, v int64) float64 {
	if v == governor.Unlimited {
		return math.Inf(1)
	}
	if knob == "cpu.max" {
		return float64(v) / 1e6
	}
	return float64(v)
}

func exportFamilies() []omFamily {
	actions := map[string]float64{}
	return []omFamily{
		{"governor_host_pressure_avg10_ratio", "gauge", "PSI 10 s average of the host (0..1).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				if t.Host == nil {
					return
				}
				for _, k := range psiKinds {
					if v, ok := t.Host.Signal(m, k.signal); ok {
						put(labels("kind", k.kind, "resource", k.resource), v/100)
					}
				}
			}},
		{"governor_cgroup_pressure_avg10_ratio", "gauge", "PSI 10 s average of a cgroup (0..1).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				for i := range t.Cgroups {
					c := &t.Cgroups[i]
					for _, k := range psiKinds {
						if v, ok := c.Signal(m, k.signal); ok {
							put(labels("cgroup", cgLabel(c.Path), "kind", k.kind, "resource", k.resource), v/100)
						}
					}
				}
			}},
		{"governor_cgroup_runq_latency_p99_seconds", "gauge", "99th percentile run-queue latency of the cgroup's tasks (BPF).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				for i := range t.Cgroups {
					if v, ok := t.Cgroups[i].Signal(m, "runq.p99"); ok {
						put(labels("cgroup", cgLabel(t.Cgroups[i].Path)), v)
					}
				}
			}},
		{"governor_knob_value", "gauge", "Knob value as the governor read or wrote it (bytes for memory.*, CPUs for cpu.max, the weight otherwise; +Inf is max).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				paths := map[uint64]string{}
				for _, c := range t.Cgroups {
					paths[c.ID] = c.Path
				}
				vals := map[string]float64{}
				for _, r := range t.Reads {
					if r.ErrKind == "" && r.Knob != "cgroup.freeze" {
						vals[labels("cgroup", cgLabel(paths[r.ID]), "knob", r.Knob)] = knobUnit(r.Knob, r.Value)
					}
				}
				for _, e := range t.Effects {
					if e.ErrKind == "" && (e.Op == "write" || e.Op == "restore") {
						vals[labels("cgroup", cgLabel(paths[e.ID]), "knob", e.Knob)] = knobUnit(e.Knob, e.Value)
					}
				}
				for _, k := range sortedKeys(vals) {
					put(k, vals[k])
				}
			}},
		{"governor_controller_active", "gauge", "1 while the controller's trigger is active (recorded).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				for _, c := range t.Controllers {
					v := 0.0
					if c.Active {
						v = 1
					}
					put(labels("controller", c.Name), v)
				}
			}},
		{"governor_actions", "counter", "Actions taken, by controller and kind (recorded).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				changed := map[string]bool{}
				for _, a := range t.Actions {
					k := labels("controller", a.Controller, "kind", a.Kind)
					actions[k]++
					changed[k] = true
				}
				for _, k := range sortedKeys(actions) {
					if changed[k] {
						put(k, actions[k])
					}
				}
			}},
		{"governor_recorded_signal", "gauge", "Every signal of every recorded cgroup, in its own unit (see governor's signal reference).",
			func(t *record.Tick, m *record.Meta, put func(string, float64)) {
				for i := range t.Cgroups {
					c := &t.Cgroups[i]
					for j, v := range c.Values {
						if v.Set && j < len(m.Signals) {
							put(labels("cgroup", cgLabel(c.Path), "signal", m.Signals[j]), v.V)
						}
					}
				}
			}},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// labels renders a label set; values are escaped as OpenMetrics asks.
func labels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func omValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// exportOpenMetrics writes the recording as OpenMetrics: one pass over
// the recording per family (OpenMetrics keeps a family's samples
// together), samples in time order.
func exportOpenMetrics(path string, w io.Writer) ([]string, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	var warnings []string
	for fi, fam := range exportFamilies() {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", fam.name, fam.help, fam.name, fam.typ)
		sample := fam.name
		if fam.typ == "counter" {
			sample += "_total"
		}
		rd, err := record.OpenReader(path)
		if err != nil {
			return warnings, err
		}
		var meta *record.Meta
		last := map[string]int64{} // a series' last timestamp (ms): strictly increasing
		for {
			t, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rd.Close()
				return warnings, err
			}
			if t.Meta != nil {
				meta = t.Meta
			}
			if meta == nil {
				continue
			}
			ms := t.Time.UnixMilli()
			ts := strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
			fam.emit(t, meta, func(l string, v float64) {
				if p, ok := last[l]; ok && p >= ms {
					return
				}
				last[l] = ms
				bw.WriteString(sample)
				bw.WriteString(l)
				bw.WriteByte(' ')
				bw.WriteString(omValue(v))
				bw.WriteByte(' ')
				bw.WriteString(ts)
				bw.WriteByte('\n')
			})
		}
		if fi == 0 {
			warnings = rd.Warnings
		}
		rd.Close()
	}
	bw.WriteString("# EOF\n")
	return warnings, bw.Flush()
}

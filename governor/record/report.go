package record

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/governor-dev/governor/governor"
)

// ReportOptions select what a report shows.
type ReportOptions struct {
	// Cgroups: path patterns (governor.MatchPath syntax) of the cgroups
	// to chart; none: those with actions, then the host (at most
	// MaxCgroups).
	Cgroups    []string
	MaxCgroups int
	From, To   time.Time
	Title      string
}

// series is one line of a chart.
type series struct {
	t []int64 // Unix ms
	v []float64
}

func (s *series) add(t int64, v float64) { s.t, s.v = append(s.t, t), append(s.v, v) }

type cgReport struct {
	Path    string
	ID      uint64
	sig     map[string]*series
	knobs   map[string]*series
	actions []Action
	// summary
	Actions                    int
	MaxCPU, MaxMem, MaxIO, P99 float64
	KnobsChanged               string
}

var reportSignals = []struct{ name, label, color string }{
	{"cpu.some.avg10", "cpu some avg10", "#d62728"},
	{"memory.some.avg10", "memory some avg10", "#1f77b4"},
	{"io.some.avg10", "io some avg10", "#2ca02c"},
}

// WriteReport writes one self-contained HTML file (inline SVG and CSS, a
// few lines of script that only measure what was drawn): for the chosen
// cgroups their pressure, run-queue p99 and knob values over time with
// every action marked (its reason on hover), and a summary table.
func WriteReport(w io.Writer, path string, opt ReportOptions) ([]string, error) {
	if opt.MaxCgroups <= 0 {
		opt.MaxCgroups = 8
	}
	// Pass 1: time range, actions, which cgroups to chart.
	var first, last time.Time
	ticks := 0
	var all []Action
	acted := map[string]int{}
	var order []string
	seen := map[string]bool{}
	warnings, err := eachTick(path, opt.From, opt.To, func(t *Tick, _ *Meta) {
		if ticks == 0 {
			first = t.Time
		}
		last = t.Time
		ticks++
		for _, c := range t.Cgroups {
			if !seen[c.Path] {
				seen[c.Path] = true
				order = append(order, c.Path)
			}
		}
		for _, a := range t.Actions {
			all = append(all, a)
			acted[a.Cgroup]++
		}
	})
	if err != nil {
		return warnings, err
	}
	chosen := map[string]*cgReport{}
	var list []*cgReport
	pick := func(p string) {
		if chosen[p] == nil && len(list) < opt.MaxCgroups {
			r := &cgReport{Path: p, sig: map[string]*series{}, knobs: map[string]*series{}}
			chosen[p] = r
			list = append(list, r)
		}
	}
	if len(opt.Cgroups) > 0 {
		for _, p := range order {
			for _, pat := range opt.Cgroups {
				if governor.MatchPath(pat, p) {
					pick(p)
				}
			}
		}
	} else {
		byActs := append([]string(nil), order...)
		sort.SliceStable(byActs, func(i, j int) bool { return acted[byActs[i]] > acted[byActs[j]] })
		for _, p := range byActs {
			if acted[p] > 0 {
				pick(p)
			}
		}
		if seen[""] {
			pick("")
		}
	}
	// Pass 2: the chosen cgroups' series.
	_, err = eachTick(path, opt.From, opt.To, func(t *Tick, m *Meta) {
		ms := t.Time.UnixMilli()
		ids := map[uint64]*cgReport{}
		for i := range t.Cgroups {
			c := &t.Cgroups[i]
			r := chosen[c.Path]
			if r == nil {
				continue
			}
			r.ID = c.ID
			ids[c.ID] = r
			for _, s := range append(reportSignals, struct{ name, label, color string }{"runq.p99", "", ""}) {
				if v, ok := c.Signal(m, s.name); ok {
					if r.sig[s.name] == nil {
						r.sig[s.name] = &series{}
					}
					r.sig[s.name].add(ms, v)
				}
			}
		}
		knob := func(id uint64, k string, v int64) {
			if r := ids[id]; r != nil && k != "cgroup.freeze" && v != governor.Unlimited {
				if r.knobs[k] == nil {
					r.knobs[k] = &series{}
				}
				r.knobs[k].add(ms, float64(v))
			}
		}
		for _, rd := range t.Reads {
			if rd.ErrKind == "" {
				knob(rd.ID, rd.Knob, rd.Value)
			}
		}
		for _, e := range t.Effects {
			if e.ErrKind == "" && (e.Op == "write" || e.Op == "restore") {
				knob(e.ID, e.Knob, e.Value)
			}
		}
		for _, a := range t.Actions {
			if r := chosen[a.Cgroup]; r != nil {
				r.actions = append(r.actions, a)
			}
		}
	})
	if err != nil {
		return warnings, err
	}
	t0, t1 := first.UnixMilli(), last.UnixMilli()
	if t1 <= t0 {
		t1 = t0 + 1000
	}
	type panel struct {
		R      *cgReport
		Charts []template.HTML
	}
	var panels []panel
	for _, r := range list {
		r.Actions = len(r.actions)
		r.MaxCPU, r.MaxMem, r.MaxIO = maxOf(r.sig["cpu.some.avg10"]), maxOf(r.sig["memory.some.avg10"]), maxOf(r.sig["io.some.avg10"])
		r.P99 = maxOf(r.sig["runq.p99"]) * 1000
		var changed []string
		for _, a := range r.actions {
			if a.Knob != "" && !contains(changed, a.Knob) {
				changed = append(changed, a.Knob)
			}
		}
		r.KnobsChanged = strings.Join(changed, " ")
		p := panel{R: r}
		var lines []chartLine
		for _, s := range reportSignals {
			if ser := r.sig[s.name]; ser != nil {
				lines = append(lines, chartLine{s.label, s.color, ser})
			}
		}
		p.Charts = append(p.Charts, svgChart("pressure (% of time stalled)", t0, t1, lines, r.actions, func(v float64) string { return fmt.Sprintf("%.3g%%", v) }))
		if ser := r.sig["runq.p99"]; ser != nil {
			p.Charts = append(p.Charts, svgChart("run-queue latency p99", t0, t1, []chartLine{{"runq p99", "#9467bd", ser}}, r.actions,
				func(v float64) string { return fmt.Sprintf("%.3gms", v*1000) }))
		}
		for _, k := range sortedMapKeys(r.knobs) {
			kn, _ := governor.KnobByName(k)
			p.Charts = append(p.Charts, svgChart(k, t0, t1, []chartLine{{k, "#ff7f0e", r.knobs[k]}}, knobActions(r.actions, k),
				func(v float64) string { return kn.FormatValue(int64(v)) }))
		}
		panels = append(panels, p)
	}
	byCtl := map[string]int{}
	for _, a := range all {
		byCtl[a.Controller+" "+a.Kind]++
	}
	var ctlRows [][2]string
	for _, k := range sortedMapKeys(byCtl) {
		ctlRows = append(ctlRows, [2]string{k, fmt.Sprint(byCtl[k])})
	}
	title := opt.Title
	if title == "" {
		title = "governor flight recording"
	}
	data := map[string]any{
		"Title": title, "From": first.UTC().Format(time.RFC3339), "To": last.UTC().Format(time.RFC3339),
		"Ticks": ticks, "Cgroups": len(order), "NActions": len(all), "Panels": panels, "CtlRows": ctlRows,
		"Warnings": warnings,
	}
	return warnings, reportTmpl.Execute(w, data)
}

func knobActions(as []Action, knob string) []Action {
	var out []Action
	for _, a := range as {
		if a.Knob == knob {
			out = append(out, a)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func maxOf(s *series) float64 {
	if s == nil {
		return 0
	}
	m := 0.0
	for _, v := range s.v {
		if v > m && !math.IsInf(v, 0) {
			m = v
		}
	}
	return m
}

// eachTick calls f for every tick in [from, to] with the block's Meta.
func eachTick(path string, from, to time.Time, f func(*Tick, *Meta)) ([]string, error) {
	rd, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	var meta *Meta
	for {
		t, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.Warnings, nil
		}
		if err != nil {
			return rd.Warnings, err
		}
		if t.Meta != nil {
			meta = t.Meta
		}
		if meta == nil || (!from.IsZero() && t.Time.Before(from)) || (!to.IsZero() && t.Time.After(to)) {
			continue
		}
		f(t, meta)
	}
}

type chartLine struct {
	name, color string
	s           *series
}

const (
	chartW, chartH         = 960, 150
	padL, padR, padT, padB = 70, 10, 18, 22
	maxPoints              = 1200
)

// svgChart draws lines over [t0, t1] and marks each action with a
// vertical line whose title (the browser's tooltip) says what and why.
func svgChart(title string, t0, t1 int64, lines []chartLine, actions []Action, yfmt func(float64) string) template.HTML {
	ymax := 0.0
	for _, l := range lines {
		ymax = math.Max(ymax, maxOf(l.s))
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax *= 1.1
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(t int64) float64 { return padL + pw*float64(t-t0)/float64(t1-t0) }
	y := func(v float64) float64 { return padT + ph*(1-v/ymax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text class="ctitle" x="%d" y="12">%s</text>`, padL, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect class="plot" x="%d" y="%d" width="%.0f" height="%.0f"/>`, padL, padT, pw, ph)
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.0f" text-anchor="end">%s</text>`, padL-4, y(ymax/1.1)+4, template.HTMLEscapeString(yfmt(ymax/1.1)))
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%.0f" text-anchor="end">%s</text>`, padL-4, y(0), template.HTMLEscapeString(yfmt(0)))
	for i := 0; i <= 4; i++ {
		t := t0 + (t1-t0)*int64(i)/4
		anchor := "middle"
		if i == 0 {
			anchor = "start"
		} else if i == 4 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.0f" y="%d" text-anchor="%s">%s</text>`, x(t), chartH-6, anchor, time.UnixMilli(t).UTC().Format("15:04:05"))
	}
	for li, l := range lines {
		fmt.Fprintf(&b, `<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="1.3" points="`, template.HTMLEscapeString(l.name), l.color)
		step := 1
		if n := len(l.s.t); n > maxPoints {
			step = (n + maxPoints - 1) / maxPoints
		}
		for i := 0; i < len(l.s.t); i += step {
			// The bucket's highest value: a spike survives downsampling.
			v := l.s.v[i]
			for j := i + 1; j < i+step && j < len(l.s.v); j++ {
				v = math.Max(v, l.s.v[j])
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x(l.s.t[i]), y(v))
		}
		b.WriteString(`"/>`)
		fmt.Fprintf(&b, `<text class="legend" x="%d" y="12" fill="%s">%s</text>`, padL+260+li*170, l.color, template.HTMLEscapeString(l.name))
	}
	for _, a := range actions {
		ax := x(a.Time.UnixMilli())
		tip := fmt.Sprintf("%s %s %s", a.Time.UTC().Format("15:04:05"), a.Controller, a.Kind)
		if a.Knob != "" {
			tip += " " + a.Knob
		}
		if a.Old != "" || a.New != "" {
			tip += " " + a.Old + " → " + a.New
		}
		tip += "\n" + a.Reason
		if a.Err != "" {
			tip += "\nfailed: " + a.Err
		}
		fmt.Fprintf(&b, `<g class="action" data-kind="%s"><line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f"/><circle cx="%.1f" cy="%d" r="3.5"/><title>%s</title></g>`,
			template.HTMLEscapeString(a.Kind), ax, ax, padT, padT+ph, ax, padT, template.HTMLEscapeString(tip))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(v float64) string { return fmt.Sprintf("%.2f%%", v) },
	"ms":  func(v float64) string { return fmt.Sprintf("%.3g ms", v) },
	"cg": func(p string) string {
		if p == "" {
			return "/ (host)"
		}
		return p
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin:24px 0 4px;font-family:monospace}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} td:first-child,th:first-child{text-align:left;font-family:monospace}
svg.chart{display:block;margin:4px 0} .plot{fill:#fafafa;stroke:#ddd} .axis{font-size:11px;fill:#666} .ctitle{font-size:12px;font-weight:bold}
.legend{font-size:11px} .action line{stroke:#000;stroke-opacity:.35;stroke-dasharray:3 2} .action circle{fill:#e377c2}
.action:hover line{stroke-opacity:1;stroke-width:2} .action:hover circle{r:6}
.warn{color:#a60}
</style></head>
<body>
<h1>{{.Title}}</h1>
<p id="span">{{.From}} .. {{.To}}: {{.Ticks}} ticks, {{.Cgroups}} cgroups, {{.NActions}} actions. Hover over a marker for the action and its reason.</p>
{{range .Warnings}}<p class="warn">{{.}}</p>{{end}}
<table id="controllers"><tr><th>controller, kind</th><th>actions</th></tr>
{{range .CtlRows}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}
</table>
<table id="summary"><tr><th>cgroup</th><th>actions</th><th>max cpu some avg10</th><th>max memory some avg10</th><th>max io some avg10</th><th>max runq p99</th><th>knobs changed</th></tr>
{{range .Panels}}<tr><td><a href="#cg{{.R.ID}}">{{cg .R.Path}}</a></td><td>{{.R.Actions}}</td><td>{{pct .R.MaxCPU}}</td><td>{{pct .R.MaxMem}}</td><td>{{pct .R.MaxIO}}</td><td>{{ms .R.P99}}</td><td>{{.R.KnobsChanged}}</td></tr>
{{end}}</table>
{{range .Panels}}<section class="cgroup" id="cg{{.R.ID}}"><h2>{{cg .R.Path}}</h2>
{{range .Charts}}{{.}}{{end}}
</section>
{{end}}
<script>
// Measures what the browser drew (for the report's own test); changes nothing visible.
addEventListener("load", function () {
  var drawn = 0, charts = document.querySelectorAll("svg.chart");
  document.querySelectorAll("g.action").forEach(function (g) { var r = g.getBoundingClientRect(); if (r.width > 0 && r.height > 0) drawn++; });
  document.body.setAttribute("data-rendered", charts.length + " charts, " + drawn + " action markers");
});
</script>
</body></html>
`))

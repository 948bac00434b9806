package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// dashboardPath is the Grafana dashboard shipped in examples/.
const dashboardPath = "../../examples/grafana/governor-dashboard.json"

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		GridPos *struct {
			W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID        string `json:"refId"`
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
		} `json:"targets"`
	} `json:"panels"`
}

// exported returns every metric family the daemon can export, with its
// variable labels, from the descriptors its registry holds. Histograms
// also answer to their _bucket/_sum/_count series.
func exported(t *testing.T) map[string]map[string]bool {
	t.Helper()
	m := New(Source{}, time.Second)
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		m.reg.Describe(ch)
		close(ch)
	}()
	descRE := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	out := make(map[string]map[string]bool)
	for d := range ch {
		sm := descRE.FindStringSubmatch(d.String())
		if sm == nil {
			t.Fatalf("cannot read descriptor %s", d)
		}
		labels := map[string]bool{}
		for _, l := range strings.Split(sm[2], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels[l] = true
			}
		}
		out[sm[1]] = labels
	}
	// The state's families are written by hand (expo.go).
	for _, f := range families {
		labels := map[string]bool{}
		for _, l := range f.labels {
			labels[l] = true
		}
		out[f.name] = labels
	}
	if len(out) == 0 {
		t.Fatal("no descriptors read from the registry")
	}
	for name, labels := range out {
		if name == "governor_loop_step_duration_seconds" {
			withLE := map[string]bool{"le": true}
			for l := range labels {
				withLE[l] = true
			}
			out[name+"_bucket"] = withLE
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		}
	}
	return out
}

// The shipped dashboard only queries metrics the daemon exports, with labels
// those metrics have, and uses only template variables it defines: a
// renamed metric or label breaks this test rather than a panel in production.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: title, uid and panels are required", dashboardPath)
	}
	metrics := exported(t)
	// Labels Prometheus adds to every series it scrapes.
	targetLabels := map[string]bool{"instance": true, "job": true}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}

	nameRE := regexp.MustCompile(`\b(governor|process)_[a-z0-9_]+\b`)
	selRE := regexp.MustCompile(`\b((?:governor|process)_[a-z0-9_]+)\{([^}]*)\}`)
	matcherRE := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	byRE := regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
	legendRE := regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)
	varRE := regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`)

	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		where := p.Title
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", where, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: no gridPos", where)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", where)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: missing or repeated refId %q", where, q.RefID)
			}
			refs[q.RefID] = true
			names := nameRE.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no governor metric", where, q.Expr)
			}
			// Labels any metric of this query has: what by() and the
			// legend may name.
			avail := map[string]bool{}
			for l := range targetLabels {
				avail[l] = true
			}
			for _, n := range names {
				labels, ok := metrics[n]
				if !ok && strings.HasPrefix(n, "process_") {
					continue // the process collector's, checked below
				}
				if !ok {
					t.Errorf("panel %q: metric %s is not exported", where, n)
					continue
				}
				used[n] = true
				for l := range labels {
					avail[l] = true
				}
			}
			for _, sm := range selRE.FindAllStringSubmatch(q.Expr, -1) {
				labels := metrics[sm[1]]
				for _, mm := range matcherRE.FindAllStringSubmatch(sm[2], -1) {
					if l := mm[1]; !labels[l] && !targetLabels[l] {
						t.Errorf("panel %q: %s has no label %q", where, sm[1], l)
					}
				}
			}
			for _, sm := range byRE.FindAllStringSubmatch(q.Expr, -1) {
				for _, l := range strings.Split(sm[1], ",") {
					if l = strings.TrimSpace(l); !avail[l] {
						t.Errorf("panel %q: by (%s): no metric of %q has label %q", where, sm[1], q.Expr, l)
					}
				}
			}
			for _, sm := range legendRE.FindAllStringSubmatch(q.LegendFormat, -1) {
				if !avail[sm[1]] {
					t.Errorf("panel %q: legend names label %q, which %q does not have", where, sm[1], q.Expr)
				}
			}
			for _, s := range []string{q.Expr, p.Title} {
				for _, sm := range varRE.FindAllStringSubmatch(s, -1) {
					if !vars[sm[1]] {
						t.Errorf("panel %q: uses $%s, which the dashboard does not define", where, sm[1])
					}
				}
			}
		}
	}
	// The process collector's series the dashboard reads must exist too.
	for _, n := range nameRE.FindAllString(string(b), -1) {
		if strings.HasPrefix(n, "process_") {
			if n != "process_cpu_seconds_total" && n != "process_resident_memory_bytes" {
				t.Errorf("dashboard reads %s; only process_cpu_seconds_total and process_resident_memory_bytes are checked to exist", n)
			}
		}
	}
	// Every family an operator needs is on the dashboard.
	for _, must := range []string{
		"governor_admission_accepting", "governor_cgroup_pressure_avg10_ratio",
		"governor_cgroup_runq_latency_p99_seconds", "governor_knob_value",
		"governor_knob_original_value", "governor_actions_total",
		"governor_action_errors_total", "governor_loop_step_duration_seconds_bucket",
		"governor_bpf_program_run_seconds_total", "governor_admission_headroom_ratio",
		"governor_cgroup_pressure_stall_seconds_total",
	} {
		if !used[must] {
			t.Errorf("dashboard does not show %s", must)
		}
	}
	var all []string
	for n := range used {
		all = append(all, n)
	}
	sort.Strings(all)
	t.Logf("dashboard reads %d metric families: %s", len(all), strings.Join(all, " "))
}

// The process collector is registered, so the dashboard's CPU and RSS panel
// has data.
func TestProcessCollectorRegistered(t *testing.T) {
	if _, ok := exported(t)["process_cpu_seconds_total"]; !ok {
		t.Fatal("process_cpu_seconds_total not exported")
	}
	if _, ok := exported(t)["process_resident_memory_bytes"]; !ok {
		t.Fatal("process_resident_memory_bytes not exported")
	}
}

package policies

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

const (
	KiB = int64(1) << 10
	MiB = int64(1) << 20
	GiB = int64(1) << 30
)

// mustLoad compiles a file from testdata and fails on any diagnostic.
func mustLoad(t *testing.T, path string) *governor.Policy {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := LoadSource(filepath.Base(path), src)
	if len(r.Diags) > 0 {
		var b strings.Builder
		_ = r.WriteDiagnostics(&b, false)
		t.Fatalf("%s: unexpected diagnostics:\n%s", path, b.String())
	}
	if r.Policy == nil {
		t.Fatalf("%s: no policy", path)
	}
	return r.Policy
}

func comparePolicy(t *testing.T, got, want *governor.Policy) {
	t.Helper()
	g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := 0; i < g.NumField(); i++ {
		name := g.Type().Field(i).Name
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

func TestFullPolicy(t *testing.T) {
	got := mustLoad(t, "testdata/good/full.hcl")
	o := func(line int) string { return fmt.Sprintf("full.hcl:%d", line) }
	want := &governor.Policy{
		Tick:        500 * time.Millisecond,
		ReportEvery: 30 * time.Second,
		Classes: []governor.Class{
			{Name: "web", Origin: o(6), Match: []string{"system.slice/web.service", "system.slice/nginx.service"},
				Exclude: []string{"system.slice/web.service/debug"}, Protected: true},
			{Name: "batch", Origin: o(12), Match: []string{"batch.slice/**"}},
			{Name: "misc", Origin: o(16), Match: []string{"misc.slice/*"}},
		},
		Protect: []governor.ProtectController{
			{Name: "web-memory", Origin: o(20), Target: "web", Low: 2 * GiB, Min: 512 * MiB},
		},
		Reclaim: []governor.ReclaimController{{
			Name: "batch-footprint", Origin: o(26), Target: "batch",
			Signal: governor.MemorySomeAvg10, Goal: 0.2, Interval: 3 * time.Second,
			Step: governor.Step{Amount: 16 * MiB}, MaxStep: governor.Unlimited, MinSize: GiB,
			Ramp: 2, FutileBelow: 10, MaxBackoff: 32,
		}},
		MemHigh: []governor.MemoryHighController{{
			Name: "batch-high", Origin: o(36), Target: "batch",
			Trigger: governor.Trigger{
				When: []governor.Condition{
					{Origin: o(46), Scope: governor.ScopeSelf, Signal: governor.MemoryFullAvg10, Op: governor.Above, Value: 5, For: 5 * time.Second},
					{Origin: o(51), Scope: governor.ScopeSelf, Signal: governor.MemoryEventsHigh, Op: governor.Above, Value: 100},
				},
				Recover: []governor.Condition{
					{Origin: o(55), Scope: governor.ScopeSelf, Signal: governor.MemoryFullAvg10, Op: governor.Below, Value: 1, For: 20 * time.Second},
				},
			},
			Relax: []governor.Condition{
				{Origin: o(60), Scope: governor.ScopeSelf, Signal: governor.MemorySomeAvg10, Op: governor.Below, Value: 0.5, For: 30 * time.Second},
				{Origin: o(65), Scope: governor.ScopeSelf, Signal: governor.MemoryCurrent, Op: governor.Below, Value: float64(4 * GiB)},
			},
			Step:            governor.Step{Amount: 64 * MiB},
			Headroom:        governor.Step{Amount: 128 * MiB},
			MaxBelowCurrent: 32 * MiB,
			Limits:          governor.Limits{Min: 256 * MiB, Max: 8 * GiB, Cooldown: 15 * time.Second, MaxPerMinute: 4},
		}},
		Suppress: []governor.SuppressController{{
			Name: "protect-web-latency", Origin: o(71), Target: "batch",
			Trigger: governor.Trigger{
				When:    []governor.Condition{{Origin: o(74), Scope: governor.ScopeClass, Class: "web", Signal: governor.CPUSomeAvg10, Op: governor.Above, Value: 10, For: 5 * time.Second}},
				Recover: []governor.Condition{{Origin: o(80), Scope: governor.ScopeClass, Class: "web", Signal: governor.CPUSomeAvg10, Op: governor.Below, Value: 2, For: 30 * time.Second}},
			},
			Knobs: []governor.SuppressKnob{
				{Knob: governor.CPUWeight, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1, Max: 10000, Cooldown: 5 * time.Second, MaxPerMinute: 10}},
				{Knob: governor.CPUMax, Step: governor.Step{Amount: 500_000}, Limits: governor.Limits{Min: 200_000, Max: governor.Unlimited, Cooldown: 2 * time.Second, MaxPerMinute: 10}},
				{Knob: governor.IOWeight, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1, Max: 10000, Cooldown: 5 * time.Second, MaxPerMinute: 10}},
			},
		}},
		LastResort: []governor.LastResortController{{
			Name: "runaway-batch", Origin: o(99), Target: "batch",
			Trigger: governor.Trigger{
				When:    []governor.Condition{{Origin: o(103), Scope: governor.ScopeHost, Signal: governor.MemoryFullAvg10, Op: governor.Above, Value: 40, For: 10 * time.Second}},
				Recover: []governor.Condition{{Origin: o(109), Scope: governor.ScopeHost, Signal: governor.MemoryFullAvg10, Op: governor.Below, Value: 10}},
			},
			Grace: 20 * time.Second, Kill: true,
		}},
		Rules: []governor.Rule{
			{
				Name: "misc-cpu", Origin: o(116), Target: "misc",
				Trigger: governor.Trigger{When: []governor.Condition{
					{Origin: o(125), Scope: governor.ScopeClass, Class: "web", Signal: governor.RunqP99, Op: governor.Above, Value: 0.005, For: 3 * time.Second},
					{Origin: o(131), Scope: governor.ScopeSelf, Signal: governor.CPUUsage, Op: governor.Above, Value: 3.5},
				}},
				Knob: governor.CPUMax, Down: true, Step: governor.Step{Percent: 20},
				Limits: governor.Limits{Min: 500_000, Max: 4_000_000, Cooldown: 10 * time.Second, MaxPerMinute: 6},
			},
			{
				Name: "misc-memory", Origin: o(137), Target: "misc",
				Trigger: governor.Trigger{When: []governor.Condition{
					{Origin: o(143), Scope: governor.ScopeHost, Signal: governor.MemorySomeAvg60, Op: governor.Above, Value: 20},
				}},
				Knob: governor.MemoryMax, Down: true, Step: governor.Step{Amount: 256 * MiB},
				Limits: governor.Limits{Min: GiB, Max: governor.Unlimited, Cooldown: 10 * time.Second},
			},
		},
	}
	comparePolicy(t, got, want)
}

// TestDefaults checks the documented defaults, applied when attributes are
// left out.
func TestDefaults(t *testing.T) {
	got := mustLoad(t, "testdata/good/defaults.hcl")
	if got.Tick != time.Second || got.ReportEvery != time.Minute {
		t.Errorf("tick/report_every = %v/%v, want 1s/1m", got.Tick, got.ReportEvery)
	}
	r := got.Reclaim[0]
	r.Name, r.Origin, r.Target = "", "", ""
	if want := (governor.ReclaimController{Signal: governor.MemorySomeStall, Goal: 0.1, Interval: 6 * time.Second,
		Step: governor.Step{Percent: 1}, MaxStep: 64 * MiB, MinSize: 128 * MiB,
		Ramp: 2, FutileBelow: 10, MaxBackoff: 32}); !reflect.DeepEqual(r, want) {
		t.Errorf("reclaim defaults:\n got %+v\nwant %+v", r, want)
	}
	m := got.MemHigh[0]
	if m.Step != (governor.Step{Percent: 10}) || m.Headroom != (governor.Step{Percent: 10}) || m.MaxBelowCurrent != 64*MiB ||
		m.Limits != (governor.Limits{Min: 256 * MiB, Max: governor.Unlimited, Cooldown: 10 * time.Second}) {
		t.Errorf("memory_high defaults: %+v", m)
	}
	wantKnobs := []governor.SuppressKnob{
		{Knob: governor.CPUWeight, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1, Max: 10000, Cooldown: 5 * time.Second}},
		{Knob: governor.CPUMax, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 10_000, Max: governor.Unlimited, Cooldown: 5 * time.Second}},
		{Knob: governor.IOWeight, Step: governor.Step{Percent: 50}, Limits: governor.Limits{Min: 1, Max: 10000, Cooldown: 5 * time.Second}},
	}
	if !reflect.DeepEqual(got.Suppress[0].Knobs, wantKnobs) {
		t.Errorf("suppress knob defaults:\n got %+v\nwant %+v", got.Suppress[0].Knobs, wantKnobs)
	}
	if tr := got.Suppress[0].Trigger; len(tr.Recover) != 0 || tr.When[0].For != 0 {
		t.Errorf("trigger defaults: %+v", tr)
	}
	if l := got.LastResort[0]; l.Grace != 10*time.Second || l.Kill {
		t.Errorf("last_resort defaults: grace %v kill %v", l.Grace, l.Kill)
	}
	rule := got.Rules[0]
	if rule.Target != "svc-free" || rule.Down || rule.Limits != (governor.Limits{Min: 0, Max: governor.Unlimited, Cooldown: 10 * time.Second}) {
		t.Errorf("rule defaults: %+v", rule)
	}
	if c := got.Classes[0]; c.Protected || c.Exclude != nil {
		t.Errorf("class defaults: %+v", c)
	}
}

func TestDefault(t *testing.T) {
	r := LoadSource("default.hcl", DefaultSource())
	if len(r.Diags) > 0 {
		var b strings.Builder
		_ = r.WriteDiagnostics(&b, false)
		t.Fatalf("default policy has diagnostics:\n%s", b.String())
	}
	p := Default()
	if !reflect.DeepEqual(p, r.Policy) {
		t.Errorf("Default() differs from compiling DefaultSource()")
	}
	if Default() == p {
		t.Errorf("Default() must return a fresh policy each call")
	}
	// Safety of the default: it writes only to a class matching batch.slice,
	// never memory.high, never freezes or kills.
	if len(p.MemHigh) != 0 || len(p.LastResort) != 0 || len(p.Rules) != 0 || len(p.Protect) != 0 {
		t.Errorf("default policy must only reclaim and suppress: %+v", p)
	}
	writable := map[string]bool{}
	for _, c := range p.Classes {
		if !c.Protected {
			writable[c.Name] = true
			for _, m := range c.Match {
				if !governor.MatchPath("batch.slice/**", m) {
					t.Errorf("default class %q is writable and matches %q outside batch.slice", c.Name, m)
				}
			}
		}
	}
	var targets []string
	for _, r := range p.Reclaim {
		targets = append(targets, r.Target)
	}
	for _, s := range p.Suppress {
		targets = append(targets, s.Target)
	}
	if len(targets) != 2 {
		t.Errorf("default policy should have one reclaim and one suppress controller, has targets %v", targets)
	}
	for _, tg := range targets {
		if !writable[tg] {
			t.Errorf("default controller targets %q, not a writable batch class", tg)
		}
	}
	// DefaultSource returns a copy.
	DefaultSource()[0] = 'X'
	if DefaultSource()[0] == 'X' {
		t.Errorf("DefaultSource shares its buffer")
	}
}

// TestExamples compiles every examples/*.hcl and fails on any diagnostic,
// warnings included.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob("../examples/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) { mustLoad(t, p) })
	}
	// Together they may still be loaded file by file only: class names
	// repeat across examples on purpose.
}

// TestMultiFile checks that files form one policy: references across files,
// and duplicates across files reported with both locations.
func TestMultiFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-classes.hcl", `class "batch" { match = ["batch.slice/**"] }`)
	write("20-reclaim.hcl", `reclaim "r" { target = "batch" }`)
	write("README", `not a policy`)
	write(".hidden.hcl", `garbage {{{`)
	r := Load([]string{dir}, Options{AllowInsecure: true})
	if r.Diags.HasErrors() {
		t.Fatalf("unexpected errors: %v", r.Diags)
	}
	if len(r.Policy.Classes) != 1 || len(r.Policy.Reclaim) != 1 {
		t.Fatalf("policy: %+v", r.Policy)
	}
	if want := filepath.Join(dir, "20-reclaim.hcl") + ":1"; r.Policy.Reclaim[0].Origin != want {
		t.Errorf("origin %q, want %q", r.Policy.Reclaim[0].Origin, want)
	}
	if len(r.Files) != 2 {
		t.Errorf("Files has %d entries, want 2", len(r.Files))
	}

	// The same directory named twice, and a file inside it: read once.
	r = Load([]string{dir, dir, filepath.Join(dir, "20-reclaim.hcl")}, Options{AllowInsecure: true})
	if r.Diags.HasErrors() {
		t.Fatalf("unexpected errors: %v", r.Diags)
	}

	write("30-dup.hcl", "\n\nclass \"batch\" { match = [\"x.slice\"] }")
	r = Load([]string{dir}, Options{AllowInsecure: true})
	var out bytes.Buffer
	_ = r.WriteDiagnostics(&out, false)
	if !strings.Contains(out.String(), "30-dup.hcl line 3") || !strings.Contains(out.String(), "10-classes.hcl:1") {
		t.Errorf("duplicate across files should name both places:\n%s", out.String())
	}
}

func TestLoadErrors(t *testing.T) {
	r := Load(nil, Options{})
	if !r.Diags.HasErrors() {
		t.Errorf("no paths: want an error")
	}
	r = Load([]string{filepath.Join(t.TempDir(), "missing.hcl")}, Options{AllowInsecure: true})
	if !r.Diags.HasErrors() || !strings.Contains(r.Diags.Error(), "missing.hcl") {
		t.Errorf("missing file: %v", r.Diags)
	}
	empty := t.TempDir()
	r = Load([]string{empty}, Options{AllowInsecure: true})
	if r.Diags.HasErrors() || len(r.Diags) != 1 || r.Policy == nil {
		t.Errorf("empty directory: want one warning and an empty policy, got %v", r.Diags)
	}
}

func TestWriteDiagnosticsColor(t *testing.T) {
	r := LoadSource("x.hcl", []byte(`class "c" { match = ["/abs"] }`))
	var plain, color bytes.Buffer
	if err := r.WriteDiagnostics(&plain, false); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteDiagnostics(&color, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[") {
		t.Errorf("color escapes: plain %q, color %q", plain.String(), color.String())
	}
}

// TestReferenceDocumentsEverything keeps REFERENCE.md from going stale: every
// signal, knob, block and attribute of the language must appear in it.
func TestReferenceDocumentsEverything(t *testing.T) {
	doc, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for i := governor.Signal(0); i < governor.NumSignals; i++ {
		row := fmt.Sprintf("| `%s` | %s | %s |\n", i.Name(), i.Unit(), i.Help())
		if !strings.Contains(text, row) {
			t.Errorf("REFERENCE.md lacks (or has a stale) signal row; want:\n%s", row)
		}
	}
	for k := governor.Knob(0); k < governor.NumKnobs; k++ {
		if !strings.Contains(text, "`"+k.String()+"`") {
			t.Errorf("REFERENCE.md does not mention knob %s", k)
		}
	}
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(ty reflect.Type) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag, kind, _ := strings.Cut(f.Tag.Get("hcl"), ",")
			if tag == "" || kind == "label" || kind == "label_range" {
				continue
			}
			if !strings.Contains(text, "`"+tag+"`") {
				t.Errorf("REFERENCE.md does not mention %s (in %s)", tag, ty.Name())
			}
			if kind == "block" {
				et := f.Type.Elem()
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				walk(et)
			}
		}
	}
	walk(reflect.TypeOf(fileSchema{}))
}

func TestReclaimTuning(t *testing.T) {
	r := LoadSource("t.hcl", []byte(`class "batch" { match = ["batch.slice"] }
reclaim "r" {
  target       = "batch"
  ramp         = 1.5
  futile_below = "5%"
  max_backoff  = 8
}`))
	if len(r.Diags) > 0 {
		t.Fatalf("diagnostics: %v", r.Diags)
	}
	if rc := r.Policy.Reclaim[0]; rc.Ramp != 1.5 || rc.FutileBelow != 5 || rc.MaxBackoff != 8 {
		t.Fatalf("ramp %g, futile_below %g, max_backoff %d", rc.Ramp, rc.FutileBelow, rc.MaxBackoff)
	}
}

func TestSuppressBlame(t *testing.T) {
	src := func(extra, signal string) []byte {
		return []byte(`class "services" {
  match     = ["system.slice/*.service"]
  protected = true
}
class "batch" { match = ["batch.slice/**"] }
suppress "squeeze" {
  target = "batch"
` + extra + `
  when {
    class  = "services"
    signal = "` + signal + `"
    above  = "10%"
  }
  knob "cpu.weight" { step = "50%" }
}`)
	}
	r := LoadSource("t.hcl", src(`blame = "preemption"
  blame_min_share = "10%"`, "cpu.some.avg10"))
	if len(r.Diags) > 0 {
		t.Fatalf("diagnostics: %v", r.Diags)
	}
	if s := r.Policy.Suppress[0]; s.Blame != governor.BlamePreemption || s.BlameMinShare != 10 {
		t.Fatalf("blame %v, blame_min_share %g", s.Blame, s.BlameMinShare)
	}
	r = LoadSource("t.hcl", src("", "cpu.some.avg10"))
	if len(r.Diags) > 0 {
		t.Fatalf("diagnostics: %v", r.Diags)
	}
	if s := r.Policy.Suppress[0]; s.Blame != governor.BlameNone || s.BlameMinShare != 0 {
		t.Fatalf("default: blame %v, blame_min_share %g", s.Blame, s.BlameMinShare)
	}
	r = LoadSource("t.hcl", src(`blame = "none"`, "cpu.some.avg10"))
	if len(r.Diags) > 0 || r.Policy.Suppress[0].Blame != governor.BlameNone {
		t.Fatalf("blame = none: %v", r.Diags)
	}
	// Blaming preemption for a memory stall compiles, with a warning at
	// the blame line.
	r = LoadSource("t.hcl", src(`blame = "preemption"`, "memory.some.avg10"))
	if r.Diags.HasErrors() || len(r.Diags) != 1 || r.Diags[0].Subject.Start.Line != 8 ||
		!strings.Contains(r.Diags[0].Detail, "no CPU or run-queue signal") {
		t.Fatalf("memory stall: want one warning on line 8, got %v", r.Diags)
	}
}

func TestRuleBlame(t *testing.T) {
	r := LoadSource("t.hcl", []byte(`class "services" {
  match     = ["system.slice/*.service"]
  protected = true
}
class "batch" { match = ["batch.slice/**"] }
rule "idle-culprits" {
  target          = "batch"
  knob            = "cpu.idle"
  direction       = "up"
  step            = 1
  blame           = "preemption"
  blame_min_share = "25%"
  when {
    class  = "services"
    signal = "runq.p99"
    above  = "5ms"
  }
}`))
	if len(r.Diags) > 0 {
		t.Fatalf("diagnostics: %v", r.Diags)
	}
	if ru := r.Policy.Rules[0]; ru.Blame != governor.BlamePreemption || ru.BlameMinShare != 25 {
		t.Fatalf("blame %v, blame_min_share %g", ru.Blame, ru.BlameMinShare)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/record"
	"github.com/governor-dev/governor/policies"
)

// recSource: the default policy's world, services under CPU pressure from
// tick 10 to 30.
type recSource struct{ tick int }

func (s *recSource) Name() string { return "test" }

func (s *recSource) Sample(_ context.Context, snap *governor.Snapshot) error {
	s.tick++
	p := 1.0
	if s.tick >= 10 && s.tick < 30 {
		p = 30
	}
	for i, path := range []string{"", "system.slice", "system.slice/web.service", "batch.slice"} {
		c := &governor.Sample{Ref: governor.Ref{ID: governor.CgroupID(i + 1), Path: path}, Populated: true}
		c.Set(governor.CPUSomeAvg10, p)
		c.Set(governor.MemorySomeAvg10, 0.5)
		c.Set(governor.RunqP99, 0.002*p)
		c.Set(governor.MemoryCurrent, 100<<20)
		snap.Cgroups = append(snap.Cgroups, c)
		if i == 0 {
			snap.Host = c
		}
	}
	return nil
}

type recKnobs map[string]int64

func (k recKnobs) key(cg governor.Ref, kn governor.Knob) string { return cg.Path + " " + kn.String() }

func (k recKnobs) Read(_ context.Context, cg governor.Ref, kn governor.Knob) (governor.Setting, error) {
	if kn == governor.IOWeight {
		return governor.Setting{}, governor.ErrUnsupported
	}
	v, ok := k[k.key(cg, kn)]
	if !ok {
		v = governor.Unlimited
		if kn == governor.CPUWeight {
			v = 100
		}
	}
	raw := "max"
	if v != governor.Unlimited {
		raw = strings.TrimSpace(governor.CPUWeight.FormatValue(v))
	}
	return governor.Setting{Value: v, Raw: raw}, nil
}

func (k recKnobs) Write(_ context.Context, cg governor.Ref, kn governor.Knob, v int64) error {
	k[k.key(cg, kn)] = v
	return nil
}

func (k recKnobs) Restore(_ context.Context, cg governor.Ref, kn governor.Knob, s governor.Setting) error {
	k[k.key(cg, kn)] = s.Value
	return nil
}
func (recKnobs) Reclaim(context.Context, governor.Ref, int64) error { return nil }
func (recKnobs) Freeze(context.Context, governor.Ref, bool) error   { return nil }
func (recKnobs) Kill(context.Context, governor.Ref) error           { return nil }

// makeRecording records 60 ticks of the default policy and returns the
// recording's directory.
func makeRecording(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rec")
	clk := &fixedClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := governor.Config{Policy: policies.Default(), Sources: []governor.Source{&recSource{}}, Actuator: recKnobs{}, Clock: clk,
		Caps: governor.Capabilities{Root: "/fake", Controllers: map[string]bool{"cpu": true, "memory": true}, Reclaim: true}, NumCPU: 2}
	rec, err := record.Open(record.Options{Dir: dir, Size: 1 << 20, Meta: record.NewMeta(cfg, "test")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Recorder, cfg.Actuator = rec, rec.Wrap(cfg.Actuator)
	loop, err := governor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		clk.t = clk.t.Add(time.Second)
		if err := loop.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { return c.t }

func writeReplayPolicy(t *testing.T, edit func(string) string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(p, []byte(edit(string(policies.DefaultSource()))), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplayCommand(t *testing.T) {
	rec := makeRecording(t)
	same := writeReplayPolicy(t, func(s string) string { return s })
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"replay", "--config", same, rec}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	text := out.String()
	// The squeeze of batch.slice, old -> new with its reason; io.weight
	// was not on the recorded host... (the default policy never reads it)
	for _, want := range []string{"# 60 ticks, 2026-03-01T12:00:01Z .. 2026-03-01T12:01:00Z:", "batch.slice  cpu.weight  write 100 -> 50  batch-yields-cpu: ", "cpu.some.avg10"} {
		if !strings.Contains(text, want) {
			t.Errorf("replay output lacks %q:\n%s", want, text)
		}
	}
	first := strings.SplitN(text, "\n", 2)[0]
	if !strings.Contains(first, "actions with") || !strings.HasSuffix(first, "recorded live)") {
		t.Errorf("header %q", first)
	}

	// --compare with the threshold moved above the pressure: every
	// suppress action is only in the first policy.
	moved := writeReplayPolicy(t, func(s string) string { return strings.Replace(s, `above  = "10%"`, `above  = "50%"`, 1) })
	out.Reset()
	if code := dispatch([]string{"replay", "--config", same, "--compare", moved, "--json", rec}, &out, &errOut); code != 0 {
		t.Fatalf("compare exit %d: %s", code, errOut.String())
	}
	var res struct {
		Ticks   int             `json:"ticks"`
		Actions []record.Action `json:"actions"`
		Compare struct {
			OnlyFirst  []record.Action `json:"only_first"`
			OnlySecond []record.Action `json:"only_second"`
		} `json:"compare"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Ticks != 60 || len(res.Actions) == 0 || len(res.Compare.OnlyFirst) == 0 || len(res.Compare.OnlySecond) != 0 {
		t.Fatalf("ticks %d, actions %d, only first %d, only second %d", res.Ticks, len(res.Actions), len(res.Compare.OnlyFirst), len(res.Compare.OnlySecond))
	}
	for _, a := range res.Compare.OnlyFirst {
		if a.Controller != "batch-yields-cpu" {
			t.Errorf("moving the suppress threshold changed a %s action: %+v", a.Controller, a)
		}
	}

	// --check: the live policy replays to the recorded actions; the moved
	// threshold does not, and says where.
	out.Reset()
	if code := dispatch([]string{"replay", "--config", same, "--check", rec}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "matches the recording") {
		t.Fatalf("--check with the live policy: exit %d, %s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := dispatch([]string{"replay", "--config", moved, "--check", rec}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "the recording has 14") {
		t.Fatalf("--check with a moved threshold: exit %d, %s", code, out.String())
	}

	// --from/--to narrow the ticks.
	out.Reset()
	if code := dispatch([]string{"replay", "--config", same, "--from", "2026-03-01T12:00:20Z", "--to", "2026-03-01T12:00:29Z", rec}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "# 10 ticks, 2026-03-01T12:00:20Z .. 2026-03-01T12:00:29Z") {
		t.Errorf("--from/--to: %s", out.String())
	}
	// A bad recording: a clear error naming the offset.
	bad := filepath.Join(t.TempDir(), "seg-00000001.jsonl.zst")
	os.WriteFile(bad, []byte("this is not a recording, just text that is long enough"), 0o600)
	errOut.Reset()
	if code := dispatch([]string{"replay", "--config", same, bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "offset 0: not a recording block") {
		t.Errorf("bad recording: exit %d, %q", code, errOut.String())
	}
}

// The export is what promtool's backfill accepts.
func TestExportOpenMetricsPromtool(t *testing.T) {
	rec := makeRecording(t)
	om := filepath.Join(t.TempDir(), "rec.om")
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"export", "--openmetrics", "-o", om, rec}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	data, _ := os.ReadFile(om)
	text := string(data)
	for _, want := range []string{
		`governor_cgroup_pressure_avg10_ratio{cgroup="system.slice/web.service",kind="some",resource="cpu"} 0.3 1772366410.000`,
		`governor_knob_value{cgroup="batch.slice",knob="cpu.weight"} 50 `,
		`governor_actions_total{controller="batch-yields-cpu",kind="write"} 2 `, /* cpu.weight and cpu.max at once */
		`governor_controller_active{controller="batch-yields-cpu"} 1 `,
		"# EOF\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("export lacks %q", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make deps-test installs the Debian package prometheus)")
	}
	blocks := filepath.Join(t.TempDir(), "tsdb")
	cmd := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, blocks)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool rejects the export: %v\n%s", err, b)
	}
	ents, _ := os.ReadDir(blocks)
	if len(ents) == 0 {
		t.Fatal("promtool wrote no block")
	}
}

// chromium finds headless Chromium, installing the Debian package as root
// if it is missing.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getuid() == 0 {
		cmd := exec.Command("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err == nil {
			if p, err := exec.LookPath("chromium"); err == nil {
				return p
			}
		} else {
			t.Logf("apt-get install chromium: %v\n%s", err, out)
		}
	}
	t.Skip("headless Chromium not available (Debian package chromium; installed by this test when run as root)")
	return ""
}

// The report is one self-contained file that a real browser renders:
// Chromium loads it, the page's own script counts the charts and action
// markers it drew, and a screenshot is kept: with $GOVERNOR_ARTIFACTS set
// (`make test` sets it to build/artifacts) the page and its screenshot
// are written there as report-chromium.html and report-chromium.png.
func TestReportInChromium(t *testing.T) {
	rec := makeRecording(t)
	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"report", "-o", html, rec}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	data, _ := os.ReadFile(html)
	page := string(data)
	// Self-contained: nothing to fetch (the SVG namespace is a name, not
	// a fetch).
	for _, bad := range []string{"src=", "<link", "https://", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("report refers to something outside itself: %q", bad)
		}
	}
	if strings.Count(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), "http://") > 0 {
		t.Error("report refers to an http:// resource")
	}
	charts := strings.Count(page, `<svg class="chart"`)
	markers := strings.Count(page, `<g class="action"`)
	// batch.slice (acted on: pressure, runq, cpu.weight, cpu.max) and the
	// host; the squeeze and its release are marked on several charts.
	if charts < 5 || markers < 10 || !strings.Contains(page, "batch-yields-cpu write cpu.weight 100 → 50\n") {
		t.Fatalf("report has %d charts, %d markers:\n%.2000s", charts, markers, page)
	}
	for _, want := range []string{`<table id="summary">`, `<a href="#cg4">batch.slice</a>`, "cpu.weight cpu.max", "/ (host)"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	bin := chromium(t)
	browse := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1100,1400"}
		cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+html)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	dom := browse("--dump-dom", "--virtual-time-budget=2000")
	want := fmt.Sprintf(`data-rendered="%d charts, %d action markers"`, charts, markers)
	if !strings.Contains(dom, want) {
		i := strings.Index(dom, "<body")
		t.Fatalf("Chromium did not render every chart and marker: want %s in\n%.300s", want, dom[max(i, 0):])
	}
	png := filepath.Join(dir, "report.png")
	if art := os.Getenv("GOVERNOR_ARTIFACTS"); art != "" {
		if err := os.MkdirAll(art, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(art, "report-chromium.html"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		png = filepath.Join(art, "report-chromium.png")
	}
	os.Remove(png) // an earlier run's must not pass for this one's
	browse("--screenshot=" + png)
	if fi, err := os.Stat(png); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot %s: %v", png, err)
	}
	t.Logf("screenshot: %s", png)
}

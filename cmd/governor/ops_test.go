package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/control"
	"github.com/governor-dev/governor/governor/govtest"
)

// With --log-json every action is one JSON object carrying all its fields.
func TestAuditLineJSON(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Name: "governor", JSONFormat: true, Output: &buf, Level: hclog.Info}).Named("audit")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	actions := []governor.Action{
		{Time: at, Controller: "squeeze", Cgroup: governor.Ref{ID: 7, Path: "batch.slice/job1"}, Kind: "write", Knob: "cpu.weight", Old: "100", New: "50", Reason: "web:cpu.some.avg10=40.00% > 10.00%"},
		{Time: at, Controller: "runaway", Cgroup: governor.Ref{ID: 8, Path: "batch.slice/job2"}, Kind: "kill", Knob: "cgroup.kill", New: "1", Reason: "memory.current=1.1GiB > 1GiB"},
		{Time: at, Controller: "squeeze", Cgroup: governor.Ref{ID: 7, Path: "batch.slice/job1"}, Kind: "write", Knob: "cpu.max", Old: "max", New: "1.5cpu", Err: errors.New("write cpu.max: permission denied")},
		{Time: at, Controller: "reclaimer", Cgroup: governor.Ref{ID: 9, Path: "batch.slice/job3"}, Kind: "reclaim", Knob: "memory.reclaim", Old: "1GiB", New: "10MiB", Reason: "memory.some.stall=0.00% < goal 0.10%", DryRun: true},
		{Time: at, Controller: "reclaimer", Cgroup: governor.Ref{ID: 9, Path: "batch.slice/job3"}, Kind: "reclaim", Knob: "memory.reclaim", Old: "806MiB", New: "4MiB", Reason: "memory.some.stall=0.00% < goal 0.10%",
			Reclaim: &governor.ReclaimResult{Requested: 4 << 20, Reclaimed: 1 << 20, Scanned: 2048, Stolen: 256, Measured: true}},
	}
	for _, a := range actions {
		governor.LogAction(log, a)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(actions) {
		t.Fatalf("%d lines for %d actions:\n%s", len(lines), len(actions), buf.String())
	}
	for i, l := range lines {
		var m map[string]interface{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, l)
		}
		a := actions[i]
		want := map[string]interface{}{
			"@module": "governor.audit", "controller": a.Controller, "cgroup": a.Cgroup.Path, "cgroup_id": float64(a.Cgroup.ID),
			"kind": a.Kind, "knob": a.Knob, "old": a.Old, "new": a.New, "why": a.Reason, "dry_run": a.DryRun,
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%s", i, k, m[k], v, l)
			}
		}
		if a.Reclaim != nil && (m["requested"] != "4MiB" || m["reclaimed"] != "1MiB" || m["efficiency"] != "0.12") {
			t.Errorf("line %d: reclaim result: requested %v, reclaimed %v, efficiency %v", i, m["requested"], m["reclaimed"], m["efficiency"])
		}
		if _, ok := m["at"]; !ok {
			t.Errorf("line %d lacks the action's time: %s", i, l)
		}
		if a.Err != nil && (m["error"] != a.Err.Error() || m["@level"] != "error") {
			t.Errorf("failed action: %s", l)
		}
		if msg := "action"; a.DryRun && m["@message"] != "would act (dry-run: nothing written)" || !a.DryRun && a.Err == nil && m["@message"] != msg {
			t.Errorf("message: %s", l)
		}
		if at, _ := m["at"].(string); at != "2026-01-02T03:04:05Z" {
			t.Errorf("at = %q, want RFC 3339 in UTC", at)
		}
	}
}

// The audit hook as wired in run: a real loop on fakes, JSON output, one
// object per action the loop emits (OnAction), none missing.
func TestAuditFromLoop(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Name: "governor", JSONFormat: true, Output: lockedWriter{&mu, &buf}, Level: hclog.Info})
	o := newOps(opsFlags{}, t.TempDir(), t.TempDir(), log)
	var emitted int
	src := &fakeSrc{}
	loop, err := governor.New(governor.Config{
		Policy: squeezePolicy(), Sources: []governor.Source{src}, Actuator: govtest.NewActuator(),
		Caps:     governor.Capabilities{Controllers: map[string]bool{"cpu": true}},
		OnAction: func(a governor.Action) { emitted++; o.onAction(a) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := loop.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := loop.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, l := range strings.Split(buf.String(), "\n") {
		if !strings.Contains(l, `"@module":"governor.audit"`) {
			continue
		}
		var m map[string]interface{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		n++
	}
	if emitted < 2 || n != emitted {
		t.Errorf("%d actions emitted (want a write and a restore), %d audit objects:\n%s", emitted, n, buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

type fakeSrc struct{}

func (fakeSrc) Name() string { return "fake" }
func (fakeSrc) Sample(_ context.Context, snap *governor.Snapshot) error {
	snap.Host = &governor.Sample{}
	web := &governor.Sample{Ref: governor.Ref{ID: 2, Path: "system.slice/web.service"}, Populated: true}
	web.Set(governor.CPUSomeAvg10, 50)
	snap.Cgroups = append(snap.Cgroups, web, &governor.Sample{Ref: governor.Ref{ID: 3, Path: "batch.slice/job1"}, Populated: true})
	return nil
}

func squeezePolicy() *governor.Policy { return govtest.Squeeze(10 * time.Millisecond) }

func TestShiftLevel(t *testing.T) {
	for _, tc := range []struct {
		cur     hclog.Level
		verbose bool
		want    hclog.Level
	}{
		{hclog.Info, true, hclog.Debug},
		{hclog.Debug, true, hclog.Trace},
		{hclog.Trace, true, hclog.Trace},
		{hclog.Info, false, hclog.Warn},
		{hclog.Error, false, hclog.Error},
	} {
		if got := shiftLevel(tc.cur, tc.verbose); got != tc.want {
			t.Errorf("shiftLevel(%s, %v) = %s, want %s", tc.cur, tc.verbose, got, tc.want)
		}
	}
	// Named loggers follow the root's level.
	root := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &bytes.Buffer{}})
	child := root.Named("loop")
	root.SetLevel(shiftLevel(root.GetLevel(), true))
	if !child.IsDebug() {
		t.Error("a named logger did not follow the root's level")
	}
}

// status, explain and admission against a control socket served by a
// running loop; admission's exit status tells schedulers the verdict.
func TestClientCommands(t *testing.T) {
	src := fakeSrc{}
	loop, err := governor.New(governor.Config{
		Policy: squeezePolicy(), Sources: []governor.Source{src}, Actuator: govtest.NewActuator(),
		Caps: governor.Capabilities{Controllers: map[string]bool{"cpu": true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	sock := filepath.Join(t.TempDir(), "control.sock")
	srv, err := control.Listen(control.Options{Path: sock}, control.Backend{Status: loop.Status, Explain: loop.Explain, Admission: loop.Admission,
		Via: func(governor.Ref) string { return "cgroupfs" }})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ctx)

	var out, errOut bytes.Buffer
	deadline := time.Now().Add(5 * time.Second)
	for {
		out.Reset()
		if code := dispatch([]string{"status", "--socket", sock}, &out, &errOut); code != 0 {
			t.Fatalf("status: exit %d: %s", code, errOut.String())
		}
		if strings.Contains(out.String(), "squeeze write cpu.weight 100→50") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	text := out.String()
	for _, want := range []string{"CGROUP", "batch.slice/job1", "cgroupfs", "cpu.weight=50 (100)", "squeeze write cpu.weight 100→50",
		"web*", "admission: accepting", `suppress "squeeze" → batch: ACTIVE`, "batch.slice/job1: web:cpu.some.avg10=50.00% > 10.00%"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	if code := dispatch([]string{"explain", "--socket", sock, "/batch.slice/job1"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `class "batch"`) {
		t.Errorf("explain: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := dispatch([]string{"explain", "--socket", sock, "nope"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no such cgroup") {
		t.Errorf("explain unknown: exit %d %s", code, errOut.String())
	}
	out.Reset()
	if code := dispatch([]string{"admission", "--socket", sock}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "accepting batch work since") {
		t.Errorf("admission: exit %d\n%s", code, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"admission", "--json", "--socket", sock}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"accepting": true`) {
		t.Errorf("admission --json: exit %d\n%s", code, out.String())
	}
	if code := dispatch([]string{"admission", "--socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errOut); code != 2 {
		t.Errorf("admission without a daemon: exit %d, want 2", code)
	}
	if code := dispatch([]string{"status", "--socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errOut); code != 1 {
		t.Errorf("status without a daemon: exit %d, want 1", code)
	}
}

func TestAdmissionExitStatusNotAccepting(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	srv, err := control.Listen(control.Options{Path: sock}, control.Backend{Admission: func(context.Context) (governor.AdmissionVerdict, error) {
		return governor.AdmissionVerdict{Accepting: false, Reason: "host:memory.some.avg10=12.00% > 10.00% for 10s", Origin: "built-in", Since: time.Now()}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"admission", "--socket", sock}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "NOT accepting") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// The VM scenario "systemd" installs copies of the example unit and its
// drop-in (the guest gets test/vm/policies, not examples/): they must not
// drift.
func TestVMCopiesOfTheUnitMatchExamples(t *testing.T) {
	for _, p := range [][2]string{
		{"../../examples/governor.service", "../../test/vm/policies/systemd/governor.service"},
		{"../../examples/governor.service.d/10-before-systemd-253.conf", "../../test/vm/policies/systemd/10-before-systemd-253.conf"},
	} {
		a, err1 := os.ReadFile(p[0])
		b, err2 := os.ReadFile(p[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("%v %v", err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: copy it again", p[1], p[0])
		}
	}
}

// The policies inside the Kubernetes and Nomad examples are valid.
func TestDeploymentExamplePolicies(t *testing.T) {
	extract := func(path, start, end string, indent int) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i := strings.Index(s, start)
		if i < 0 {
			t.Fatalf("%s: no %q", path, start)
		}
		s = s[i+len(start):]
		var out []string
		for _, l := range strings.Split(s, "\n")[1:] {
			if strings.TrimSpace(l) == end || (end == "" && l != "" && !strings.HasPrefix(l, strings.Repeat(" ", indent))) {
				break
			}
			if len(l) >= indent {
				l = l[indent:]
			}
			out = append(out, l)
		}
		return strings.Join(out, "\n")
	}
	for name, src := range map[string]string{
		"kubernetes.hcl": extract("../../examples/kubernetes/governor-daemonset.yaml", "node.hcl: |", "", 4),
		"nomad.hcl":      extract("../../examples/nomad/governor.nomad.hcl", "data        = <<-EOF", "EOF", 10),
	} {
		if !strings.Contains(src, "admission {") {
			t.Errorf("%s: extracted policy lacks its admission block:\n%s", name, src)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if code := dispatch([]string{"validate", p}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d\n%s\n%s", name, code, errOut.String(), src)
		}
	}
}

// top redraws (home, clear, table) on every tick and stops on quit; a
// daemon that is not there is shown, not fatal.
func TestTopLoop(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "control.sock")
	var n int
	var mu sync.Mutex
	srv, err := control.Listen(control.Options{Path: sock}, control.Backend{Status: func(context.Context) (governor.Status, error) {
		mu.Lock()
		n++
		mu.Unlock()
		return governor.Status{Time: time.Now(), Cgroups: []governor.CgroupStatus{{Ref: governor.Ref{ID: 3, Path: "batch.slice/job1"}, Class: "batch"}}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	quit := make(chan struct{})
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		topLoop(control.Client{Path: sock}, 20*time.Millisecond, func() int { return 40 }, screen{w: lockedWriter{&mu, &out}, size: func() (int, int) { return 24, 80 }}, quit)
		close(done)
	}()
	for {
		mu.Lock()
		k := n
		mu.Unlock()
		if k >= 3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(quit)
	<-done
	mu.Lock()
	text := out.String()
	mu.Unlock()
	if frames := strings.Count(text, "\x1b[H\x1b[2J"); frames < 3 || strings.Count(text, "batch.slice/job1") != frames {
		t.Errorf("%d frames:\n%q", frames, text)
	}
	var bad bytes.Buffer
	q := make(chan struct{})
	close(q)
	topLoop(control.Client{Path: filepath.Join(t.TempDir(), "none.sock")}, time.Second, func() int { return 40 }, screen{w: &bad}, q)
	if !strings.Contains(bad.String(), "governor top: cannot reach") {
		t.Errorf("no daemon: %q", bad.String())
	}
}

// The real daemon on this host (dry run): metrics on an ephemeral port,
// the control socket in the state directory, SIGUSR1/SIGUSR2 changing the
// log level, and a clean exit on SIGTERM.
func TestDaemonOpsOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Skip("kernel without PSI")
	}
	bin := filepath.Join(t.TempDir(), "governor")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	state := t.TempDir()
	cmd := exec.Command(bin, "run", "--dry-run", "--no-bpf", "--state-dir", state, "--metrics-addr", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var mu sync.Mutex
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	waitLog := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			text := log.String()
			mu.Unlock()
			if i := strings.Index(text, what); i >= 0 {
				return text[i:]
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("log lacks %q:\n%s", what, log.String())
		return ""
	}
	line := waitLog("serving metrics: addr=")
	addr := strings.Fields(strings.TrimPrefix(line, "serving metrics: addr="))[0]
	waitLog("pressure: cgroup=host") // the first step has run

	var out, errOut bytes.Buffer
	sock := filepath.Join(state, "control.sock")
	if code := dispatch([]string{"status", "--socket", sock}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "[dry-run") {
		t.Errorf("status: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "governor_up 1") || !strings.Contains(string(body), "governor_loop_steps_total") {
		t.Errorf("metrics:\n%s", body)
	}

	cmd.Process.Signal(syscall.SIGUSR1)
	waitLog("log level changed: level=debug")
	cmd.Process.Signal(syscall.SIGUSR2)
	waitLog("log level changed: level=info")
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// A failure that repeats the knob's previous failure is logged at debug:
// a stuck knob gives one error line, not one a tick.
func TestAuditLineRepeatIsDebug(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Name: "governor", JSONFormat: true, Output: &buf, Level: hclog.Debug})
	a := governor.Action{Controller: "squeeze", Cgroup: governor.Ref{ID: 7, Path: "batch.slice/job1"}, Kind: "write", Knob: "cpu.max", New: "1.5cpu", Err: errors.New("write cpu.max: device or resource busy")}
	governor.LogAction(log, a)
	a.Repeat = true
	governor.LogAction(log, a)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{"error", "debug"} {
		var m map[string]interface{}
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		if m["@level"] != want {
			t.Errorf("line %d at %v, want %s: %s", i, m["@level"], want, lines[i])
		}
	}
}

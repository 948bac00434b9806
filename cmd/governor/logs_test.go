package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
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
	"github.com/governor-dev/governor/governor/govtest"
)

// buildBinary is governorBinary (process_test.go): the daemon built once
// per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	return governorBinary(t)
}

// testDaemon is a running governor whose stderr is collected line by line.
type testDaemon struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startJSONDaemon(t *testing.T, bin string, args ...string) *testDaemon {
	t.Helper()
	d := &testDaemon{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			d.mu.Lock()
			d.lines = append(d.lines, sc.Text())
			d.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
	}()
	return d
}

func (d *testDaemon) text() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.lines, "\n")
}

// wait blocks until some line contains what, and returns the number of
// lines seen up to and including it.
func (d *testDaemon) wait(t *testing.T, what string) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for i, l := range d.lines {
			if strings.Contains(l, what) {
				d.mu.Unlock()
				return i + 1
			}
		}
		d.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log lacks %q:\n%s", what, d.text())
	return 0
}

// A failed reload under --log-json: every line the daemon writes is one
// JSON object, and each diagnostic is one object with its position,
// message and source line as fields.
func TestLogJSONFailedReload(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (policy files must be root's; the host's cgroup2 hierarchy)")
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Skip("kernel without PSI")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	pol := filepath.Join(dir, "node.hcl")
	good := "class \"batch\" {\n  match = [\"batch.slice/*\"]\n}\n"
	if err := os.WriteFile(pol, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startJSONDaemon(t, bin, "run", "--log-json", "--dry-run", "--no-bpf", "--config", pol,
		"--state-dir", t.TempDir(), "--metrics-addr", "", "--control-socket", "none")
	d.wait(t, `"governing"`)
	broken := good + "\nsuppress \"s\" {\n  target = \"batch\"\n  when {\n    class  = \"web\"\n    signal = \"cpu.some.avg10\"\n    above  = \"10%\"\n  }\n  knob \"cpu.weight\" { step = \"50%\" }\n}\n"
	if err := os.WriteFile(pol, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.wait(t, "reload failed")
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	<-d.done
	var diags []map[string]interface{}
	for i, l := range d.lines {
		var m map[string]interface{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s\nwhole log:\n%s", i+1, err, l, d.text())
		}
		if m["@message"] == "policy error" {
			diags = append(diags, m)
		}
		if m["@message"] == "reload failed; keeping the running policy" {
			if e, _ := m["error"].(string); strings.Contains(e, "<nil>") || strings.Contains(e, "Unknown class") {
				t.Errorf("reload error repeats the diagnostics or prints <nil>: %q", e)
			}
		}
	}
	if len(diags) != 1 {
		t.Fatalf("%d \"policy error\" objects, want 1 (each diagnostic once):\n%s", len(diags), d.text())
	}
	m := diags[0]
	want := map[string]interface{}{"file": pol, "line": float64(8), "column": float64(14), "snippet": `    class  = "web"`}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if msg, _ := m["message"].(string); !strings.Contains(msg, "Unknown class") || !strings.Contains(msg, "web") {
		t.Errorf("message = %q", msg)
	}
}

// A policy with an error at start: each diagnostic printed once, and the
// final error does not repeat it (nor print "<nil>").
func TestRunDiagnosticsOnce(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "node.hcl")
	src := "class \"batch\" {\n  match = [\"batch.slice/*\"]\n  bogus = 1\n}\n"
	if err := os.WriteFile(pol, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := dispatch([]string{"run", "--config", pol, "--allow-insecure-config", "--dry-run", "--no-bpf",
		"--state-dir", t.TempDir(), "--metrics-addr", "", "--control-socket", "none"}, &out, &errOut)
	text := errOut.String()
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, text)
	}
	if n := strings.Count(text, "Unsupported argument"); n != 1 {
		t.Errorf("the diagnostic appears %d times, want once:\n%s", n, text)
	}
	if strings.Contains(text, "<nil>") {
		t.Errorf("prints <nil>:\n%s", text)
	}
	if !strings.Contains(text, "node.hcl") || !strings.Contains(text, "line=3") {
		t.Errorf("no position:\n%s", text)
	}
}

// hostFullSrc: the host's memory is stalled (a last resort's trigger) and
// batch.slice/runaway is the only member of its class.
type hostFullSrc struct{}

func (hostFullSrc) Name() string { return "fake" }
func (hostFullSrc) Sample(_ context.Context, snap *governor.Snapshot) error {
	snap.Host = &governor.Sample{}
	snap.Host.Set(governor.MemoryFullAvg10, 80)
	b := &governor.Sample{Ref: governor.Ref{ID: 3, Path: "batch.slice/runaway"}, Populated: true}
	b.Set(governor.MemoryCurrent, 1<<30)
	snap.Cgroups = append(snap.Cgroups, b)
	return nil
}

// Each action is one log line, the audit's, carrying everything: a
// suppress write and restore for real, and a last-resort freeze in
// dry-run, whose line says it would be done and whose time carries no
// monotonic clock reading.
func TestOneLinePerAction(t *testing.T) {
	run := func(t *testing.T, pol *governor.Policy, src governor.Source, dry bool, steps int) (string, []governor.Action) {
		var mu sync.Mutex
		var buf bytes.Buffer
		log := hclog.New(&hclog.LoggerOptions{Name: "governor", Output: lockedWriter{&mu, &buf}, Level: hclog.Info})
		o := newOps(opsFlags{}, t.TempDir(), t.TempDir(), log)
		var acts []governor.Action
		loop, err := governor.New(governor.Config{
			Policy: pol, Sources: []governor.Source{src}, Actuator: govtest.NewActuator(), Logger: log.Named("loop"),
			Caps:     governor.Capabilities{Controllers: map[string]bool{"cpu": true, "memory": true}, Freeze: true, Kill: true},
			DryRun:   dry,
			OnAction: func(a governor.Action) { acts = append(acts, a); o.onAction(a) },
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < steps; i++ {
			if err := loop.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		if err := loop.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return buf.String(), acts
	}
	t.Run("suppress", func(t *testing.T) {
		text, acts := run(t, squeezePolicy(), fakeSrc{}, false, 3)
		if len(acts) != 2 {
			t.Fatalf("want a write and a restore, got %+v\n%s", acts, text)
		}
		if n := actionLines(text, "batch.slice/job1"); n != len(acts) {
			t.Errorf("%d lines name the cgroup for %d actions:\n%s", n, len(acts), text)
		}
		for _, want := range []string{"governor.audit: action: controller=squeeze cgroup=batch.slice/job1 knob=cpu.weight old=100 new=50 kind=write",
			"kind=restore why=\"governor stopping\""} {
			if !strings.Contains(text, want) {
				t.Errorf("log lacks %q:\n%s", want, text)
			}
		}
	})
	t.Run("dry-run freeze", func(t *testing.T) {
		pol := &governor.Policy{
			Classes: []governor.Class{{Name: "batch", Match: []string{"batch.slice/*"}}},
			LastResort: []governor.LastResortController{{Name: "lr", Target: "batch", Grace: 20 * time.Second, Kill: false,
				Trigger: governor.Trigger{When: []governor.Condition{{Scope: governor.ScopeHost, Signal: governor.MemoryFullAvg10, Op: governor.Above, Value: 40}}}}},
		}
		text, acts := run(t, pol, hostFullSrc{}, true, 2)
		if len(acts) != 2 || acts[0].Kind != "freeze" || acts[1].Kind != "thaw" {
			t.Fatalf("want a freeze and the thaw at exit, got %+v\n%s", acts, text)
		}
		if n := actionLines(text, "batch.slice/runaway"); n != len(acts) {
			t.Errorf("%d lines name the cgroup for %d actions:\n%s", n, len(acts), text)
		}
		var freeze string
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, "kind=freeze") {
				freeze = l
			}
		}
		for _, want := range []string{"[WARN]", "would act (dry-run: nothing written)", "stays frozen until it recovers (kill = false)", "dry_run=true"} {
			if !strings.Contains(freeze, want) {
				t.Errorf("freeze line lacks %q: %s", want, freeze)
			}
		}
		if strings.Contains(text, "kill_after") || strings.Contains(text, "m=+") {
			t.Errorf("kill_after or a monotonic clock reading in the log:\n%s", text)
		}
		i := strings.Index(freeze, "at=")
		if i < 0 {
			t.Fatalf("no at: %s", freeze)
		}
		at := strings.Fields(freeze[i+3:])[0]
		if ts, err := time.Parse(time.RFC3339Nano, at); err != nil || ts.Location() != time.UTC {
			t.Errorf("at=%s is not RFC 3339 in UTC: %v", at, err)
		}
	})
}

// actionLines counts the log lines naming cgroup, but for the periodic
// pressure report (an observation, not an action).
func actionLines(text, cgroup string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, cgroup) && !strings.Contains(l, " pressure: ") {
			n++
		}
	}
	return n
}

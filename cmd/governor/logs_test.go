package main

import (
	"bufio"
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
)

// buildBinary builds the governor binary once per test binary run.
var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "governor-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "governor")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// testDaemon is a running governor whose stderr is collected line by line.
type testDaemon struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func startDaemon(t *testing.T, bin string, args ...string) *testDaemon {
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
	d := startDaemon(t, bin, "run", "--log-json", "--dry-run", "--no-bpf", "--config", pol,
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

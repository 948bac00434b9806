package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestValidateExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.hcl")
	if len(files) < 3 {
		t.Fatalf("want at least three example policies, found %v", files)
	}
	for _, f := range files {
		var out, errOut bytes.Buffer
		if code := dispatch([]string{"validate", f}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d\n%s", f, code, errOut.String())
		}
	}
}

func TestValidateBrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.hcl")
	src := "class \"batch\" {\n  match = [\"batch.slice/*\"]\n}\n\nsuppress \"s\" {\n  target = \"batch\"\n  when {\n    class  = \"web\"\n    signal = \"cpu.some.avg10\"\n    above  = \"10%\"\n  }\n  knob \"cpu.weight\" { step = \"50%\" }\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := dispatch([]string{"validate", path}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut.String())
	}
	msg := errOut.String()
	// file:line, the offending source line and the unknown class name.
	for _, want := range []string{"broken.hcl:8:14: error: Unknown class", `class  = "web"`, "web"} {
		if !strings.Contains(msg, want) {
			t.Errorf("diagnostic lacks %q:\n%s", want, msg)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := dispatch(nil, &out, &errOut); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
	if code := dispatch([]string{"frobnicate"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code := dispatch([]string{"run", "--log-level", "loud"}, &out, &errOut); code != 2 {
		t.Errorf("bad log level: exit %d", code)
	}
	errOut.Reset()
	if code := dispatch([]string{"run", "--metrics-cgroup-limit", "-1"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--metrics-cgroup-limit") {
		t.Errorf("negative metrics cgroup limit: exit %d, %q", code, errOut.String())
	}
	out.Reset()
	if code := dispatch([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "governor ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// TestRunDryRunOnHost runs the real binary on this machine's cgroup2
// hierarchy: it must start, report the controllers, log pressure, and exit
// 0 on SIGTERM.
func TestRunDryRunOnHost(t *testing.T) {
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
	cmd := exec.Command(bin, "run", "--dry-run", "--state-dir", t.TempDir(), "--metrics-addr", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log strings.Builder
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "pressure: cgroup=host") {
				once.Do(func() { close(seen) })
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-seen:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no pressure report within 60s")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	mu.Lock()
	text := log.String()
	mu.Unlock()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, text)
	}
	for _, want := range []string{"cgroup2 hierarchy: root=", "controllers=", "pressure: cgroup=host", "cpu.some.avg10=", "stopped cleanly"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
}

// TestRunEarlySIGTERM: a SIGTERM while the daemon is still starting (BPF
// load) ends in a clean stop, not death by the default signal action.
func TestRunEarlySIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := filepath.Join(t.TempDir(), "governor")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// SIGTERM as soon as the daemon says "starting" (the handler is in
	// place by then, the cgroup probe and the BPF load still to come), and
	// a little later, in the middle of them.
	for _, extra := range []time.Duration{0, 20 * time.Millisecond, 80 * time.Millisecond} {
		cmd := exec.Command(bin, "run", "--dry-run", "--state-dir", t.TempDir(), "--metrics-addr", "", "--control-socket", "none")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "starting") {
				break
			}
		}
		time.Sleep(extra)
		cmd.Process.Signal(syscall.SIGTERM)
		go io.Copy(io.Discard, stderr)
		if err := cmd.Wait(); err != nil {
			t.Errorf("SIGTERM %s after start: %v\n%s", extra, err, out.String())
		}
	}
}

// The daemon runs on one P unless GOMAXPROCS is set.
func TestSetMaxProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(old)
	setMaxProcs("")
	if got := runtime.GOMAXPROCS(0); got != defaultMaxProcs {
		t.Errorf("without GOMAXPROCS: %d, want %d", got, defaultMaxProcs)
	}
	runtime.GOMAXPROCS(2)
	setMaxProcs("2") // the runtime applied GOMAXPROCS=2 at start
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("with GOMAXPROCS set: changed to %d", got)
	}
}

// The daemon collects garbage at GOGC=50 unless GOGC is set.
func TestSetGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	setGCPercent("")
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, defaultGCPercent)
	}
	setGCPercent("200") // the runtime read GOGC=200 at start; here it stays 100
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: GC percent changed to %d", got)
	}
}

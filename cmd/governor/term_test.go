package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"github.com/governor-dev/governor/governor"
	"github.com/governor-dev/governor/governor/control"
)

// A cgroup name may hold any byte but '/' and NUL.
const evilName = "batch.slice/evil\x1b]0;owned\x07\x1b[2J\x7fname\xff\xfe\u0085\u202e.scope"

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"batch.slice/job-17.scope":              "batch.slice/job-17.scope",
		"system-systemd\\x2dfsck.slice":         "system-systemd\\x2dfsck.slice", // systemd's escapes stay
		"a → b — ü 日本":                          "a → b — ü 日本",
		"esc\x1b[31mred":                        `esc\x1b[31mred`,
		"del\x7f tab\t nl\n":                    `del\x7f tab\x09 nl\x0a`,
		"c1\u0085 \u009b bidi\u202e":            `c1\u0085 \u009b bidi\u202e`,
		"bad\xff\xfe utf8\xe2\x82":              `bad\xff\xfe utf8\xe2\x82`,
		string([]byte{'o', 'k', 0xc3, 0xa9, 0}): `oké\x00`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func evilCgroups() []governor.CgroupStatus {
	return []governor.CgroupStatus{{
		Ref: governor.Ref{ID: 9, Path: evilName}, Class: "batch",
		Signals: map[string]float64{"cpu.some.avg10": 5},
		Knobs:   []governor.KnobStatus{{Knob: "cpu.weight", Value: "50", Original: "100"}},
		Last:    &governor.Action{Time: time.Now(), Controller: "squeeze", Kind: "write", Knob: "cpu.weight", Old: "100", New: "50", Reason: "why\x1b[2J"},
	}}
}

// status and explain print names from the daemon escaped: no terminal
// control, no invalid UTF-8 reaches the terminal.
func TestStatusExplainEscapeNames(t *testing.T) {
	sock := fixtureDaemon(t, evilCgroups()...)
	for _, args := range [][]string{{"status", "--socket", sock}, {"explain", "--socket", sock, evilName}} {
		var out, errOut bytes.Buffer
		if code := dispatch(args, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d %s", args[0], code, errOut.String())
		}
		text := out.String()
		if bad := unsafeForTerminal(text); bad != "" {
			t.Errorf("%s prints %s:\n%q", args[0], bad, text)
		}
		// The control socket speaks JSON, which carries invalid UTF-8 as
		// U+FFFD; the rest arrives as it is and is escaped here.
		if !strings.Contains(text, "evil\\x1b]0;owned\\x07\\x1b[2J\\x7fname\ufffd\ufffd\\u0085\\u202e.scope") {
			t.Errorf("%s: name not shown escaped:\n%s", args[0], text)
		}
	}
}

// unsafeForTerminal names the first control character or invalid UTF-8 in
// text but for newlines, or returns "".
func unsafeForTerminal(text string) string {
	if !utf8.ValidString(text) {
		return "invalid UTF-8"
	}
	for _, r := range text {
		if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x202e) {
			return fmt.Sprintf("%U", r)
		}
	}
	return ""
}

func manyLongCgroups() []governor.CgroupStatus {
	cgs := evilCgroups()
	for i := 0; i < 60; i++ {
		p := fmt.Sprintf("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%032d.slice/cri-containerd-%064d.scope", i, i)
		cgs = append(cgs, governor.CgroupStatus{Ref: governor.Ref{ID: governor.CgroupID(100 + i), Path: p}, Class: "batch",
			Signals: map[string]float64{"cpu.some.avg10": float64(i)}})
	}
	return cgs
}

// top on an 80x24 terminal (a pseudo-terminal): every frame fits — at
// most 24 lines of at most 80 columns, the header first — so nothing
// wraps and pushes the header off; names are escaped; q quits.
func TestTopOnTerminal(t *testing.T) {
	bin := buildBinary(t)
	sock := fixtureDaemon(t, manyLongCgroups()...)
	cmd := exec.Command(bin, "top", "--socket", sock, "--interval", "100ms")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			mu.Lock()
			out.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	frames := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(out.String(), "\x1b[H\x1b[2J")
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(frames()) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ptmx.Write([]byte("q"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("q did not quit top")
	}
	fs := frames()
	if len(fs) < 4 {
		t.Fatalf("%d frames in 20 s:\n%q", len(fs)-1, out.String())
	}
	if testing.Verbose() {
		t.Logf("a frame:\n%s", strings.ReplaceAll(fs[2], "\r\n", "\n"))
	}
	for i, f := range fs[1 : len(fs)-1] { // whole frames only
		f = strings.ReplaceAll(f, "\r\n", "\n") // the terminal's ONLCR
		lines := strings.Split(f, "\n")
		if len(lines) > 24 {
			t.Errorf("frame %d: %d lines on a 24-line terminal", i, len(lines))
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > 80 {
				t.Errorf("frame %d: a line of %d columns on an 80-column terminal: %q", i, n, l)
			}
		}
		if !strings.HasPrefix(lines[0], "governor at ") || !strings.Contains(f, "CPU PSI%") || !strings.HasSuffix(f, "(q or Ctrl-C quits)") {
			t.Errorf("frame %d: header, column title or footer missing:\n%s", i, f)
		}
		if bad := unsafeForTerminal(f); bad != "" {
			t.Errorf("frame %d prints %s:\n%q", i, bad, f)
		}
	}
}

// top with its output not on a terminal prints plain frames: no escape
// codes, nothing clipped.
func TestTopNotATerminal(t *testing.T) {
	bin := buildBinary(t)
	sock := fixtureDaemon(t, manyLongCgroups()...)
	cmd := exec.Command(bin, "top", "--socket", sock, "--interval", "100ms", "-n", "5")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("top: %v", err)
	}
	text := out.String()
	if n := strings.Count(text, "governor at "); n < 2 {
		t.Fatalf("%d frames:\n%s", n, text)
	}
	if strings.Contains(text, "\x1b") {
		t.Errorf("escape codes in piped output:\n%q", text)
	}
	if !strings.Contains(text, fmt.Sprintf("cri-containerd-%064d.scope", 59)) {
		t.Errorf("a long name was clipped:\n%s", text)
	}
}

// renderStatus itself escapes invalid UTF-8 byte by byte.
func TestRenderStatusEscapesInvalidUTF8(t *testing.T) {
	var b bytes.Buffer
	st := &control.Status{Cgroups: []control.Cgroup{{Path: evilName, Class: "batch"}}}
	renderStatus(&b, st, time.Now())
	if bad := unsafeForTerminal(b.String()); bad != "" {
		t.Errorf("prints %s:\n%q", bad, b.String())
	}
	if !strings.Contains(b.String(), `evil\x1b]0;owned\x07\x1b[2J\x7fname\xff\xfe\u0085\u202e.scope`) {
		t.Errorf("name not escaped byte by byte:\n%s", b.String())
	}
}

// The real daemon on this host's cgroup2 hierarchy, with cgroups whose
// names hold ESC, BEL, DEL and a byte that is not UTF-8 (mkdir takes any
// byte but '/' and NUL): status and explain print them escaped.
func TestEscapedNamesOnHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skip("no cgroup2 hierarchy at " + root)
	}
	parent := fmt.Sprintf("governor-esc-%d", os.Getpid())
	names := []string{"evil\x1b[2J\x7f\xff", "evil\x1b]0;owned\x07"}
	if err := os.Mkdir(filepath.Join(root, parent), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range names {
			os.Remove(filepath.Join(root, parent, n))
		}
		os.Remove(filepath.Join(root, parent))
	})
	for _, n := range names {
		if err := os.Mkdir(filepath.Join(root, parent, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pol := filepath.Join(t.TempDir(), "esc.hcl")
	if err := os.WriteFile(pol, []byte(fmt.Sprintf("class \"esc\" {\n  match = [%q]\n}\n", parent+"/*")), 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	d := startJSONDaemon(t, buildBinary(t), "run", "--dry-run", "--no-bpf", "--config", pol, "--cgroup-root", root,
		"--state-dir", state, "--metrics-addr", "")
	d.wait(t, "control socket listening")
	sock := filepath.Join(state, "control.sock")
	var text string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var out, errOut bytes.Buffer
		dispatch([]string{"status", "--socket", sock}, &out, &errOut)
		if text = out.String(); strings.Count(text, parent+"/evil") >= 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if bad := unsafeForTerminal(text); bad != "" {
		t.Errorf("status prints %s:\n%q", bad, text)
	}
	for _, want := range []string{parent + `/evil\x1b[2J\x7f` + "\ufffd", parent + `/evil\x1b]0;owned\x07`} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	var out, errOut bytes.Buffer
	if code := dispatch([]string{"explain", "--socket", sock, parent + "/" + names[1]}, &out, &errOut); code != 0 {
		t.Fatalf("explain: exit %d %s", code, errOut.String())
	}
	if bad := unsafeForTerminal(out.String()); bad != "" || !strings.Contains(out.String(), `evil\x1b]0;owned\x07`) {
		t.Errorf("explain prints %q", out.String())
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
}

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of the daemon as a process (issue "Trust boundaries", cases 4, 12,
// 15, 16): signals, one daemon per hierarchy, a broken stderr, privileges.
// They build and run the real binary.

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// governorBinary builds the daemon once per test run, into a directory
// every user can read (tests run it as nobody too).
func governorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "governor-bin-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		builtBin = filepath.Join(dir, "governor")
		build := exec.Command("go", "build", "-o", builtBin, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// proc is a running `governor run` whose stderr is collected.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	line chan string
	done chan error
	// exited is closed once the process is reaped.
	exited chan struct{}
}

func startDaemon(t *testing.T, cred *syscall.Credential, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(governorBinary(t), append([]string{"run"}, args...)...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return startCmd(t, cmd)
}

// startCmd starts cmd, collecting its stderr.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	d := &proc{cmd: cmd, line: make(chan string, 1024), done: make(chan error, 1), exited: make(chan struct{})}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.line <- sc.Text():
			default:
			}
		}
		d.done <- d.cmd.Wait()
		close(d.exited)
		close(d.line)
	}()
	// Killed and reaped before the next test starts: a daemon left alive
	// would still hold the hierarchy's lock.
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("daemon pid %d not reaped 10 s after SIGKILL", d.cmd.Process.Pid)
		}
	})
	return d
}

func (d *proc) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// waitFor waits for a log line containing s.
func (d *proc) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case l, ok := <-d.line:
			if !ok {
				t.Fatalf("daemon exited before logging %q:\n%s", s, d.output())
			}
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within %v:\n%s", s, within, d.output())
		}
	}
}

// exit waits for the daemon to end; it is killed (and the test fails)
// after within.
func (d *proc) exit(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-d.done:
		return err
	case <-time.After(within):
		d.cmd.Process.Kill()
		<-d.done
		t.Fatalf("daemon still running %v later:\n%s", within, d.output())
		return nil
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

const hostRoot = "/sys/fs/cgroup/unified"

func needHostRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(filepath.Join(hostRoot, "cgroup.procs")); err != nil {
		t.Skip("no cgroup2 hierarchy at " + hostRoot)
	}
}

// writePolicy writes a policy whose one class matches no cgroup.
func writePolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte("class \"none\" {\n  match = [\"governor-test-no-such-cgroup/*\"]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Case 4: a reload blocked on a FIFO named *.hcl used to hold the one
// goroutine that handled every signal, so SIGTERM went unanswered. Now
// the stop is prompt, during a blocked reload and during a blocked
// start-up policy load alike, and exits cleanly.
func TestSIGTERMDuringBlockedPolicyLoad(t *testing.T) {
	needHostRoot(t)
	common := []string{"--no-bpf", "--cgroup-root", hostRoot, "--metrics-addr", "", "--control-socket", "none"}

	t.Run("reload", func(t *testing.T) {
		policy := writePolicy(t)
		d := startDaemon(t, nil, append(common, "--config", policy, "--state-dir", t.TempDir())...)
		d.waitFor(t, "governing", 30*time.Second)
		if err := syscall.Mkfifo(filepath.Join(policy, "zz-fifo.hcl"), 0o644); err != nil {
			t.Fatal(err)
		}
		d.cmd.Process.Signal(syscall.SIGHUP)
		time.Sleep(300 * time.Millisecond) // the reload is reading the FIFO now
		sent := time.Now()
		d.cmd.Process.Signal(syscall.SIGTERM)
		if err := d.exit(t, 10*time.Second); err != nil {
			t.Fatalf("exit after SIGTERM during a blocked reload: %v\n%s", err, d.output())
		}
		if took := time.Since(sent); took > 5*time.Second {
			t.Errorf("stopping took %v", took)
		}
		if !strings.Contains(d.output(), "stopped cleanly") {
			t.Errorf("no clean stop:\n%s", d.output())
		}
	})

	// A reload that does not finish is given up after reloadTimeout; the
	// next one works.
	t.Run("abandoned reload", func(t *testing.T) {
		policy := writePolicy(t)
		d := startDaemon(t, nil, append(common, "--config", policy, "--state-dir", t.TempDir())...)
		d.waitFor(t, "governing", 30*time.Second)
		fifo := filepath.Join(policy, "zz-fifo.hcl")
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		d.cmd.Process.Signal(syscall.SIGHUP)
		// Abandoned, or refused outright by a loader that skips FIFOs.
		// ("keeping the running policy" ends both lines; a bare "reload"
		// would match this subtest's temporary directory in the paths.)
		d.waitFor(t, "keeping the running policy", reloadTimeout+5*time.Second)
		if out := d.output(); !strings.Contains(out, "reload did not finish") && !strings.Contains(out, "reload failed") {
			t.Fatalf("a reload blocked on a FIFO neither abandoned nor refused:\n%s", out)
		}
		os.Remove(fifo)
		d.cmd.Process.Signal(syscall.SIGHUP)
		d.waitFor(t, "policy reloaded", 10*time.Second)
		d.cmd.Process.Signal(syscall.SIGTERM)
		if err := d.exit(t, 10*time.Second); err != nil {
			t.Fatalf("exit: %v\n%s", err, d.output())
		}
	})

	t.Run("start-up", func(t *testing.T) {
		policy := writePolicy(t)
		if err := syscall.Mkfifo(filepath.Join(policy, "zz-fifo.hcl"), 0o644); err != nil {
			t.Fatal(err)
		}
		d := startDaemon(t, nil, append(common, "--config", policy, "--state-dir", t.TempDir())...)
		d.waitFor(t, "starting", 30*time.Second)
		time.Sleep(300 * time.Millisecond)
		d.cmd.Process.Signal(syscall.SIGTERM)
		err := d.exit(t, 10*time.Second)
		out := d.output()
		if strings.Contains(out, "governing") {
			t.Fatalf("governed with a FIFO in the policy directory:\n%s", out)
		}
		// A loader that refuses FIFOs outright ends in a policy error
		// (exit 1) before the signal; a blocked one is abandoned (exit 0).
		if code := exitCode(err); code != 0 && !(code == 1 && strings.Contains(out, "policy")) {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})

	// The state file of an earlier run is read before the loop starts:
	// a FIFO there blocked the start for ever, SIGTERM included.
	t.Run("crash recovery", func(t *testing.T) {
		state := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(state, "state.json"), 0o600); err != nil {
			t.Fatal(err)
		}
		d := startDaemon(t, nil, append(common, "--config", writePolicy(t), "--state-dir", state)...)
		d.waitFor(t, "starting", 30*time.Second)
		time.Sleep(time.Second) // policy loaded, reading the state file
		d.cmd.Process.Signal(syscall.SIGTERM)
		if err := d.exit(t, 10*time.Second); err != nil {
			t.Errorf("exit: %v\n%s", err, d.output())
		}
	})
}

// stateFile writes a state file saying an earlier run froze cgroup rel.
func stateFile(t *testing.T, dir, rel string) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(hostRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	b, _ := json.Marshal(map[string]any{"version": 1, "pid": 1, "saved": time.Now().UTC(),
		"entries": []map[string]any{{"id": ino, "path": rel, "knob": "cgroup.freeze", "original": "0", "written": 1, "owner": "test"}}})
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Case 12: nothing stopped two daemons. A second `run` with the same state
// directory took the live one's state for a crash's and its socket; with
// another state directory both governed the same cgroups. Now the second
// exits 1 at once naming the first's pid, and the first goes on; a dry
// run may run beside it with its own state directory. A daemon killed
// with SIGKILL leaves no lock behind: the next start adopts its state.
func TestOneDaemonPerHierarchy(t *testing.T) {
	needHostRoot(t)
	policy := writePolicy(t)
	cg := fmt.Sprintf("governor-test-lock-%d", os.Getpid())
	if err := os.Mkdir(filepath.Join(hostRoot, cg), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(hostRoot, cg, "cgroup.freeze"), []byte("0"), 0)
		os.Remove(filepath.Join(hostRoot, cg))
	})
	base := []string{"--no-bpf", "--cgroup-root", hostRoot, "--metrics-addr", "", "--config", policy}
	stateA := t.TempDir()
	a := startDaemon(t, nil, append(base, "--state-dir", stateA)...)
	a.waitFor(t, "governing", 30*time.Second)
	pidA := strconv.Itoa(a.cmd.Process.Pid)
	sock := filepath.Join(stateA, "control.sock")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"same state dir", []string{"--state-dir", stateA}, "another governor (pid " + pidA + ") governs " + hostRoot + "; state dir " + stateA},
		{"other state dir", []string{"--state-dir", t.TempDir()}, "another governor (pid " + pidA + ") governs " + hostRoot + "; state dir " + stateA},
		{"dry run, same state dir", []string{"--state-dir", stateA, "--dry-run"}, "another governor (pid " + pidA + ") governs " + hostRoot + "; state dir " + stateA + " (locked: " + filepath.Join(stateA, "governor.lock") + "); a --dry-run beside it needs a --state-dir (and --metrics-addr) of its own"},
	} {
		b := startDaemon(t, nil, append(base, tc.args...)...)
		err := b.exit(t, 20*time.Second)
		if out := b.output(); exitCode(err) != 1 || !strings.Contains(out, tc.want) || strings.Contains(out, "governing") {
			t.Errorf("%s: exit %v, want 1 with %q:\n%s", tc.name, err, tc.want, out)
		}
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("%s: the first daemon's control socket is gone: %v", tc.name, err)
		}
		if c, err := net.Dial("unix", sock); err != nil {
			t.Errorf("%s: the first daemon's socket does not answer: %v", tc.name, err)
		} else {
			c.Close()
		}
	}

	// A dry run beside it, with a state directory of its own.
	dry := startDaemon(t, nil, append(base, "--state-dir", t.TempDir(), "--dry-run")...)
	dry.waitFor(t, "governing", 30*time.Second)
	dry.cmd.Process.Signal(syscall.SIGTERM)
	if err := dry.exit(t, 10*time.Second); err != nil {
		t.Errorf("dry run beside a daemon: %v\n%s", err, dry.output())
	}

	// Crash: the first dies by SIGKILL with the cgroup frozen by it (its
	// state file says so); the next start must get the locks and thaw it.
	if err := os.WriteFile(filepath.Join(hostRoot, cg, "cgroup.freeze"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Kill()
	a.exit(t, 10*time.Second)
	stateFile(t, stateA, cg)
	next := startDaemon(t, nil, append(base, "--state-dir", stateA)...)
	next.waitFor(t, "thawed cgroup frozen by an earlier run", 30*time.Second)
	if b, _ := os.ReadFile(filepath.Join(hostRoot, cg, "cgroup.freeze")); strings.TrimSpace(string(b)) != "0" {
		t.Errorf("cgroup.freeze after restart: %q", b)
	}
	next.cmd.Process.Signal(syscall.SIGTERM)
	if err := next.exit(t, 10*time.Second); err != nil {
		t.Errorf("restarted daemon: %v\n%s", err, next.output())
	}
}

// Start-up fails when the control socket or the metrics address cannot be
// bound (they used to be logged and skipped); "" and "none" disable them.
func TestUnboundListenersFailStartUp(t *testing.T) {
	needHostRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	base := []string{"--dry-run", "--no-bpf", "--cgroup-root", hostRoot}
	d := startDaemon(t, nil, append(base, "--state-dir", t.TempDir(), "--metrics-addr", ln.Addr().String())...)
	if err := d.exit(t, 20*time.Second); exitCode(err) != 1 || !strings.Contains(d.output(), "cannot serve metrics on "+ln.Addr().String()) {
		t.Errorf("metrics address in use: %v\n%s", err, d.output())
	}
	// A control socket path whose directory is a file.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	d = startDaemon(t, nil, append(base, "--state-dir", t.TempDir(), "--metrics-addr", "", "--control-socket", filepath.Join(file, "c.sock"))...)
	if err := d.exit(t, 20*time.Second); exitCode(err) != 1 || !strings.Contains(d.output(), "cannot open the control socket") {
		t.Errorf("control socket in a file: %v\n%s", err, d.output())
	}
}

// Case 15: with stderr a pipe whose reader has gone, the next log line
// killed the daemon by SIGPIPE (Go's rule for fd 1 and 2), leaving what
// it had changed behind. Now it lives on, and stops cleanly on SIGTERM.
func TestBrokenStderrPipe(t *testing.T) {
	needHostRoot(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(governorBinary(t), "run", "--dry-run", "--no-bpf", "--cgroup-root", hostRoot, "--state-dir", t.TempDir(),
		"--metrics-addr", "", "--control-socket", "none")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(r)
	for sc.Scan() && !strings.Contains(sc.Text(), "governing") {
	}
	r.Close() // the reader goes away
	// Make it log: a SIGHUP reloads the policy, a SIGUSR1 changes the
	// log level; each logs a line.
	for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGHUP} {
		cmd.Process.Signal(s)
		time.Sleep(150 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("daemon died after its stderr reader went away: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
}

// Case 16: as a user without the privileges it needs, `run` logged
// "governing" with every write failing. Now it refuses with one line
// naming what is missing, before touching anything; --dry-run runs.
func TestRunRefusesWithoutPrivileges(t *testing.T) {
	needHostRoot(t)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	open, err := os.MkdirTemp("", "governor-nobody-") // t.TempDir is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	os.Chmod(open, 0o755)
	state := filepath.Join(open, "state")
	os.Mkdir(state, 0o755)
	os.Chown(state, 65534, 65534)
	base := []string{"--cgroup-root", hostRoot, "--state-dir", state, "--metrics-addr", "", "--control-socket", "none"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"missing privileges", "uid 0 or CAP_DAC_OVERRIDE", "CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN"}},
		{[]string{"--no-bpf"}, []string{"missing privileges", "uid 0 or CAP_DAC_OVERRIDE"}},
	} {
		d := startDaemon(t, nobody, append(base, tc.args...)...)
		err := d.exit(t, 20*time.Second)
		out := strings.TrimSpace(d.output())
		if exitCode(err) != 1 || strings.Count(out, "\n") != 0 {
			t.Errorf("%v as nobody: exit %v, want 1 and one line:\n%s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v as nobody: %q lacks %q", tc.args, out, w)
			}
		}
		if tc.args != nil && strings.Contains(out, "CAP_BPF") {
			t.Errorf("--no-bpf still asks for CAP_BPF: %q", out)
		}
	}
	d := startDaemon(t, nobody, append(base, "--dry-run", "--no-bpf")...)
	d.waitFor(t, "governing", 30*time.Second)
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.exit(t, 10*time.Second); err != nil {
		t.Errorf("--dry-run as nobody: %v\n%s", err, d.output())
	}
}

// Root holding exactly the shipped unit's capabilities (its bounding and
// ambient sets, read from examples/governor.service, with
// SecureBits=noroot-locked) governs with BPF; with them only in the
// bounding set it holds none and is refused.
func TestRunWithMinimalCapabilities(t *testing.T) {
	needHostRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	policy := writePolicy(t)
	args := []string{"--cgroup-root", hostRoot, "--config", policy, "--metrics-addr", "", "--control-socket", "none"}
	bounding, ambient := unitCapabilities(t, "../../examples/governor.service")
	unit := []string{"--bounding-set", "-all," + bounding, "--securebits", "+noroot,+noroot_locked"}
	run := func(extra ...string) *proc {
		return startCmd(t, exec.Command(setpriv, append(append(append(extra, unit...), governorBinary(t), "run", "--state-dir", t.TempDir()), args...)...))
	}
	d := run()
	if err := d.exit(t, 20*time.Second); exitCode(err) != 1 || !strings.Contains(d.output(), "CAP_BPF and CAP_PERFMON") {
		t.Errorf("bounding set only: %v\n%s", err, d.output())
	}
	d = run("--inh-caps", ambient, "--ambient-caps", ambient)
	d.waitFor(t, "governing", 60*time.Second)
	if !strings.Contains(d.output(), "BPF sensing loaded") {
		t.Errorf("BPF not loaded with CAP_BPF and CAP_PERFMON:\n%s", d.output())
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.exit(t, 10*time.Second); err != nil {
		t.Errorf("exit: %v\n%s", err, d.output())
	}
}

// unitCapabilities reads a unit's CapabilityBoundingSet= and
// AmbientCapabilities= as setpriv's lists ("+bpf,+perfmon").
func unitCapabilities(t *testing.T, path string) (bounding, ambient string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A capability this test process lacks itself (a container's bounding
	// set may, e.g. CAP_SYS_RESOURCE) cannot be granted: left out, said.
	held := heldCapabilities(t)
	list := func(key string) string {
		var caps []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, key+"="); ok {
				for _, c := range strings.Fields(v) {
					if n, known := capNumbers[c]; known && held&(1<<n) == 0 {
						t.Logf("%s: %s not held by the test process; left out", key, c)
						continue
					}
					caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
				}
			}
		}
		if len(caps) == 0 {
			t.Fatalf("%s: no %s=", path, key)
		}
		return strings.Join(caps, ",")
	}
	return list("CapabilityBoundingSet"), list("AmbientCapabilities")
}

// capNumbers are the capabilities the shipped unit may name.
var capNumbers = map[string]uint{"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SYS_ADMIN": 21,
	"CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39}

// heldCapabilities is this process's bounding set (CapBnd).
func heldCapabilities(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return 0
}

// The minimal privilege set, decided in missingPrivileges: root with only
// CAP_BPF and CAP_PERFMON (the shipped unit) lacks nothing.
func TestMissingPrivileges(t *testing.T) {
	const bpfCaps = 1<<capBPF | 1<<capPerfmon
	for _, tc := range []struct {
		name      string
		euid      int
		caps      uint64
		bpf, grp  bool
		wantParts int
	}{
		{"shipped unit", 0, bpfCaps, true, false, 0},
		{"root, BPF off, no caps", 0, 0, false, false, 0},
		{"root, no caps", 0, 0, true, false, 1},
		{"root, CAP_SYS_ADMIN instead", 0, 1 << capSysAdmin, true, false, 0},
		{"root, CAP_BPF only", 0, 1 << capBPF, true, false, 1},
		{"control group without CAP_CHOWN", 0, bpfCaps, true, true, 1},
		{"control group with CAP_CHOWN", 0, bpfCaps | 1<<capChown, true, true, 0},
		{"nobody", 65534, 0, true, false, 2},
		{"nobody with CAP_DAC_OVERRIDE", 65534, 1<<capDacOverride | bpfCaps, true, false, 0},
	} {
		if got := missingPrivileges(tc.euid, tc.caps, tc.bpf, tc.grp); len(got) != tc.wantParts {
			t.Errorf("%s: missing %q, want %d parts", tc.name, got, tc.wantParts)
		}
	}
}

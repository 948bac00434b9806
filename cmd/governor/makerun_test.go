package main

import (
	"bufio"
	"io"
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

// `make run`, the README's first command: the daemon is make's own child
// (the recipe's shell exec'ed it), and a SIGTERM to make, or a SIGINT to
// its process group (Ctrl-C on a terminal), stops it cleanly — no daemon
// left running as an orphan.
func TestMakeRunSIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the daemon on the host's cgroup2 hierarchy)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Skip("kernel without PSI")
	}
	bin := filepath.Join(t.TempDir(), "governor")
	t.Run("SIGTERM to make", func(t *testing.T) { makeRun(t, bin, false) })
	t.Run("SIGINT to the group", func(t *testing.T) { makeRun(t, bin, true) })
}

func makeRun(t *testing.T, bin string, group bool) {
	state := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", "../..", "run", "BIN="+bin,
		"ARGS=--dry-run --no-bpf --state-dir "+state+" --metrics-addr '' --control-socket none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group: only make gets the SIGTERM
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var mu sync.Mutex
	var log strings.Builder
	governing := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "governing:") {
				once.Do(func() { close(governing) })
			}
		}
		io.Copy(io.Discard, out)
	}()
	text := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	select {
	case <-governing:
	case <-time.After(5 * time.Minute): // the first build with -trimpath compiles everything
		t.Fatalf("make run: the daemon did not start:\n%s", text())
	}
	kids, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(kids))
	if len(f) != 1 {
		t.Fatalf("make's children: %q, want the daemon alone", kids)
	}
	daemon, _ := strconv.Atoi(f[0])
	if exe, _ := os.Readlink("/proc/" + f[0] + "/exe"); exe != bin {
		t.Fatalf("make's child is %s, want the daemon %s (exec'ed by the recipe)", exe, bin)
	}
	if group {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	} else {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("make did not end after the signal:\n%s", text())
	}
	// make reaped it, so its pid is gone (an orphan would live on under init).
	if err := syscall.Kill(daemon, 0); err != syscall.ESRCH {
		t.Errorf("daemon pid %d still exists after make ended: %v", daemon, err)
	}
	if !strings.Contains(text(), "stopped cleanly") {
		t.Errorf("the daemon did not stop cleanly:\n%s", text())
	}
}

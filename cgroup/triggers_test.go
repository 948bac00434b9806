package cgroup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
	"github.com/hashicorp/go-hclog"
)

// hostPSI skips when the kernel has no PSI (psi=0); every other failure is
// a failure.
func hostPSI(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/pressure/cpu"); os.IsNotExist(err) {
		t.Skip("no /proc/pressure (kernel without PSI)")
	}
}

func TestTriggersHost(t *testing.T) {
	hostPSI(t)
	baseline := fdCount(t)
	var logBuf bytes.Buffer
	tr, err := NewTriggers(hclog.New(&hclog.LoggerOptions{Output: &logBuf, Level: hclog.Warn}))
	if err != nil {
		t.Fatal(err)
	}
	fellBack := 0
	// 2 s multiples work without CAP_SYS_RESOURCE; 1 s may fall back.
	for _, tt := range []struct{ window, want, alt time.Duration }{
		{2 * time.Second, 2 * time.Second, 2 * time.Second},
		{4 * time.Second, 4 * time.Second, 4 * time.Second},
		{time.Second, time.Second, 2 * time.Second},
		{3 * time.Second, 3 * time.Second, 4 * time.Second},
	} {
		eff, err := tr.Add(governor.Ref{}, "/proc/pressure/cpu", false, tt.window/10, tt.window)
		if err != nil {
			t.Fatalf("window %v: %v", tt.window, err)
		}
		if eff != tt.window {
			fellBack++
		}
		if eff != tt.want && eff != tt.alt {
			t.Errorf("window %v: effective %v, want %v or %v", tt.window, eff, tt.want, tt.alt)
		}
	}
	t.Logf("%d of 4 windows fell back to a 2s multiple", fellBack)
	// The fallback is logged once, however often it happens.
	if got, want := strings.Count(logBuf.String(), "CAP_SYS_RESOURCE"), min(fellBack, 1); got != want {
		t.Errorf("fallback logged %d times after %d fallbacks, want %d:\n%s", got, fellBack, want, logBuf.String())
	}
	if n := tr.Len(); n != 4 {
		t.Errorf("%d triggers, want 4", n)
	}
	// Bad arguments and files leave nothing open.
	for _, bad := range []struct {
		path          string
		stall, window time.Duration
	}{
		{"/proc/pressure/cpu", 0, 2 * time.Second},
		{"/proc/pressure/cpu", 3 * time.Second, 2 * time.Second},
		{"/proc/pressure/nope", time.Millisecond, 2 * time.Second},
		{filepath.Join(t.TempDir(), "cpu.pressure"), time.Millisecond, 2 * time.Second},
	} {
		if _, err := tr.Add(governor.Ref{ID: 5}, bad.path, false, bad.stall, bad.window); err == nil {
			t.Errorf("Add(%s, %v, %v): no error", bad.path, bad.stall, bad.window)
		}
	}
	tr.Remove(5)
	tr.Remove(0)
	if n := tr.Len(); n != 0 {
		t.Errorf("%d triggers after Remove, want 0", n)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	waitFDs(t, baseline)
}

func TestPressureFile(t *testing.T) {
	root := t.TempDir()
	mkCgroup(t, root, "a/b", nil)
	if p, err := PressureFile(root, governor.Ref{}, "memory"); err != nil || p != "/proc/pressure/memory" {
		t.Errorf("host: %q %v", p, err)
	}
	if p, err := PressureFile(root, governor.Ref{ID: 3, Path: "a/b"}, "io"); err != nil || p != filepath.Join(root, "a/b/io.pressure") {
		t.Errorf("cgroup: %q %v", p, err)
	}
	if _, err := PressureFile(root, governor.Ref{ID: 3, Path: "../x"}, "io"); err == nil {
		t.Error("escape accepted")
	}
	if _, err := PressureFile(root, governor.Ref{ID: 3, Path: "a"}, "disk"); err == nil {
		t.Error("unknown resource accepted")
	}
}

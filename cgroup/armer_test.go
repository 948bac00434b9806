package cgroup

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/governor-dev/governor/governor"
)

// TestArmer arms the host's trigger and refuses a path out of the root,
// then Disarm removes what Arm added.
func TestArmer(t *testing.T) {
	hostPSI(t)
	tr, err := NewTriggers(hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	a := Armer{Triggers: tr, Root: t.TempDir()}
	if err := a.Arm(governor.Ref{}, "cpu", false, 100*time.Millisecond, 2*time.Second); err != nil {
		t.Fatalf("arming the host's cpu trigger: %v", err)
	}
	if err := a.Arm(governor.Ref{ID: 7, Path: "../escape"}, "cpu", false, 100*time.Millisecond, 2*time.Second); err == nil {
		t.Error("armed a trigger outside the root")
	}
	if err := a.Arm(governor.Ref{ID: 8, Path: "gone"}, "memory", true, 100*time.Millisecond, 2*time.Second); err == nil {
		t.Error("armed a trigger on a cgroup that does not exist")
	}
	if n := tr.Len(); n != 1 {
		t.Fatalf("%d triggers after Arm, want 1", n)
	}
	a.Disarm(0)
	if n := tr.Len(); n != 0 {
		t.Errorf("%d triggers after Disarm, want 0", n)
	}
}

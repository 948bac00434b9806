package governor

import (
	"context"
	"strings"
	"testing"
	"time"
)

func admissionClasses() *Policy {
	return &Policy{Classes: []Class{
		{Name: "web", Match: []string{"system.slice/*.service"}, Protected: true},
		{Name: "batch", Match: []string{"batch.slice/**"}},
	}}
}

func TestDefaultAdmissionShape(t *testing.T) {
	a := DefaultAdmission(admissionClasses())
	// host and the protected class "web", each memory and cpu.
	if len(a.Trigger.When) != 4 || len(a.Trigger.Recover) != 4 || a.Origin != "built-in" {
		t.Fatalf("default admission: %+v", a)
	}
	for i, w := range a.Trigger.When {
		r := a.Trigger.Recover[i]
		if w.Op != Above || r.Op != Below || r.Value != w.Value/2 || w.For != 10*time.Second || r.For != 30*time.Second {
			t.Errorf("condition %d: when %+v recover %+v", i, w, r)
		}
		if w.Scope == ScopeClass && w.Class != "web" {
			t.Errorf("unprotected class in the default: %+v", w)
		}
	}
}

func TestAdmissionDefaultHostMemory(t *testing.T) {
	h := newHarness(t, admissionClasses())
	h.src.host.Set(MemorySomeAvg10, 1)
	h.src.host.Set(CPUSomeAvg10, 1)
	h.tick(time.Second)
	vd := h.loop.adm.copyVerdict()
	if !vd.Accepting || vd.Reason != "no admission condition holds" {
		t.Fatalf("idle host: %+v", vd)
	}
	var mem AdmissionCondition
	for _, c := range vd.Conditions {
		if c.Subject == "host" && c.Signal == "memory.some.avg10" {
			mem = c
		}
	}
	if !mem.Present || mem.Headroom != 9 || mem.Threshold != 10 || mem.Value != 1 {
		t.Errorf("host memory condition: %+v", mem)
	}

	h.src.host.Set(MemorySomeAvg10, 12)
	for i := 0; i < 10; i++ {
		h.tick(time.Second)
		if !h.loop.adm.verdict.Accepting {
			t.Fatalf("stopped accepting after %d s, before the 10 s hold", i+1)
		}
	}
	h.tick(time.Second)
	vd = h.loop.adm.copyVerdict()
	if vd.Accepting || !strings.Contains(vd.Reason, "host:memory.some.avg10=12.00% > 10.00%") || !vd.Since.Equal(h.clock.t) {
		t.Fatalf("after 11 s at 12%%: %+v", vd)
	}
	if !strings.Contains(h.logText(), "admission: not accepting batch work") {
		t.Errorf("verdict change not logged:\n%s", h.logText())
	}

	// 6% is under the threshold but above half of it: no recovery.
	h.src.host.Set(MemorySomeAvg10, 6)
	for i := 0; i < 40; i++ {
		h.tick(time.Second)
	}
	if vd = h.loop.adm.copyVerdict(); vd.Accepting || !strings.HasPrefix(vd.Reason, "recovering, waiting for:") {
		t.Fatalf("6%% must not recover: %+v", vd)
	}
	h.src.host.Set(MemorySomeAvg10, 4)
	for i := 0; i < 30; i++ {
		h.tick(time.Second)
	}
	if h.loop.adm.verdict.Accepting {
		t.Fatalf("recovered before 30 s below half")
	}
	h.tick(time.Second)
	if vd = h.loop.adm.copyVerdict(); !vd.Accepting {
		t.Fatalf("not recovered after 31 s at 4%%: %+v", vd)
	}
}

func TestAdmissionClassRecoversOnlyWhenEveryMemberIsBelow(t *testing.T) {
	h := newHarness(t, admissionClasses())
	a := h.src.add(11, "system.slice/a.service")
	b := h.src.add(12, "system.slice/b.service")
	a.Set(CPUSomeAvg10, 50)
	b.Set(CPUSomeAvg10, 0)
	for i := 0; i < 11; i++ {
		h.tick(time.Second)
	}
	vd := h.loop.adm.copyVerdict()
	if vd.Accepting || !strings.Contains(vd.Reason, "class web:cpu.some.avg10=50.00% > 20.00%") {
		t.Fatalf("busy service: %+v", vd)
	}
	// b idle, a still at 15%: below the threshold, not below half.
	a.Set(CPUSomeAvg10, 15)
	for i := 0; i < 60; i++ {
		h.tick(time.Second)
	}
	if h.loop.adm.verdict.Accepting {
		t.Fatal("recovered while one member of the protected class is above half the threshold")
	}
	a.Set(CPUSomeAvg10, 5)
	for i := 0; i < 31; i++ {
		h.tick(time.Second)
	}
	if !h.loop.adm.verdict.Accepting {
		t.Fatalf("not recovered: %+v", h.loop.adm.copyVerdict())
	}
}

func TestAdmissionFromPolicyAndReload(t *testing.T) {
	p := admissionClasses()
	p.Admission = &Admission{Origin: "node.hcl:3", Trigger: Trigger{
		When: []Condition{{Scope: ScopeHost, Signal: IOSomeAvg10, Op: Above, Value: 30}},
	}}
	h := newHarness(t, p)
	h.src.host.Set(IOSomeAvg10, 40)
	h.tick(time.Second)
	vd := h.loop.adm.copyVerdict()
	if vd.Accepting || vd.Origin != "node.hcl:3" || len(vd.Conditions) != 1 || vd.Conditions[0].Headroom != -10 || !vd.Conditions[0].Holding {
		t.Fatalf("policy admission: %+v", vd)
	}
	since := vd.Since

	// A reload keeps the verdict (and its since) instead of flipping it.
	p2 := admissionClasses()
	p2.Admission = p.Admission
	h.loop.SetPolicy(p2)
	h.tick(time.Second)
	if vd = h.loop.adm.copyVerdict(); vd.Accepting || !vd.Since.Equal(since) {
		t.Fatalf("after reload: %+v", vd)
	}
	// Without recover: clears once no condition holds (for the longest For: 0).
	h.src.host.Set(IOSomeAvg10, 1)
	h.tick(time.Second)
	if vd = h.loop.adm.copyVerdict(); !vd.Accepting {
		t.Fatalf("io back to 1%%: %+v", vd)
	}
}

func TestAdmissionMissingSignalNeverHolds(t *testing.T) {
	h := newHarness(t, admissionClasses())
	h.tick(time.Second)
	vd := h.loop.adm.copyVerdict()
	if !vd.Accepting {
		t.Fatalf("%+v", vd)
	}
	for _, c := range vd.Conditions {
		if c.Present || c.Holding {
			t.Errorf("no signals measured, yet %+v", c)
		}
	}
}

func TestAdmissionFromRunningLoop(t *testing.T) {
	h := newHarness(t, admissionClasses())
	h.loop.policy.Tick = 10 * time.Millisecond
	h.src.host.Set(MemorySomeAvg10, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.loop.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	qctx, qcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer qcancel()
	var vd AdmissionVerdict
	for len(vd.Conditions) == 0 { // until the first Step has run
		var err error
		if vd, err = h.loop.Admission(qctx); err != nil {
			t.Fatal(err)
		}
	}
	if !vd.Accepting || len(vd.Conditions) != 4 {
		t.Fatalf("%+v", vd)
	}
}

package governor

import (
	"strings"
	"testing"
	"time"
)

// suppressCPUAndIO is the shape of examples/batch-node.hcl's suppress:
// cpu.weight, cpu.max and io.weight on the batch class.
func suppressCPUAndIO() *Policy {
	p := suppressPolicy()
	p.Suppress[0].Knobs = []SuppressKnob{
		{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 10, Cooldown: 5 * time.Second}},
		{Knob: CPUMax, Step: Step{Percent: 25}, Limits: Limits{Min: 100_000, Cooldown: 5 * time.Second}},
		{Knob: IOWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 10, Cooldown: 5 * time.Second}},
	}
	return p
}

// A stock Debian host: systemd enabled cpu (a unit asked for it) but no
// unit asked for IO accounting. The suppress controller must act with
// cpu.weight and cpu.max and say once that io.weight is impossible and why.
func TestSuppressActsWithPossibleKnobs(t *testing.T) {
	h := newHarness(t, suppressCPUAndIO(), func(c *Config) {
		c.Caps = Capabilities{Root: "/sys/fs/cgroup", Controllers: map[string]bool{"cpu": true, "memory": true, "pids": true}, Freeze: true, Reclaim: true}
	})
	w := h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "batch.slice/job1")
	w.Set(CPUSomeAvg10, 30)
	h.loop.reportCapabilities()
	for i := 0; i < 12; i++ {
		h.tick(time.Second)
	}
	if v := h.act.get(batch, CPUWeight); v >= 100 {
		t.Errorf("cpu.weight not squeezed (%d); writes: %v", v, h.act.writes)
	}
	if v := h.act.get(batch, CPUMax); v == Unlimited {
		t.Errorf("cpu.max not squeezed; writes: %v", h.act.writes)
	}
	for _, w := range h.act.writes {
		if strings.Contains(w, "io.weight") {
			t.Errorf("wrote a knob whose controller is off: %s", w)
		}
	}
	logs := h.logText()
	if strings.Contains(logs, "observing only") {
		t.Errorf("whole controller disabled:\n%s", logs)
	}
	if n := strings.Count(logs, "some knobs of this controller are impossible"); n != 1 {
		t.Errorf("want one line naming the impossible knobs, got %d:\n%s", n, logs)
	}
	for _, want := range []string{"impossible=io.weight", "io controller is not enabled", "IOAccounting=yes"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// enabler is an actuator that gets controllers enabled on the way (as
// systemd does for unit properties).
type enabler struct {
	*fakeActuator
	ctls map[string]bool
}

func (e enabler) EnablesController(ctl string) bool { return e.ctls[ctl] }

// With an actuator that enables the cpu controller itself (systemd), a
// hierarchy where nobody enabled cpu yet does not stop cpu knobs; io stays
// impossible when the actuator cannot enable it either.
func TestActuatorThatEnablesControllers(t *testing.T) {
	act := newFakeActuator()
	h := newHarness(t, suppressCPUAndIO(), func(c *Config) {
		c.Caps = Capabilities{Root: "/sys/fs/cgroup", Controllers: map[string]bool{"memory": true, "pids": true}, Freeze: true}
		c.Actuator = enabler{fakeActuator: act, ctls: map[string]bool{"cpu": true}}
	})
	h.act = act
	w := h.src.add(web, "system.slice/web.service")
	h.src.add(batch, "batch.slice/job1")
	w.Set(CPUSomeAvg10, 30)
	h.loop.reportCapabilities()
	for i := 0; i < 12; i++ {
		h.tick(time.Second)
	}
	if v := act.get(batch, CPUWeight); v >= 100 {
		t.Errorf("cpu.weight not squeezed (%d); writes: %v", v, act.writes)
	}
	// cpu.idle only where the actuator says it enables cpu for it too
	// (systemd 252+: CPUWeight=idle).
	idle := &knobCtl{ctlName: "idle", knobs: []knobMove{{knob: CPUIdle}}}
	if f := feasibility(idle, h.cfg.Caps, h.cfg.Actuator); f.Whole == "" {
		t.Errorf("cpu.idle counted as enabled by an actuator that does not say so: %+v", f)
	}
	both := enabler{fakeActuator: act, ctls: map[string]bool{"cpu": true, "cpu.idle": true}}
	if f := feasibility(idle, h.cfg.Caps, both); f.Whole != "" || len(f.Via) != 1 || f.Via[0].Knob != CPUIdle {
		t.Errorf("cpu.idle through systemd's CPUWeight=idle: %+v", f)
	}
	if f := feasibility(idle, h.cfg.Caps, enabler{fakeActuator: act, ctls: map[string]bool{"cpu.idle": true}}); f.Whole == "" {
		t.Errorf("cpu.idle without cpu: %+v", f)
	}
	logs := h.logText()
	for _, want := range []string{"impossible=io.weight", "systemd enables it", `knobs="cpu.weight cpu.max"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestPlan(t *testing.T) {
	p := suppressCPUAndIO()
	p.Protect = []ProtectController{{Name: "keep", Target: "web", Low: 1 << 30}}
	p.Reclaim = []ReclaimController{{Name: "rc", Target: "batch", Signal: MemorySomeStall, Goal: 1, Step: Step{Percent: 5}}}
	p.LastResort = []LastResortController{{Name: "lr", Target: "batch"}}
	for _, tc := range []struct {
		name string
		caps Capabilities
		want map[string]string // controller -> "whole" | impossible knobs | ""
	}{
		{"everything", Capabilities{Controllers: map[string]bool{"cpu": true, "io": true, "memory": true}, Reclaim: true, Freeze: true},
			map[string]string{"squeeze": "", "keep": "", "rc": "", "lr": ""}},
		{"no io", Capabilities{Controllers: map[string]bool{"cpu": true, "memory": true}, Reclaim: true, Freeze: true},
			map[string]string{"squeeze": "io.weight", "keep": "", "rc": "", "lr": ""}},
		{"no cpu no io", Capabilities{Controllers: map[string]bool{"memory": true}, Reclaim: true, Freeze: true},
			map[string]string{"squeeze": "whole", "keep": "", "rc": "", "lr": ""}},
		{"5.10: no memory.reclaim", Capabilities{Controllers: map[string]bool{"cpu": true, "io": true, "memory": true}, Freeze: true},
			map[string]string{"squeeze": "", "keep": "", "rc": "whole", "lr": ""}},
		{"no memory", Capabilities{Controllers: map[string]bool{"cpu": true, "io": true}, Reclaim: true, Freeze: true},
			map[string]string{"squeeze": "", "keep": "whole", "rc": "whole", "lr": ""}},
		{"unknown caps", Capabilities{}, map[string]string{"squeeze": "", "keep": "", "rc": "", "lr": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range Plan(p, tc.caps, nil) {
				got := f.OffNames()
				if f.Whole != "" {
					got = "whole"
				}
				if got != tc.want[f.Controller] {
					t.Errorf("%s: got %q, want %q (%+v)", f.Controller, got, tc.want[f.Controller], f)
				}
			}
		})
	}
}

// Debian 11's 5.10 has no cpu.idle: a cpu.idle rule cannot act whether the
// cpu controller is on or off, and the reason names the kernel, not the
// controller (turning cpu on would not help). Before, the plan said "the
// cpu controller is not enabled" (with a hint to enable it) or, with cpu
// on, nothing at all.
func TestCPUIdleMissingKernel(t *testing.T) {
	idle := &knobCtl{ctlName: "background-idle", knobs: []knobMove{{knob: CPUIdle}}}
	for _, ctls := range []map[string]bool{{"memory": true}, {"memory": true, "cpu": true}} {
		caps := Capabilities{Root: "/sys/fs/cgroup", Controllers: ctls, NoCPUIdle: true}
		f := feasibility(idle, caps, enabler{fakeActuator: newFakeActuator(), ctls: map[string]bool{"cpu": true}})
		if f.Whole != "the kernel has no cpu.idle (needs Linux 5.15+)" {
			t.Errorf("controllers %v: Whole %q, want the kernel named", ctls, f.Whole)
		}
	}
	// With cpu.idle in the kernel and cpu on, it acts.
	caps := Capabilities{Root: "/sys/fs/cgroup", Controllers: map[string]bool{"cpu": true}}
	if f := feasibility(idle, caps, nil); f.Whole != "" || len(f.Off) != 0 {
		t.Errorf("cpu on, kernel with cpu.idle: %+v", f)
	}
}

package governor

import (
	"strings"
	"testing"
	"time"
)

func TestSystemdUnit(t *testing.T) {
	for p, want := range map[string]string{
		"system.slice/systemd-journald.service":                                   "systemd-journald.service",
		"system.slice/systemd-logind.service":                                     "systemd-logind.service",
		"system.slice/systemd-udevd.service/udev":                                 "systemd-udevd.service",
		"system.slice/dbus.service":                                               "dbus.service",
		"system.slice/dbus-broker.service":                                        "dbus-broker.service",
		`system.slice/system-systemd\x2dfsck.slice/systemd-fsck@dev-sda1.service`: "systemd-fsck@dev-sda1.service",
		"system.slice/web.service":                                                "",
		"system.slice/systemd-is-not-a-service.scope":                             "",
		"system.slice": "",
		"user.slice/user-1000.slice/user@1000.service/app.slice/systemd-tmpfiles.service": "",
		"batch.slice/systemd-journald.service":                                            "",
		"systemd-journald.service":                                                        "",
	} {
		if got := systemdUnit(p); got != want {
			t.Errorf("systemdUnit(%q) = %q, want %q", p, got, want)
		}
	}
}

// A policy whose class sweeps up all of system.slice must still leave
// systemd's own services and D-Bus alone (no limit, freeze or kill), log the
// refusal once per cgroup, and act on them only when Config.AllowSystemd
// names them. Protection may still reach them.
func TestDenySystemdServices(t *testing.T) {
	const (
		journald CgroupID = 41
		logind   CgroupID = 42
		dbus     CgroupID = 43
		app      CgroupID = 44
	)
	policy := func() *Policy {
		p := lastResortPolicy(true)
		p.Classes = []Class{{Name: "batch", Match: []string{"system.slice/*"}}}
		p.Suppress = []SuppressController{{
			Name: "squeeze", Target: "batch",
			Trigger: Trigger{When: []Condition{{Scope: ScopeHost, Signal: CPUSomeAvg10, Op: Above, Value: 10}}},
			Knobs:   []SuppressKnob{{Knob: CPUWeight, Step: Step{Percent: 50}, Limits: Limits{Min: 10}}},
		}}
		return p
	}
	run := func(t *testing.T, allow []string) *harness {
		h := newHarness(t, policy(), func(c *Config) { c.AllowSystemd = allow })
		for id, p := range map[CgroupID]string{
			journald: "system.slice/systemd-journald.service",
			logind:   "system.slice/systemd-logind.service",
			dbus:     "system.slice/dbus.service",
			app:      "system.slice/app.service",
		} {
			h.src.add(id, p).Set(MemoryCurrent, float64(int64(id)<<20))
		}
		h.src.host.Set(CPUSomeAvg10, 50)
		h.src.host.Set(MemoryFullAvg10, 60)
		for i := 0; i < 15; i++ {
			h.tick(time.Second)
		}
		return h
	}
	h := run(t, nil)
	for _, id := range []CgroupID{journald, logind, dbus} {
		if h.act.frozen[id] || h.act.killed[id] || h.act.get(id, CPUWeight) != 100 {
			t.Errorf("cgroup %d acted on: %v", id, h.act.writes)
		}
	}
	if h.act.get(app, CPUWeight) == 100 || !h.act.killed[app] {
		t.Errorf("app.service not governed: %v", h.act.writes)
	}
	for _, u := range []string{"systemd-journald.service", "systemd-logind.service", "dbus.service"} {
		if n := strings.Count(h.logText(), "it is systemd's own "+u); n != 1 {
			t.Errorf("refusal of %s logged %d times, want once:\n%s", u, n, h.logText())
		}
	}

	h = run(t, []string{"systemd-logind.service"})
	if h.act.get(logind, CPUWeight) == 100 {
		t.Errorf("allowed systemd-logind.service not governed: %v", h.act.writes)
	}
	if h.act.get(journald, CPUWeight) != 100 || h.act.killed[journald] {
		t.Errorf("journald acted on though only logind is allowed: %v", h.act.writes)
	}

	// Protection still reaches them.
	p := &Policy{
		Classes: []Class{{Name: "sys", Match: []string{"system.slice/*"}, Protected: true}},
		Protect: []ProtectController{{Name: "keep", Target: "sys", Low: 1 << 20}},
	}
	h = newHarness(t, p)
	h.src.add(journald, "system.slice/systemd-journald.service")
	h.tick(time.Second)
	if h.act.get(journald, MemoryLow) != 1<<20 {
		t.Errorf("protection did not reach journald: %v", h.act.writes)
	}
}

// TestDenyListValue: the deny list as a value, without a loop.
func TestDenyListValue(t *testing.T) {
	d := newDenyList(&Policy{Classes: []Class{{Name: "web", Protected: true}, {Name: "batch"}}}, "system.slice/governor.service", []string{"systemd-oomd.service"})
	for _, tc := range []struct {
		path, class string
		want        string // substring; "" allowed
		always      bool   // denied even to protection
	}{
		{"", "", "root cgroup", true},
		{"init.scope", "", "init.scope", true},
		{"system.slice/governor.service", "batch", "governor itself", true},
		{"system.slice", "batch", "governor itself", true},
		{"system.slice/web.service", "web", `class "web" is protected`, false},
		{"system.slice/systemd-journald.service", "batch", "systemd's own systemd-journald.service", false},
		{"system.slice/systemd-oomd.service", "batch", "", false},
		{"system.slice/docker.service/systemd-x.service", "batch", "", false},
		{"batch.slice/job1", "batch", "", false},
	} {
		got := d.Denied(tc.path, tc.class)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("Denied(%q, %q) = %q, want %q", tc.path, tc.class, got, tc.want)
		}
		if a := d.Always(tc.path); (a != "") != tc.always {
			t.Errorf("Always(%q) = %q, want denied %v", tc.path, a, tc.always)
		}
	}
}

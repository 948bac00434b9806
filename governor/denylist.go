package governor

import (
	"fmt"
	"slices"
	"strings"
)

// The deny list: cgroups the governor never acts on (the root, init.scope,
// its own cgroup, systemd's own services, protected classes), and the
// checks every effect passes.

// DenyList is the deny list as a value: the cgroups the governor never
// acts on, whatever the policy says. It is built with each policy and
// handed to the controllers in the View.
type DenyList struct {
	// Self is the governor's own cgroup: it and its ancestors are denied.
	Self string
	// AllowSystemd names systemd's own services that may be acted on.
	AllowSystemd []string
	// Protected names the classes never limited, frozen or killed.
	Protected map[string]bool
}

// Denied says why the governor must never act on the cgroup at path, of
// class ("" for none), or "" if it may.
func (d *DenyList) Denied(path, class string) string {
	if why := d.Always(path); why != "" {
		return why
	}
	if class != "" && d.Protected[class] {
		return fmt.Sprintf("its class %q is protected", class)
	}
	if u := systemdUnit(path); u != "" && !slices.Contains(d.AllowSystemd, u) {
		return fmt.Sprintf("it is systemd's own %s (Config.AllowSystemd lifts this)", u)
	}
	return ""
}

func newDenyList(p *Policy, self string, allowSystemd []string) *DenyList {
	d := &DenyList{Self: self, AllowSystemd: allowSystemd, Protected: map[string]bool{}}
	for _, c := range p.Classes {
		if c.Protected {
			d.Protected[c.Name] = true
		}
	}
	return d
}

// denied says why the governor must never act on a cgroup ("" if it may).
func (l *Loop) denied(cg *cgState) string { return cg.deny }

// className is the name of cg's class, "" for none.
func (l *Loop) className(cg *cgState) string {
	if cg.class < 0 {
		return ""
	}
	return l.policy.Classes[cg.class].Name
}

// systemdUnit returns the unit if p is, or is inside, one of the services
// systemd and the rest of the system rely on to manage (and recover) the
// machine: a systemd-*.service or the D-Bus broker directly in system.slice,
// or in a slice there (templated units: system-systemd\x2dfsck.slice).
// Limiting, freezing or killing them can hang logins, logging, device
// handling or systemctl itself. Deeper names do not count, so a delegated
// subtree (system.slice/docker.service/...) cannot name a child
// "systemd-x.service" to escape the policy. Protection (memory.low/min) may
// still reach them.
func systemdUnit(p string) string {
	rest, ok := strings.CutPrefix(p, "system.slice/")
	if !ok {
		return ""
	}
	e := strings.Split(rest, "/")
	if len(e) > 1 && strings.HasSuffix(e[0], ".slice") {
		e = e[1:]
	}
	if e[0] == "dbus.service" || e[0] == "dbus-broker.service" ||
		strings.HasPrefix(e[0], "systemd-") && strings.HasSuffix(e[0], ".service") {
		return e[0]
	}
	return ""
}

// Always covers what even protection may not touch: the root, init.scope
// and the governor's own cgroup and its ancestors.
func (d *DenyList) Always(p string) string {
	switch {
	case p == "":
		return "it is the root cgroup"
	case p == "init.scope" || strings.HasSuffix(p, "/init.scope"):
		return "it is init.scope"
	case d.Self != "" && (p == d.Self || strings.HasPrefix(d.Self, p+"/")):
		return "it holds the governor itself"
	}
	return ""
}

// deniedAlways is Always for cg.
func (l *Loop) deniedAlways(cg *cgState) string { return cg.denyAlways }

// deniedFor says why owner may not cause an effect on knob k of cg ("" if
// it may): the deny list and protected classes, except that a protect
// controller may raise memory.low/min of a protected class. k is noKnob for
// reclaim, freeze and kill. It is the one check for every effect: planned
// writes (set), the executor (exec) and the entries of an earlier run's
// state file (adoptState) all use it.
func (l *Loop) deniedFor(cg *cgState, k Knob, owner string) string {
	if l.protectors[owner] && (k == MemoryLow || k == MemoryMin) {
		return l.deniedAlways(cg)
	}
	return l.denied(cg)
}

// allowed reports whether the governor may act on cg at all, logging a
// refusal once per cgroup.
func (l *Loop) allowed(cg *cgState) bool {
	return l.refuse(cg, l.denied(cg))
}

func (l *Loop) refuse(cg *cgState, why string) bool {
	if why == "" {
		return true
	}
	if !cg.refused {
		cg.refused = true
		l.log.Warn("refusing to act on cgroup", "cgroup", cg.ref.String(), "why", why)
	}
	return false
}

// mayTouch reports whether a controller may change knob k of cg now.
func (l *Loop) mayTouch(cg *cgState, k Knob) bool {
	return l.knobOff[k] == "" && l.allowed(cg) && !cg.handedBack[k] && !cg.unsupported[k]
}

// mayProtect is mayTouch for protection (memory.low/memory.min raised by a
// protect block): a protected class may receive protection, never limits.
func (l *Loop) mayProtect(cg *cgState, k Knob) bool {
	return l.knobOff[k] == "" && l.refuse(cg, l.deniedAlways(cg)) && !cg.handedBack[k] && !cg.unsupported[k]
}

// refuseRecovered logs, once per cgroup and knob, that an entry of an
// earlier run's state file is refused and its cgroup left untouched.
func (l *Loop) refuseRecovered(cg *cgState, ref Ref, knob, owner, why string) {
	args := []interface{}{"cgroup", ref.String(), "knob", knob, "owner", owner, "why", why}
	if cg == nil {
		l.log.Warn("state file entry refused; leaving the cgroup untouched", args...)
		return
	}
	l.warnOnceCG(cg, "state-refused:"+knob, "state file entry refused; leaving the cgroup untouched", args...)
}

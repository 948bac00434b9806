package governor

import (
	"fmt"
	"strings"
)

// ControllerEnabler is implemented by actuators that get a cgroup controller
// enabled on the way when they write one of its knobs: systemd enables cpu
// or io in every ancestor's cgroup.subtree_control as soon as a unit has a
// property that needs it (CPUWeight=, IOWeight=...). With such an actuator
// a controller missing from the hierarchy today does not make its knobs
// impossible. Asked for "cpu.idle", it tells whether it does so for
// cpu.idle too (systemd 252+: CPUWeight=idle).
type ControllerEnabler interface {
	EnablesController(ctl string) bool
}

// Feasibility says what one policy controller can do on a host.
type Feasibility struct {
	Controller string // its name
	Kind       string // "suppress", "rule", ...
	// Whole is why nothing of it can act ("" if something can).
	Whole string
	// Off lists the knobs it cannot use, each with why; the others act.
	Off []KnobOff
	// Via lists the knobs that act only because the actuator gets their
	// controller enabled (systemd), with the controller's name.
	Via []KnobOff
}

// KnobOff is a knob a controller cannot use (or uses through the
// actuator), and why.
type KnobOff struct {
	Knob Knob
	Why  string
}

// OffNames is "cpu.max io.weight" for f.Off.
func (f Feasibility) OffNames() string {
	var n []string
	for _, k := range f.Off {
		n = append(n, k.Knob.String())
	}
	return strings.Join(n, " ")
}

// Plan tells, per controller of p, which of its knobs this host can act on
// given caps and the actuator act (nil: cgroupfs only). It does no I/O; the
// loop uses it when a policy is set and `governor validate --host` prints it.
func Plan(p *Policy, caps Capabilities, act Actuator) []Feasibility {
	var out []Feasibility
	for _, c := range buildControllers(p) {
		out = append(out, feasibility(c, caps, act))
	}
	return out
}

// knobWhy tells why knob k cannot be written on this host ("" if it can),
// and whether it can only because act enables its controller.
func knobWhy(k Knob, caps Capabilities, act Actuator) (why string, via bool) {
	ctl := k.Controller()
	if k == CPUIdle && caps.NoCPUIdle {
		// Whether cpu is on or not: no unit property or controller
		// brings cpu.idle to this kernel.
		return "the kernel has no cpu.idle (needs Linux 5.15+)", false
	}
	if ctl == "" || caps.Controllers == nil || caps.Controllers[ctl] {
		return "", false
	}
	// cpu.idle of a unit goes through CPUWeight=idle where systemd knows
	// that value (252+), which enables cpu like any CPUWeight=: the
	// actuator tells when asked for "cpu.idle".
	if e, ok := act.(ControllerEnabler); ok && e.EnablesController(ctl) && (k != CPUIdle || e.EnablesController("cpu.idle")) {
		return "", true
	}
	return fmt.Sprintf("the %s controller is not enabled in the cgroup2 hierarchy at %s%s", ctl, caps.Root, enableHint(ctl)), false
}

// enableHint names the setting that gets a controller enabled on a systemd
// host, where nobody asked for it yet.
func enableHint(ctl string) string {
	switch ctl {
	case "cpu":
		return " (on a systemd host any CPUWeight= on a unit enables it up the tree, e.g. `systemctl set-property batch.slice CPUWeight=100`)"
	case "io":
		return " (on a systemd host IOAccounting=yes on a unit enables it up the tree, e.g. `systemctl set-property batch.slice IOAccounting=yes`; io.weight then needs the BFQ scheduler or blk-iocost on the device)"
	case "memory":
		return " (on a systemd host MemoryAccounting=yes, the default since systemd 238, enables it)"
	}
	return ""
}

// controllerKnobs lists the knobs a controller writes.
func controllerKnobs(c controller) []Knob {
	switch c := c.(type) {
	case *knobCtl:
		var ks []Knob
		for _, km := range c.knobs {
			ks = append(ks, km.knob)
		}
		return ks
	case *protectCtl:
		var ks []Knob
		if c.c.Low != 0 {
			ks = append(ks, MemoryLow)
		}
		if c.c.Min != 0 {
			ks = append(ks, MemoryMin)
		}
		return ks
	case *memHighCtl:
		return []Knob{MemoryHigh}
	}
	return nil
}

func feasibility(c controller, caps Capabilities, act Actuator) Feasibility {
	f := Feasibility{Controller: c.name(), Kind: c.kind()}
	need := c.needs()
	knobs := controllerKnobs(c)
	if len(knobs) == 0 {
		// Reclaim, last resort: they need a controller as a whole.
		for _, ctl := range need.controllers {
			if caps.Controllers != nil && !caps.Controllers[ctl] {
				f.Whole = fmt.Sprintf("the %s controller is not enabled in the cgroup2 hierarchy at %s%s", ctl, caps.Root, enableHint(ctl))
				return f
			}
		}
		if caps.Controllers != nil {
			if need.reclaim && !caps.Reclaim {
				f.Whole = "the kernel has no memory.reclaim (needs Linux 5.19+ and the memory controller)"
				return f
			}
			if need.freeze && !caps.Freeze {
				f.Whole = "the kernel has no cgroup.freeze (needs Linux 5.2+)"
				return f
			}
		}
		return f
	}
	seen := map[Knob]bool{}
	for _, k := range knobs {
		if seen[k] {
			continue
		}
		seen[k] = true
		why, via := knobWhy(k, caps, act)
		switch {
		case why != "":
			f.Off = append(f.Off, KnobOff{Knob: k, Why: why})
		case via:
			f.Via = append(f.Via, KnobOff{Knob: k, Why: k.Controller()})
		}
	}
	if len(f.Off) == len(seen) {
		var whys []string
		for _, o := range f.Off {
			if !containsStr(whys, o.Why) {
				whys = append(whys, o.Why)
			}
		}
		f.Whole = strings.Join(whys, "; ")
	}
	return f
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

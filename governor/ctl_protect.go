package governor

import (
	"fmt"
	"strings"
)

// protectCtl sets memory.low / memory.min for a class.

type protectCtl struct{ c *ProtectController }

func (p *protectCtl) name() string { return p.c.Name }

func (p *protectCtl) target() string { return p.c.Target }

func (p *protectCtl) forget(id CgroupID) {}

func (p *protectCtl) needs() needs { return needs{controllers: []string{"memory"}} }

func (p *protectCtl) kind() string { return "protect" }

func (p *protectCtl) trigger() *triggers { return nil }

func (p *protectCtl) reads(string) bool { return false }

func (p *protectCtl) next(l *Loop, cg *cgState) string {
	var out []string
	if p.c.Low > 0 {
		out = append(out, "keep memory.low at "+FormatBytes(p.c.Low))
	}
	if p.c.Min > 0 {
		out = append(out, "keep memory.min at "+FormatBytes(p.c.Min))
	}
	return strings.Join(out, "; ")
}

// protections are the knob values the controller keeps (0: not asked).
func (p *protectCtl) protections() [2]struct {
	k Knob
	v int64
} {
	return [...]struct {
		k Knob
		v int64
	}{{MemoryLow, p.c.Low}, {MemoryMin, p.c.Min}}
}

func (p *protectCtl) observe(*Loop, *View) {}

func (p *protectCtl) wants(l *Loop, v *View, w *wants) {
	for _, s := range v.Members[p.c.Target] {
		cg := l.cgs[s.ID]
		for _, kv := range p.protections() {
			if kv.v != 0 && l.managedBy(cg, kv.k) == nil && l.mayProtect(cg, kv.k) {
				w.knob(cg, kv.k)
			}
		}
	}
}

func (p *protectCtl) decide(l *Loop, v *View) []Intent {
	var out []Intent
	for _, s := range v.Members[p.c.Target] {
		cg := l.cgs[s.ID]
		for _, kv := range p.protections() {
			if kv.v == 0 || !l.mayProtect(cg, kv.k) {
				continue
			}
			cur, ok := l.current(cg, kv.k)
			if !ok || cur == kv.v {
				continue
			}
			if m := l.managedBy(cg, kv.k); m == nil && cur > kv.v {
				continue // already protected more than the policy asks
			}
			out = append(out, Intent{Kind: IntentWrite, Controller: p.c.Name, Rule: "protect", Cgroup: cg.ref, Knob: kv.k, Value: kv.v,
				Reason: fmt.Sprintf("protect %s=%s", kv.k, kv.k.FormatValue(kv.v))})
		}
	}
	return out
}

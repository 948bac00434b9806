package governor

import (
	"context"
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

func (p *protectCtl) step(ctx context.Context, l *Loop, v *view) {
	for _, s := range v.members[p.c.Target] {
		cg := l.cgs[s.ID]
		for _, kv := range [...]struct {
			k Knob
			v int64
		}{{MemoryLow, p.c.Low}, {MemoryMin, p.c.Min}} {
			if kv.v == 0 || !l.mayProtect(cg, kv.k) {
				continue
			}
			cur, ok := l.current(ctx, cg, kv.k)
			if !ok || cur == kv.v {
				continue
			}
			if m := l.managedBy(cg, kv.k); m == nil && cur > kv.v {
				continue // already protected more than the policy asks
			}
			l.set(cg, kv.k, kv.v, p.c.Name, fmt.Sprintf("protect %s=%s", kv.k, kv.k.FormatValue(kv.v)))
		}
	}
}

package policies

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/governor-dev/governor/governor"
)

// FuzzLoadSourceInvariants checks what a policy that loads guarantees to
// the loop: every selector passes governor.CheckPattern (relative, no "."
// or "..", so it cannot reach outside the cgroup root), class names are
// unique, every controller targets a declared class, and loading is
// deterministic (the same text gives the same diagnostics).
func FuzzLoadSourceInvariants(f *testing.F) {
	addPolicySeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		r := LoadSource("fuzz.hcl", src)
		again := LoadSource("fuzz.hcl", src)
		// The same diagnostics, though not always in the same order:
		// gohcl decodes a body's attributes and blocks in map order
		// (testdata/fuzz/FuzzLoadSourceInvariants/9aec55a607755ec1).
		if a, b := sortedDiags(r.Diags), sortedDiags(again.Diags); a != b {
			t.Fatalf("non-deterministic diagnostics:\n%s\n---\n%s", a, b)
		}
		p := r.Policy
		if p == nil {
			return
		}
		classes := map[string]bool{}
		for _, c := range p.Classes {
			if classes[c.Name] {
				t.Fatalf("duplicate class %q", c.Name)
			}
			classes[c.Name] = true
			if len(c.Match) == 0 {
				t.Fatalf("class %q matches nothing", c.Name)
			}
			for _, pat := range append(append([]string(nil), c.Match...), c.Exclude...) {
				if err := governor.CheckPattern(pat); err != nil {
					t.Fatalf("class %q: pattern %q accepted: %v", c.Name, pat, err)
				}
				if strings.HasPrefix(pat, "/") {
					t.Fatalf("absolute pattern %q accepted", pat)
				}
			}
		}
		var targets []string
		for _, c := range p.Rules {
			targets = append(targets, c.Target)
		}
		for _, c := range p.Reclaim {
			targets = append(targets, c.Target)
		}
		for _, c := range p.MemHigh {
			targets = append(targets, c.Target)
		}
		for _, c := range p.Suppress {
			targets = append(targets, c.Target)
		}
		for _, c := range p.Protect {
			targets = append(targets, c.Target)
		}
		for _, c := range p.LastResort {
			targets = append(targets, c.Target)
		}
		for _, tg := range targets {
			if !classes[tg] {
				t.Fatalf("controller targets undeclared class %q", tg)
			}
		}
		if p.Tick < 0 || p.ReportEvery < 0 {
			t.Fatalf("negative tick %v or report %v", p.Tick, p.ReportEvery)
		}
	})
}

func sortedDiags(ds hcl.Diagnostics) string {
	lines := make([]string, 0, len(ds))
	for _, d := range ds {
		l := fmt.Sprintf("%d %s: %s", d.Severity, d.Summary, d.Detail)
		if d.Subject != nil {
			l = d.Subject.String() + " " + l
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

package policies

import (
	"slices"
	"testing"
	"time"

	"github.com/governor-dev/governor/governor"
)

func TestLastResortRankAndHook(t *testing.T) {
	const when = `
  when {
    host   = true
    signal = "memory.full.avg10"
    above  = "40%"
  }`
	for _, tt := range []struct {
		name, attrs string
		rank        governor.VictimRank
		hook        []string
		timeout     time.Duration
	}{
		{"defaults", ``, governor.RankMemory, nil, 0},
		{"swap", `rank = "swap"`, governor.RankSwap, nil, 0},
		{"hook with the default timeout", `hook = ["/bin/true"]`, governor.RankMemory, []string{"/bin/true"}, governor.DefaultHookTimeout},
		{"pressure and a hook", "rank = \"pressure\"\nhook = [\"/usr/bin/logger\", \"-t\", \"governor\"]\nhook_timeout = \"2500ms\"",
			governor.RankPressure, []string{"/usr/bin/logger", "-t", "governor"}, 2500 * time.Millisecond},
		{"hook at the longest timeout", "hook = [\"/bin/true\"]\nhook_timeout = \"10s\"", governor.RankMemory, []string{"/bin/true"}, 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := "class \"batch\" { match = [\"batch.slice/*\"] }\nlast_resort \"lr\" {\ntarget = \"batch\"\n" + tt.attrs + when + "\n}\n"
			r := LoadSource("lr.hcl", []byte(src))
			if r.Diags.HasErrors() {
				t.Fatal(r.Diags)
			}
			lr := r.Policy.LastResort[0]
			if lr.Rank != tt.rank || !slices.Equal(lr.Hook, tt.hook) || lr.HookTimeout != tt.timeout {
				t.Errorf("rank %v hook %q timeout %v, want %v %q %v", lr.Rank, lr.Hook, lr.HookTimeout, tt.rank, tt.hook, tt.timeout)
			}
		})
	}
}

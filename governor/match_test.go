package governor

import (
	"math/rand/v2"
	"path"
	"strings"
	"testing"
)

// deepChain is the path of every cgroup on a chain adv/x/x/.../x/leaf of
// the given depth, from the top down.
func deepChain(depth int) []string {
	out := make([]string, 0, depth)
	p := "adv"
	for i := 1; i < depth; i++ {
		p += "/x"
		out = append(out, p)
	}
	return append(out, p+"/leaf.service")
}

// BenchmarkMatchDeepChain classifies each cgroup of a 1,500-deep chain
// against "adv/**/x/**/*.scope", as the loop does when the chain appears
// (the outside tester's case: every step stopped for ~15 s).
func BenchmarkMatchDeepChain(b *testing.B) {
	chain := deepChain(1500)
	for b.Loop() {
		for _, p := range chain {
			if MatchPath("adv/**/x/**/*.scope", p) {
				b.Fatal("matched", p)
			}
		}
	}
}

// BenchmarkMatchManyDoubleStars: ten "**" against a 33-deep path.
func BenchmarkMatchManyDoubleStars(b *testing.B) {
	pat := strings.Repeat("**/", 10) + "y"
	p := strings.Repeat("x/", 32) + "x"
	for b.Loop() {
		if MatchPath(pat, p) {
			b.Fatal("matched")
		}
	}
}

// oldMatchElems is the matcher MatchPath replaced: it tries every split
// point of every "**" in turn (exponential in the number of "**"). It is
// kept as the reference the automaton must agree with.
func oldMatchElems(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if oldMatchElems(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

func oldMatchPath(pattern, p string) bool {
	if p == "" {
		return false
	}
	return oldMatchElems(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

// TestMatchPathAgreesWithOld compares MatchPath with the old matcher on
// many generated patterns and paths, over a small alphabet so that matches
// are frequent, including bad elements ("[") and empty ones.
func TestMatchPathAgreesWithOld(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	patElems := []string{"a", "b", "ab", "*", "**", "?", "a*", "*b", "[ab]", "[!a]*", "", "[", `\a`, "x.scope", "*.scope"}
	pathElems := []string{"a", "b", "ab", "ba", "bb", "x.scope", "a.scope", "", `\a`}
	gen := func(from []string, n int) string {
		e := make([]string, n)
		for i := range e {
			e[i] = from[rng.IntN(len(from))]
		}
		return strings.Join(e, "/")
	}
	matched := 0
	for range 200_000 {
		pat := gen(patElems, 1+rng.IntN(6))
		p := gen(pathElems, rng.IntN(8))
		want := oldMatchPath(pat, p)
		if got := MatchPath(pat, p); got != want {
			t.Fatalf("MatchPath(%q, %q) = %v, the old matcher says %v", pat, p, got, want)
		}
		if want {
			matched++
		}
	}
	if matched < 1000 {
		t.Fatalf("only %d of the generated cases match: the test exercises too little", matched)
	}
	// Long patterns, past the matcher's stack buffer.
	for range 2000 {
		pat := gen(patElems, 10+rng.IntN(20))
		p := gen(pathElems, 5+rng.IntN(25))
		if got, want := MatchPath(pat, p), oldMatchPath(pat, p); got != want {
			t.Fatalf("MatchPath(%q, %q) = %v, the old matcher says %v", pat, p, got, want)
		}
	}
}

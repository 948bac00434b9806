package governor

import (
	"fmt"
	"path"
	"strings"
)

// MatchPath reports whether a cgroup path (relative to the cgroup root, no
// leading slash) matches a class pattern. Patterns are slash-separated; each
// element is matched with path.Match ("*", "?", "[...]"), and an element that
// is exactly "**" matches zero or more whole elements. The root ("") matches
// nothing: the governor never acts on the root.
//
// The match runs the pattern as an automaton over the path's elements,
// keeping the set of pattern positions reached so far: at most one
// path.Match per pattern element and path element, however many "**" the
// pattern has (trying each split point in turn took minutes on a deep
// path).
func MatchPath(pattern, p string) bool {
	if p == "" {
		return false
	}
	pat := strings.Split(pattern, "/")
	var buf [2 * 16]bool
	states := buf[:]
	if n := 2 * (len(pat) + 1); n > len(states) {
		states = make([]bool, n)
	}
	cur, next := states[:len(pat)+1], states[len(pat)+1:2*(len(pat)+1)]
	cur[0] = true
	starClosure(pat, cur)
	for rest := p; ; {
		elem, tail, more := strings.Cut(rest, "/")
		clear(next)
		alive := false
		for i, e := range pat {
			if !cur[i] {
				continue
			}
			if e == "**" {
				next[i], alive = true, true
			} else if matchElem(e, elem) {
				next[i+1], alive = true, true
			}
		}
		if !alive {
			return false
		}
		starClosure(pat, next)
		cur, next = next, cur
		if !more {
			break
		}
		rest = tail
	}
	return cur[len(pat)]
}

// matchElem matches one path element, without path.Match where the
// pattern element is plain text.
func matchElem(pat, name string) bool {
	if !strings.ContainsAny(pat, `*?[\`) {
		return pat == name
	}
	ok, err := path.Match(pat, name)
	return err == nil && ok
}

// starClosure adds the positions reachable without consuming an element: a
// "**" may match nothing, so being before it is being after it too.
func starClosure(pat []string, set []bool) {
	for i, e := range pat {
		if set[i] && e == "**" {
			set[i+1] = true
		}
	}
}

// Limits on class patterns (policies/REFERENCE.md, "Limits"). Matching
// costs at most one element match per pattern element, path element and
// pattern, so these bound the work of classifying one cgroup; real
// patterns have a handful of elements and one or two "**".
const (
	// MaxPatternElems bounds the elements of one pattern.
	MaxPatternElems = 32
	// MaxDoubleStars bounds the "**" elements of one pattern.
	MaxDoubleStars = 4
	// MaxClassPatterns bounds the patterns of one class (match and
	// exclude together).
	MaxClassPatterns = 64
)

// CheckPattern validates a class pattern: relative, no "." or ".." elements,
// no empty elements, every element a valid path.Match pattern, and within
// MaxPatternElems and MaxDoubleStars.
func CheckPattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("empty pattern")
	}
	elems := strings.Split(pattern, "/")
	if len(elems) > MaxPatternElems {
		return fmt.Errorf("pattern has %d elements; the limit is %d", len(elems), MaxPatternElems)
	}
	stars := 0
	for _, e := range elems {
		if e == "**" {
			stars++
		}
	}
	if n := stars; n > MaxDoubleStars {
		return fmt.Errorf("pattern has %d \"**\" elements; the limit is %d", n, MaxDoubleStars)
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("pattern %q contains a control character", pattern)
		}
	}
	if strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("pattern %q must be relative to the cgroup root (no leading '/')", pattern)
	}
	for _, e := range elems {
		switch e {
		case "":
			return fmt.Errorf("pattern %q has an empty path element", pattern)
		case ".", "..":
			return fmt.Errorf("pattern %q may not contain %q: selectors cannot leave the cgroup root", pattern, e)
		case "**":
			continue
		}
		if _, err := path.Match(e, ""); err != nil {
			return fmt.Errorf("pattern %q: bad element %q: %v", pattern, e, err)
		}
	}
	return nil
}

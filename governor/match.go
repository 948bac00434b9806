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
func MatchPath(pattern, p string) bool {
	if p == "" {
		return false
	}
	return matchElems(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

func matchElems(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchElems(rest, name[i:]) {
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

// CheckPattern validates a class pattern: relative, no "." or ".." elements,
// no empty elements, and every element a valid path.Match pattern.
func CheckPattern(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("empty pattern")
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("pattern %q contains a control character", pattern)
		}
	}
	if strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("pattern %q must be relative to the cgroup root (no leading '/')", pattern)
	}
	for _, e := range strings.Split(pattern, "/") {
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

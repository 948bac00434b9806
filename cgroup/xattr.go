package cgroup

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/governor-dev/governor/governor"
)

// Victim hints are extended attributes of a cgroup's directory that tell
// last_resort which cgroup to freeze first (prefer) or only when nothing
// else qualifies (avoid). trusted.* attributes can be set only by root
// (CAP_SYS_ADMIN); user.* ones by whoever owns the cgroup directory, such
// as the user of a delegated subtree (cgroupfs supports them since Linux
// 5.7). So user.* counts for prefer only: a tenant may volunteer its own
// cgroup to go first, but not shield it and push the freeze onto others.
// oomd's names are honoured too, so that cgroups already marked for oomd
// keep their meaning when the governor is the one choosing: "kill me
// first/last" is the same request to any killer.
var hintNames = []struct {
	name string
	hint governor.Hint
}{
	// In order of precedence: the governor's names before oomd's, and
	// within one family avoid before prefer (a cgroup marked both ways
	// is not chosen first).
	{"trusted.governor.avoid", governor.HintAvoid},
	{"trusted.governor.prefer", governor.HintPrefer},
	{"user.governor.prefer", governor.HintPrefer},
	{"trusted.oomd_avoid", governor.HintAvoid},
	{"trusted.oomd_prefer", governor.HintPrefer},
}

// HintNames lists the extended attributes XattrHints reads, in order of
// precedence.
func HintNames() []string {
	out := make([]string, len(hintNames))
	for i, h := range hintNames {
		out[i] = h.name
	}
	return out
}

// XattrHints reads victim hints from the cgroup directories under Root.
type XattrHints struct{ Root string }

// VictimHint returns the first hint set on cg's directory: an attribute
// present with any value but "0". A file system without xattr support
// gives no hint and no error.
func (x XattrHints) VictimHint(cg governor.Ref) (governor.Hint, string, error) {
	if err := checkRel(cg.Path); err != nil {
		return governor.HintNone, "", err
	}
	dir := filepath.Join(x.Root, cg.Path)
	var buf [16]byte
	for _, h := range hintNames {
		n, err := unix.Lgetxattr(dir, h.name, buf[:])
		switch {
		case err == nil:
			if string(buf[:n]) == "0" {
				continue
			}
			return h.hint, h.name, nil
		case errors.Is(err, unix.ERANGE):
			return h.hint, h.name, nil // set, with a long value
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.EOPNOTSUPP):
			continue
		default:
			return governor.HintNone, "", err
		}
	}
	return governor.HintNone, "", nil
}

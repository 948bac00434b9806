//go:build unix && !linux

package policies

import "os"

// readOnlyMountRoot: only Linux's read-only mounts are recognised;
// elsewhere a directory's write bits are checked as they are.
func readOnlyMountRoot(*os.File) bool { return false }

//go:build unix && !linux

package policies

import "os"

// onReadOnlyMount: only Linux's read-only mounts are recognised; elsewhere
// the write bits are checked as they are.
func onReadOnlyMount(*os.File) bool { return false }

//go:build !unix

package governor

import "io/fs"

const stateOpenFlags = 0

// checkStateOwner: ownership cannot be checked here (the daemon runs on
// Linux only; this builds the package for `governor validate` elsewhere).
func checkStateOwner(fs.FileInfo) error { return nil }

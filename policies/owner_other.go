//go:build !unix

package policies

import (
	"errors"
	"io/fs"
)

// checkOwnership cannot verify ownership here; policies are refused unless
// Options.AllowInsecure is set.
func checkOwnership(fs.FileInfo) error {
	return errors.New("cannot be checked for ownership on this system")
}

// openFlags: no extra open flags here (policies are refused anyway).
const openFlags = 0

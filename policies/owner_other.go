//go:build !unix

package policies

import (
	"errors"
	"io/fs"
	"os"
)

// checkOwnership cannot verify ownership here; policies are refused unless
// Options.AllowInsecure is set.
func checkOwnership(*os.File, fs.FileInfo) error {
	return errors.New("cannot be checked for ownership on this system")
}

// openFlags: no extra open flags here (policies are refused anyway).
const openFlags = 0

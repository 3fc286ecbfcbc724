//go:build !unix

package rundir

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lock is not available on this system: runs of one batch are not kept
// apart.
func lock(*os.File) error { return nil }

//go:build !unix

package crashpoint

import "os"

// kill ends the process at once, without running deferred functions.
func kill() { os.Exit(137) }

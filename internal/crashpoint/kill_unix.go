//go:build unix

package crashpoint

import (
	"os"
	"syscall"
	"time"
)

// kill ends the process as kill -9 would.
func kill() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	for {
		time.Sleep(time.Hour) // the signal is on its way
	}
}

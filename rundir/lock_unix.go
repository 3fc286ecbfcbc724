//go:build unix

package rundir

import (
	"errors"
	"os"
	"syscall"
)

var errLocked = errors.New("locked")

// lock takes an exclusive advisory lock on f without waiting; the system
// releases it when the process ends, however it ends.
func lock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

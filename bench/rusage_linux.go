package bench

import (
	"os"
	"syscall"
)

// maxRSS returns the maximum resident set of an exited process in bytes,
// or -1 when unknown.
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10 // kilobytes on Linux
	}
	return -1
}

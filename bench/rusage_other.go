//go:build !linux

package bench

import "os"

// maxRSS returns -1: the unit of rusage's maximum resident set differs
// between systems, and only Linux's is read.
func maxRSS(*os.ProcessState) int64 { return -1 }

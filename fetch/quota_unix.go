//go:build unix

package fetch

import (
	"errors"
	"syscall"
)

// isQuota reports a write refused for a disk quota (EDQUOT).
func isQuota(err error) bool { return errors.Is(err, syscall.EDQUOT) }

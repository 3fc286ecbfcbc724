//go:build !unix

package fetch

// isQuota reports a write refused for a disk quota; systems without
// EDQUOT report ENOSPC.
func isQuota(error) bool { return false }

package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
)

// AccountPrefix is the Config.Prefix of seedbatch's account limits: every
// seedbatch on one Redis that uses an API key shares them, whatever its
// own key namespace.
const AccountPrefix = "seedbatch-limits"

// AccountScope returns the Config.Scope of an API key's limits: a name
// derived from the key that does not reveal it ("nokey" for none).
func AccountScope(apiKey string) string {
	if apiKey == "" {
		return "nokey"
	}
	sum := sha256.Sum256([]byte("seedbatch-account:" + apiKey))
	return "acct-" + hex.EncodeToString(sum[:6])
}

// KeyPattern returns a Redis SCAN pattern that matches every key of the
// limits of prefix and scope, and no other.
func KeyPattern(prefix, scope string) string {
	return prefix + ":{" + scope + "}:*"
}

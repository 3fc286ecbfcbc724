// Package testwait lets a test wait for something another goroutine or
// process makes true, without a fixed sleep: it checks again and again, at
// a short and growing interval, and fails the test with what it last saw
// when time runs out.
package testwait

import (
	"testing"
	"time"
)

// Interval bounds: the first check comes at once, the next after
// firstInterval, and the interval doubles up to maxInterval.
const (
	firstInterval = 5 * time.Millisecond
	maxInterval   = 100 * time.Millisecond
)

// Until calls check until it returns nil, for at most within, and returns
// as soon as it does. check's error says what it sees instead of what it
// waits for; when time runs out, Until fails the test with the last one.
// It also stops, failing the test, when the test's context ends.
func Until(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	interval := firstInterval
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %v", err)
		case <-time.After(interval):
		}
		interval = min(2*interval, maxInterval)
	}
}

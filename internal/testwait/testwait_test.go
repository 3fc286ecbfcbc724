package testwait_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/internal/testwait"
)

func TestUntilReturnsWhenTheCheckPasses(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	testwait.Until(t, 10*time.Second, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("%d checks, want 3", n)
	}
}

// recorder keeps what a failing Until reports instead of failing the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

func TestUntilFailsWithTheLastError(t *testing.T) {
	t.Parallel()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Until did not fail: %v", p)
			}
		}()
		testwait.Until(r, 30*time.Millisecond, func() error { return errors.New("still 2 rows queued") })
	}()
	if !strings.Contains(r.failed, "still 2 rows queued") {
		t.Errorf("Until failed with %q, want the last error", r.failed)
	}
}

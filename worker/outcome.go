package worker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// NotYet is returned by a handler that must wait for a limit. asynq runs the
// task again after After without counting a retry or a failure.
type NotYet struct {
	After  time.Duration
	Reason string
}

func (e *NotYet) Error() string { return fmt.Sprintf("not yet (%s): again in %s", e.Reason, e.After) }

// isFailure tells asynq which errors count against a task's retries:
// neither waiting for a limit nor a worker that died (asynq would otherwise
// spend a retry on every crash).
func isFailure(err error) bool {
	var ny *NotYet
	if errors.As(err, &ny) || errors.Is(err, asynq.ErrLeaseExpired) {
		return false
	}
	return true
}

// retryDelay is asynq's RetryDelayFunc: the NotYet's own delay, otherwise an
// exponential backoff from one second up to a minute, with jitter.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var ny *NotYet
	if errors.As(err, &ny) {
		return ny.After
	}
	return backoff(n)
}

func backoff(n int) time.Duration {
	d := time.Second << min(n, 6)
	d = min(d, time.Minute)
	return d + rand.N(d/2+1)
}

// permanent ends a task without retries; the row's state already says why.
func permanent(err error) error { return fmt.Errorf("%w: %w", err, asynq.SkipRetry) }

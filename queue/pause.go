package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
)

// pauser is the part of the limiter that pausing needs.
type pauser interface {
	Pause(ctx context.Context, reason string) error
}

// PauseSubmitting pauses the limiter's submits and the asynq submit queue.
func PauseSubmitting(ctx context.Context, lim pauser, insp *asynq.Inspector, q Names, reason string) error {
	if err := lim.Pause(ctx, reason); err != nil {
		return fmt.Errorf("pause submitting: %w", err)
	}
	if err := insp.PauseQueue(q.Submit); err != nil && !isAlreadyPaused(err) {
		return fmt.Errorf("pause queue %s: %w", q.Submit, err)
	}
	return nil
}

// resumer is the part of the limiter that resuming needs.
type resumer interface {
	Resume(ctx context.Context) error
}

// ResumeSubmitting undoes PauseSubmitting.
func ResumeSubmitting(ctx context.Context, lim resumer, insp *asynq.Inspector, q Names) error {
	if err := lim.Resume(ctx); err != nil {
		return fmt.Errorf("resume submitting: %w", err)
	}
	if err := insp.UnpauseQueue(q.Submit); err != nil && !isNotPaused(err) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("unpause queue %s: %w", q.Submit, err)
	}
	return nil
}

// asynq reports these conditions only as text.
func isAlreadyPaused(err error) bool { return strings.Contains(err.Error(), "already paused") }
func isNotPaused(err error) bool     { return strings.Contains(err.Error(), "not paused") }

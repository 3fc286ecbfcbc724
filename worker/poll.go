package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
)

// slowPoll is the delay of the next read after a status read kept failing
// for all of its retries: a job is never abandoned while its provider task
// may still finish.
const slowPoll = time.Minute

// pollAuthPause spaces status reads while the provider refuses the key;
// unlike submits, polls are not held by a paused queue.
const pollAuthPause = 30 * time.Second

func (w *Worker) handlePoll(ctx context.Context, t *asynq.Task) error {
	p, err := tasks.ParseJobPayload(t.Payload())
	if err != nil {
		return permanent(err)
	}
	job, err := w.store.Job(ctx, p.Batch, p.Row)
	if errors.Is(err, batch.ErrNotFound) {
		return permanent(err)
	}
	if err != nil {
		return err
	}
	if job.State != tasks.StateSubmitted || p.Attempt != job.Attempt || job.TaskID == "" {
		return nil // already decided, or a poll of an earlier attempt
	}
	// asynq schedules in whole seconds; wait out the rest here.
	if d := time.UnixMilli(p.NotBeforeMS).Sub(w.cfg.Now()); d > 0 {
		if d > w.cfg.MaxWait {
			return &NotYet{After: d, Reason: "not due"}
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res, err := ratelimit.Wait(ctx, w.cfg.MaxWait, func(ctx context.Context) (ratelimit.Result, error) {
		return w.limiter.AdmitRequest(ctx, job.Holder())
	})
	if err != nil {
		return err
	}
	if !res.Allowed {
		return notYet(res)
	}
	log := w.log.With("batch", job.Batch, "row", job.Row, "task_id", job.TaskID)
	task, serr := w.provider.Status(ctx, job.TaskID)
	if serr != nil {
		return w.pollFailed(ctx, job, p.Poll, serr)
	}
	now := w.cfg.Now()
	switch task.State {
	case seedance.StateSuccess:
		c := batch.Change{From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateSucceeded,
			Attempt: &job.Attempt, ResultURLs: task.ResultURLs, Completed: now, CostTime: task.CostTime}
		if len(task.ResultURLs) == 0 {
			c.To, c.FailCode, c.FailMsg = tasks.StateFailed, CodeNoResult, "the provider reported success without a result URL"
		}
		_, err := w.store.Transition(ctx, job.Batch, job.Row, c)
		w.release(ctx, job)
		log.Info("task_ended", "state", c.To)
		return ignoreConflict(err)
	case seedance.StateFailed:
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateFailed, Attempt: &job.Attempt,
			FailCode: task.FailCode, FailMsg: task.FailMsg, Completed: now, CostTime: task.CostTime})
		w.release(ctx, job)
		log.Info("task_ended", "state", tasks.StateFailed, "fail_code", task.FailCode)
		return ignoreConflict(err)
	default:
		return w.schedulePoll(ctx, job, p.Poll+1, now.Add(w.cfg.scaled(w.cfg.PollInterval)))
	}
}

// pollFailed turns a failed status read into the task's outcome.
func (w *Worker) pollFailed(ctx context.Context, job batch.Job, n int, serr error) error {
	msg := serr.Error()
	_ = w.store.SetLastError(ctx, job.Batch, job.Row, msg)
	switch {
	case errors.Is(serr, seedance.ErrAuth):
		reason := "the provider refused the API key: " + providerMessage(serr)
		return errors.Join(w.Pause(ctx, reason), &NotYet{After: pollAuthPause, Reason: "paused"})
	case errors.Is(serr, seedance.ErrRateLimited):
		after := cmpPositive(retryAfter(serr), 2*time.Second)
		return errors.Join(w.limiter.Cooldown(ctx, after), &NotYet{After: after, Reason: "provider rate limit"})
	case !finalAttempt(ctx):
		return serr
	case errors.Is(serr, seedance.ErrNotFound):
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateFailed, Attempt: &job.Attempt,
			FailCode: CodeTaskNotFound, FailMsg: "the provider does not know task " + job.TaskID, Completed: w.cfg.Now()})
		w.release(ctx, job)
		return ignoreConflict(err)
	default:
		// Out of retries for this read: start a slow chain rather than give up.
		w.log.Warn("poll_slowed", "batch", job.Batch, "row", job.Row, "err", serr)
		return w.schedulePoll(ctx, job, n+1, w.cfg.Now().Add(slowPoll))
	}
}

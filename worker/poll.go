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

// inPlaceMargin is the time a poll keeps before its task's deadline: a
// read it would make later is handed to a new task instead.
const inPlaceMargin = 30 * time.Second

// handlePoll reads a running task's status at its planned time. While the
// next planned read is near (within MaxWait), it waits for it in place and
// reads again, rather than queue a task for each read: the reads that
// matter most, dense around the likely finish, then land on time to the
// millisecond and cost no queue round trip. A crash loses nothing: asynq
// runs the poll again.
func (w *Worker) handlePoll(ctx context.Context, t *asynq.Task) error {
	p, job, err := w.load(ctx, t)
	if err != nil {
		return err
	}
	for first := true; ; first = false {
		if !first {
			if job, err = w.store.Job(ctx, job.Batch, job.Row); err != nil {
				return err
			}
		}
		if p.Attempt != job.Attempt {
			return nil // a poll of an earlier attempt
		}
		if job.State == tasks.StateSucceeded || (job.State.Terminal() && job.State != tasks.StateAmbiguous) {
			// Decided elsewhere (a callback, reconcile's time-out), or by a
			// process killed before it released the lease: its task has
			// ended, and this poll's last read may have renewed the lease
			// that decision released, so release it (again).
			w.release(ctx, job)
		}
		switch {
		case job.State == tasks.StateSucceeded:
			// This poll recorded the success and stopped before queuing the download.
			return w.queue.Download(ctx, job.Batch, job.Row, job.Attempt)
		case job.State != tasks.StateSubmitted || job.TaskID == "":
			return nil // already decided, e.g. by a callback
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
			case <-w.stopping.Done():
				// The worker stops: asynq runs this poll again, without a retry.
				return &NotYet{After: time.Until(time.UnixMilli(p.NotBeforeMS)), Reason: "worker stopping"}
			}
		}
		task, err := w.read(ctx, job)
		var ny *NotYet
		if errors.As(err, &ny) {
			return err
		}
		if err != nil {
			return w.pollFailed(ctx, job, p, err)
		}
		if !p.Callback && !task.State.Ended() {
			if next := w.nextRead(ctx, job, false); w.inPlace(ctx, next) {
				p.Poll++
				p.NotBeforeMS, p.Unreadable = next.UnixMilli(), 0
				continue
			}
		}
		return w.applyStatus(ctx, job, tasks.StateSubmitted, task, p.Callback, p.Poll)
	}
}

// inPlace reports whether a poll may wait for a read at next itself: it is
// near, and well before the poll task's deadline.
func (w *Worker) inPlace(ctx context.Context, next time.Time) bool {
	now := w.cfg.Now()
	if next.Sub(now) > w.cfg.MaxWait || w.stopping.Err() != nil {
		return false
	}
	deadline, ok := ctx.Deadline()
	return !ok || deadline.Sub(next) > inPlaceMargin
}

// read takes a request token, renewing the job's lease, and reads the
// status of the job's task.
func (w *Worker) read(ctx context.Context, job batch.Job) (seedance.Task, error) {
	acct, err := w.accountOf(ctx, job.Batch)
	if err != nil {
		return seedance.Task{}, err
	}
	res, err := w.admit(ctx, func(ctx context.Context) (ratelimit.Result, error) {
		return acct.limiter.WaitRequest(ctx, job.Holder(), w.cfg.MaxWait)
	})
	if err != nil {
		return seedance.Task{}, err
	}
	if res.Readded {
		// The lease had expired (a stall longer than the lease TTL) while
		// the task ran; it is back, and submits wait until the slots are
		// under the limit again.
		w.log.Warn("lease_readded", "batch", job.Batch, "row", job.Row, "task_id", job.TaskID)
	}
	return acct.provider.Status(ctx, job.TaskID)
}

// applyStatus moves a job in state from (submitted, or ambiguous when a
// callback binds its task) according to a status read: the ended task's
// outcome, or the next poll while it runs. Polls and callbacks share it, so
// whichever comes second changes nothing.
func (w *Worker) applyStatus(ctx context.Context, job batch.Job, from tasks.State, task seedance.Task, callback bool, n int) error {
	log := w.log.With("batch", job.Batch, "row", job.Row, "task_id", job.TaskID)
	now := w.cfg.Now()
	c := batch.Change{From: []tasks.State{from}, Attempt: &job.Attempt, TaskID: job.TaskID,
		Completed: now, CostTime: task.CostTime, ClearFailure: from == tasks.StateAmbiguous}
	switch task.State {
	case seedance.StateSuccess:
		c.To, c.ResultURLs = tasks.StateSucceeded, task.ResultURLs
		if len(task.ResultURLs) == 0 {
			c.To, c.FailCode, c.FailMsg = tasks.StateFailed, tasks.CodeNoResult, "the provider reported success without a result URL"
		}
	case seedance.StateFailed:
		c.To, c.FailCode, c.FailMsg = tasks.StateFailed, task.FailCode, task.FailMsg
		if c.FailCode == "" {
			c.FailCode = tasks.CodeProviderError
		}
	default:
		if from == tasks.StateAmbiguous {
			if err := w.bind(ctx, job); err != nil {
				return ignoreConflict(err)
			}
		}
		return w.schedulePoll(ctx, job, n+1, w.nextRead(ctx, job, callback), callback)
	}
	if _, err := w.store.Transition(ctx, job.Batch, job.Row, c); err != nil {
		if errors.Is(err, batch.ErrConflict) {
			// Another poll (one asynq ran again after a crash) or a callback
			// recorded the end first and freed the slot; this read renewed
			// the lease, putting it back. The task has ended: free it again.
			w.release(ctx, job)
		}
		return ignoreConflict(err)
	}
	if from == tasks.StateAmbiguous {
		if err := w.store.IndexTask(ctx, job.TaskID, job.Holder()); err != nil {
			return err
		}
	}
	w.release(ctx, job)
	if gen := generationTime(task); gen > 0 {
		w.metrics.Generation(ctx, gen)
		w.accounts.first.plans.observe(ctx, job.Spec.Duration, gen) // shared by every account's planner
	}
	log.Info("task_ended", "state", c.To, "fail_code", c.FailCode)
	if c.FailCode == tasks.CodeInsufficientCredits {
		// The account cannot pay: stop submitting the rest until an operator acts.
		acct, err := w.accountOf(ctx, job.Batch)
		if err != nil {
			return err
		}
		if err := w.pauseAccount(ctx, acct, "the provider failed a task for want of credits ("+tasks.CodeInsufficientCredits+")"); err != nil {
			return err
		}
	}
	if c.To == tasks.StateSucceeded {
		return w.queue.Download(ctx, job.Batch, job.Row, job.Attempt)
	}
	return nil
}

// nextRead is when a running task is read again: at the next read of its
// plan, or after the safety interval when a callback is expected.
func (w *Worker) nextRead(ctx context.Context, job batch.Job, callback bool) time.Time {
	now := w.cfg.Now()
	if callback {
		return now.Add(w.cfg.scaled(w.cfg.Callback.SafetyInterval))
	}
	return w.plansOf(ctx, job.Batch).plan(ctx, job.Spec.Duration).at(job.Submitted, now, phase(job.Holder()))
}

// generationTime is how long the provider took: its costTime, else the
// span between its create and complete times.
func generationTime(t seedance.Task) time.Duration {
	if t.CostTime > 0 {
		return t.CostTime
	}
	if !t.CreateTime.IsZero() && t.CompleteTime.After(t.CreateTime) {
		return t.CompleteTime.Sub(t.CreateTime)
	}
	return 0
}

// pollFailed turns a failed status read into the task's outcome.
func (w *Worker) pollFailed(ctx context.Context, job batch.Job, p tasks.JobPayload, serr error) error {
	msg := serr.Error()
	_ = w.store.SetLastError(ctx, job.Batch, job.Row, msg)
	acct, err := w.accountOf(ctx, job.Batch)
	if err != nil {
		return err
	}
	switch {
	case errors.Is(serr, seedance.ErrAuth):
		reason := "the provider refused the API key: " + providerMessage(serr)
		return errors.Join(w.pauseAccount(ctx, acct, reason), &NotYet{After: pollAuthPause, Reason: "paused"})
	case errors.Is(serr, seedance.ErrRateLimited):
		after := cmpPositive(retryAfter(serr), 2*time.Second)
		return errors.Join(acct.limiter.Cooldown(ctx, after), &NotYet{After: after, Reason: "provider rate limit"})
	case errors.Is(serr, seedance.ErrUnreadable):
		return w.unreadable(ctx, job, p, serr)
	case !w.finalAttempt(ctx):
		return serr
	case errors.Is(serr, seedance.ErrNotFound):
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateFailed, Attempt: &job.Attempt,
			FailCode: tasks.CodeTaskNotFound, FailMsg: "the provider does not know task " + job.TaskID, Completed: w.cfg.Now()})
		w.release(ctx, job)
		return ignoreConflict(err)
	default:
		// Out of retries for this read: start a slow chain rather than give up.
		w.log.Warn("poll_slowed", "batch", job.Batch, "row", job.Row, "err", serr)
		return w.schedulePoll(ctx, job, p.Poll+1, w.cfg.Now().Add(slowPoll), p.Callback)
	}
}

// unreadable handles a status answer that could not be read. The task may
// have ended, and may be billed, so the row is not kept waiting for hours:
// it is polled again at the planned delay, and after MaxUnreadable such
// answers in a row it fails with PROVIDER_ANSWER_UNREADABLE and frees its
// slot. A readable answer in between starts the count again.
func (w *Worker) unreadable(ctx context.Context, job batch.Job, p tasks.JobPayload, serr error) error {
	n := p.Unreadable + 1
	log := w.log.With("batch", job.Batch, "row", job.Row, "task_id", job.TaskID)
	now := w.cfg.Now()
	if n < w.cfg.MaxUnreadable {
		log.Warn("status_unreadable", "count", n, "err", serr)
		next := tasks.JobPayload{Batch: job.Batch, Row: job.Row, Attempt: job.Attempt, Poll: p.Poll + 1,
			Callback: p.Callback, Unreadable: n}
		return w.queue.PollAt(ctx, next, w.nextRead(ctx, job, p.Callback))
	}
	_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
		From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateFailed, Attempt: &job.Attempt,
		FailCode: tasks.CodeAnswerUnreadable, FailMsg: unreadableMessage(job.Batch, job.TaskID, n, serr),
		Completed: now})
	if err != nil {
		return ignoreConflict(err)
	}
	w.release(ctx, job)
	log.Warn("task_unreadable", "count", n, "err", serr)
	return nil
}

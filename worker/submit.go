package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptrace"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/crashpoint"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
)

// authPause is how long a submit waits before looking again while the
// provider refuses the key. Once due, the task waits in the paused submit
// queue, so it runs as soon as an operator resumes.
const authPause = time.Second

// recordTimeout bounds the writes made after a create, which must happen
// even when the handler's own context is ending.
const recordTimeout = 15 * time.Second

func (w *Worker) handleSubmit(ctx context.Context, t *asynq.Task) error {
	p, job, err := w.load(ctx, t)
	if err != nil {
		return err
	}
	if p.Attempt != job.Attempt {
		return nil // a task of an earlier attempt
	}
	log := w.log.With("batch", job.Batch, "row", job.Row, "id", job.Spec.ID)
	meta, err := w.store.Meta(ctx, job.Batch)
	if err != nil {
		return err
	}
	acct, err := w.accountFor(meta)
	if err != nil {
		return err
	}
	callback := w.callbackMode(meta)
	switch job.State {
	case tasks.StateQueued:
	case tasks.StateSubmitting:
		if job.TaskID == "" {
			// A worker died between marking the row and recording the answer:
			// the create may have reached the provider. Never send it again.
			log.Warn("create_interrupted", "state", job.State)
			_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
				From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateAmbiguous, Attempt: &job.Attempt,
				FailCode: tasks.CodeCreateInterrupted,
				FailMsg:  "a worker stopped while this row's create request may have been in flight; not resubmitted automatically",
			})
			return ignoreConflict(err)
		}
		return nil
	case tasks.StateSubmitted:
		// The create was recorded but its first poll may not have been queued.
		return w.schedulePoll(ctx, job, 0, job.Submitted.Add(w.untilFirstRead(ctx, job, callback)), callback)
	case tasks.StateSucceeded:
		// The success was recorded but its download may not have been queued.
		return w.queue.Download(ctx, job.Batch, job.Row, job.Attempt)
	default:
		return nil
	}
	if meta.Canceled {
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateQueued}, To: tasks.StateCanceled, FailMsg: "batch canceled"})
		if err == nil {
			err = w.store.Refund(ctx, job.Batch, job.Row, job.Attempt, job.Spec.Seconds())
		}
		return ignoreConflict(err)
	}
	// A share of the handlers per account: those waiting for a full
	// account's slots leave the others to the other accounts' rows.
	done, err := acct.takeSubmitter()
	if err != nil {
		return err
	}
	defer done()
	// The budget first: a row it refuses never takes a lease or a token.
	ok, scope, err := w.store.Reserve(ctx, job.Batch, job.Row, job.Attempt, job.Spec.Seconds())
	if err != nil {
		return err
	}
	if !ok {
		log.Warn("budget_hold", "budget", scope)
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateQueued}, To: tasks.StateBudget, Attempt: &job.Attempt,
			FailCode: tasks.CodeBudget, FailMsg: "held: the " + scope + " budget of video seconds is spent; raise it and run retry --state budget"})
		return ignoreConflict(err)
	}

	res, err := w.admit(ctx, func(ctx context.Context) (ratelimit.Result, error) {
		return acct.limiter.WaitSubmit(ctx, job.Holder(), w.cfg.SlotWait)
	})
	if err != nil {
		return err
	}
	epoch, err := w.checkEpoch(ctx, meta)
	if err != nil {
		w.giveBack(ctx, log, job, res)
		if !errors.Is(err, batch.ErrDataLost) {
			return err
		}
		reason := dataLostReason(err)
		log.Error("submitting_paused", "reason", reason)
		return errors.Join(w.Pause(ctx, reason), &NotYet{After: authPause, Reason: "paused"})
	}
	// We hold a lease and a request token. Mark the row, on disk too when a
	// journal is kept, before sending.
	if _, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
		From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting, Attempt: &job.Attempt, Sync: true,
	}); err != nil {
		if !res.Held {
			// Only a lease this run took: another run of this submit may be
			// creating under the one it holds.
			w.release(ctx, job)
		}
		return ignoreConflict(err)
	}
	if err := w.store.WaitReplicated(ctx, job.Batch); err != nil {
		// Nothing is sent: a failover could lose the submitting state and
		// have the row created twice. The row goes back to be created later.
		msg := err.Error()
		if _, terr := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{From: []tasks.State{tasks.StateSubmitting},
			To: tasks.StateQueued, Attempt: &job.Attempt, LastError: &msg}); terr != nil {
			log.Warn("unmark_failed", "err", terr)
		}
		w.giveBack(ctx, log, job, res)
		return err
	}
	w.noteEpoch(epoch)
	w.cfg.Crash.Hit(crashpoint.AfterSubmitting)
	req := createRequest(job.Spec, queue.RequestAsync, "")
	if callback {
		req = createRequest(job.Spec, queue.RequestCallback, w.cfg.Callback.URL(job.Batch, job.Row, job.Attempt))
	}
	taskID, cerr := acct.provider.Create(w.traceCreate(ctx), req)
	// From here on, record what happened even if the handler is being stopped.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return w.afterCreate(rctx, ctx, log, acct, job, callback, taskID, cerr)
}

// traceCreate arms crashpoint.AfterCreateSent on a create's request: the
// point is reached once its body was written, before its answer is read.
func (w *Worker) traceCreate(ctx context.Context) context.Context {
	if !w.cfg.Crash.Armed(crashpoint.AfterCreateSent) {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				w.cfg.Crash.Hit(crashpoint.AfterCreateSent)
			}
		},
	})
}

// callbackMode reports whether a batch's tasks report by callback. A
// callback batch served by a worker without a callback URL is polled.
func (w *Worker) callbackMode(meta batch.Meta) bool {
	rt := meta.RequestType
	if rt == "" {
		rt = w.cfg.RequestType
	}
	if rt == queue.RequestCallback && !w.cfg.Callback.enabled() {
		w.log.Warn("callback_unavailable", "batch", meta.ID, "fallback", "polling")
		return false
	}
	return rt == queue.RequestCallback
}

// untilFirstRead is the delay from create to a job's first status read: the
// first read of its plan when polling, after the slowest finish plus a
// grace when waiting for a callback.
func (w *Worker) untilFirstRead(ctx context.Context, job batch.Job, callback bool) time.Duration {
	if callback {
		return w.cfg.safetyPoll(job.Spec.Duration)
	}
	return w.plansOf(ctx, job.Batch).plan(ctx, job.Spec.Duration).firstRead(phase(job.Holder()))
}

// afterCreate records the outcome of a create sent with acct; hctx is the
// handler's context, used only to read asynq's retry counters.
func (w *Worker) afterCreate(ctx, hctx context.Context, log interface {
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
}, acct *account, job batch.Job, callback bool, taskID string, cerr error) error {
	back := func(lastErr string) error {
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateQueued, Attempt: &job.Attempt, LastError: &lastErr})
		w.release(ctx, job)
		return err
	}
	refund := func() {
		if err := w.store.Refund(ctx, job.Batch, job.Row, job.Attempt, job.Spec.Seconds()); err != nil {
			log.Warn("refund_failed", "err", err)
		}
	}
	now := w.cfg.Now()
	switch {
	case cerr == nil:
		w.cfg.Crash.Hit(crashpoint.AfterCreateAnswer)
		job.TaskID, job.Submitted = taskID, now
		if err := w.recordTaskID(ctx, job, taskID, now); err != nil {
			// The provider has the task; the id is in this log line only. The
			// task runs again, finds the row submitting and marks it ambiguous.
			log.Error("record_task_id_failed", "task_id", taskID, "err", err)
			return fmt.Errorf("record task id %s: %w", taskID, err)
		}
		log.Info("submitted", "task_id", taskID, "callback", callback)
		return w.schedulePoll(ctx, job, 0, now.Add(w.untilFirstRead(ctx, job, callback)), callback)

	case accountRefused(cerr):
		// Out of credits: nothing will be created until an operator acts.
		err := back(cerr.Error())
		reason := "the provider refused for want of credits: " + providerMessage(cerr)
		log.Error("submitting_paused", "account", acct.name, "reason", reason)
		return errors.Join(err, w.pauseAccount(ctx, acct, reason), &NotYet{After: authPause, Reason: "paused"})

	case errors.Is(cerr, seedance.ErrInvalid):
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateFailed, Attempt: &job.Attempt,
			FailCode: tasks.CodeInvalidRequest, FailMsg: providerMessage(cerr), Completed: now})
		w.release(ctx, job)
		refund()
		log.Warn("create_rejected", "err", cerr)
		return err // the row records why; retrying cannot help

	case errors.Is(cerr, seedance.ErrAuth), errors.Is(cerr, seedance.ErrNotFound):
		// Nothing will work until an operator acts; nothing was created.
		err := back(cerr.Error())
		reason := "the provider refused the API key: " + providerMessage(cerr)
		if errors.Is(cerr, seedance.ErrNotFound) {
			reason = "the provider does not know the model (check provider.base_url): " + providerMessage(cerr)
		}
		log.Error("submitting_paused", "account", acct.name, "reason", reason)
		return errors.Join(err, w.pauseAccount(ctx, acct, reason), &NotYet{After: authPause, Reason: "paused"})

	case errors.Is(cerr, seedance.ErrRateLimited):
		err := back(cerr.Error())
		after := cmpPositive(retryAfter(cerr), 2*time.Second)
		return errors.Join(err, acct.limiter.Cooldown(ctx, after), &NotYet{After: after, Reason: "provider rate limit"})

	case errors.Is(cerr, seedance.ErrNotSent), errors.Is(cerr, seedance.ErrServer):
		// Never sent, or an answer that proves nothing was created: safe
		// to send again, with backoff.
		if err := back(cerr.Error()); err != nil {
			return err
		}
		if w.finalAttempt(hctx) {
			_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
				From: []tasks.State{tasks.StateQueued}, To: tasks.StateFailed, Attempt: &job.Attempt,
				FailCode: tasks.CodeProviderError, FailMsg: cerr.Error(), Completed: now})
			refund()
			log.Warn("create_gave_up", "err", cerr)
			return err
		}
		log.Info("create_retry", "err", cerr)
		return cerr

	default:
		// Outcome unknown (a 5xx, a 2xx without a task id, no answer...): the
		// provider may have created (and will bill) the task. Keep the lease,
		// which expires on its own, and never resend.
		_, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateAmbiguous, Attempt: &job.Attempt,
			FailCode: tasks.CodeCreateUnknown, FailMsg: unknownOutcome(job.Batch, cerr), Completed: now})
		log.Warn("create_ambiguous", "err", cerr)
		return ignoreConflict(err)
	}
}

// recordTaskID marks the row submitted with its task id, trying a few
// times: losing the id would lose a paid video.
func (w *Worker) recordTaskID(ctx context.Context, job batch.Job, taskID string, now time.Time) error {
	var err error
	for i := range 5 {
		_, err = w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
			From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateSubmitted, Attempt: &job.Attempt,
			TaskID: taskID, Submitted: now, Sync: true,
		})
		if err == nil {
			return w.store.IndexTask(ctx, taskID, job.Holder())
		}
		if errors.Is(err, batch.ErrConflict) {
			// Another run of this submit found the row half-submitted and
			// marked it ambiguous: this run knows the answer, so bind it.
			cur, rerr := w.store.Job(ctx, job.Batch, job.Row)
			if rerr == nil && cur.State == tasks.StateAmbiguous && cur.Attempt == job.Attempt && cur.TaskID == "" {
				cur.TaskID = taskID
				if berr := w.bind(ctx, cur); berr != nil {
					return berr
				}
				return w.store.IndexTask(ctx, taskID, job.Holder())
			}
			return err
		}
		select {
		case <-time.After(time.Duration(i+1) * 500 * time.Millisecond):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
	return err
}

func createRequest(s tasks.Spec, requestType, callbackURL string) seedance.CreateRequest {
	return seedance.CreateRequest{
		RequestType: requestType,
		CallbackURL: callbackURL,
		Provider:    s.Provider,
		Input: seedance.Input{
			Mode: s.Mode, Prompt: s.Prompt, ImageURLs: s.ImageURLs, Resolution: s.Resolution,
			Duration: s.Duration, AspectRatio: s.AspectRatio, Sound: s.Sound, FixedLens: s.FixedLens,
		},
	}
}

// schedulePoll queues the n-th status read of job at time at.
func (w *Worker) schedulePoll(ctx context.Context, job batch.Job, n int, at time.Time, callback bool) error {
	return w.queue.Poll(ctx, job.Batch, job.Row, job.Attempt, n, at, callback)
}

// release frees a job's in-flight lease (its account's); a failure only
// delays the slot's return until the lease expires.
// giveBack returns what a submit took before it sent nothing: the lease,
// unless it was already held by an earlier run of this submit (res.Held),
// and the row's budget reservation.
func (w *Worker) giveBack(ctx context.Context, log *slog.Logger, job batch.Job, res ratelimit.Result) {
	if !res.Held {
		w.release(ctx, job)
	}
	if err := w.store.Refund(ctx, job.Batch, job.Row, job.Attempt, job.Spec.Seconds()); err != nil {
		log.Warn("refund_failed", "err", err)
	}
}

func (w *Worker) release(ctx context.Context, job batch.Job) {
	acct, err := w.accountOf(ctx, job.Batch)
	if err == nil {
		err = acct.limiter.Release(ctx, job.Holder())
	}
	if err != nil {
		w.log.Warn("release_failed", "batch", job.Batch, "row", job.Row, "err", err)
	}
}

func notYet(res ratelimit.Result) error {
	after := cmpPositive(res.RetryAfter, 250*time.Millisecond)
	if res.Reason == ratelimit.ReasonPaused {
		// The account is paused until an operator resumes it.
		after = pausedAccountWait
	}
	return &NotYet{After: after, Reason: string(res.Reason)}
}

// finalAttempt reports whether a failing execution is the task's last:
// it has failed MaxRetry times before. Waiting for a limit never counts.
func (w *Worker) finalAttempt(ctx context.Context) bool {
	n, ok := asynq.GetRetryCount(ctx)
	return ok && n >= w.cfg.MaxRetry
}

func ignoreConflict(err error) error {
	if errors.Is(err, batch.ErrConflict) {
		return nil
	}
	return err
}

func providerMessage(err error) string {
	var se *seedance.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return err.Error()
}

// accountRefused reports a create refused because the account cannot pay:
// 402 as the HTTP status or as the JSON code of the answer, or the
// provider's INSUFFICIENT_CREDITS.
func accountRefused(err error) bool {
	var se *seedance.Error
	return errors.As(err, &se) && (se.StatusCode == 402 || se.Code == 402 || strings.Contains(se.Message, tasks.CodeInsufficientCredits))
}

func retryAfter(err error) time.Duration {
	var se *seedance.Error
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

func cmpPositive(d, fallback time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return fallback
}

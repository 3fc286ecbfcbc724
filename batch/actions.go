package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seedbatch/seedbatch/tasks"
)

// Downloader queues the download of a succeeded row (queue.Client).
type Downloader interface {
	Download(ctx context.Context, batch string, row, attempt int) error
}

// Requeuer queues the tasks an operator's retry needs: a submit for a row
// created again, a download for a row whose video is downloaded again
// (queue.Client).
type Requeuer interface {
	Submitter
	Downloader
}

// ResubmitOptions says which rows Resubmit takes.
type ResubmitOptions struct {
	// From is the state of the rows to resubmit (ambiguous, failed or budget).
	From tasks.State
	// Rebill also creates again the rows whose task may have been billed
	// (tasks.PossiblyBilled: a success whose video was not stored, answers
	// that could not be read, a task that never ended). Without it they are
	// left as they are and listed in ResubmitResult.Skipped.
	Rebill bool
}

// Skipped is a row Resubmit left alone, and why.
type Skipped struct {
	// Row is the row's index; Line its line in the CSV file; ID its id.
	Row, Line int
	ID        string
	// TaskID is the provider task that may have been billed.
	TaskID string
	// FailCode is the row's fail code.
	FailCode string
	// Reason says why the row was not created again.
	Reason string
}

// ResubmitResult says what Resubmit did.
type ResubmitResult struct {
	// Queued counts the rows queued again: to be created (and billed)
	// again, or, for a failed download, to be downloaded again.
	Queued int
	// Skipped lists the rows whose task may have been billed, left alone
	// because ResubmitOptions.Rebill was not set.
	Skipped []Skipped
}

// Resubmit moves every job of a batch in state opts.From back to queued
// under a new attempt number and queues its submit task. Each one is
// created again at the provider (and billed): callers use it only when an
// operator asks. A failed row whose video exists but could not be stored
// is downloaded again instead (see Redownload). A row whose task may have
// been billed (tasks.PossiblyBilled) is created again only with
// opts.Rebill; otherwise it is listed in the result's Skipped.
func (s *Store) Resubmit(ctx context.Context, q Requeuer, id string, opts ResubmitOptions) (ResubmitResult, error) {
	var res ResubmitResult
	from := opts.From
	for j, err := range s.All(ctx, id) {
		if err != nil {
			return res, err
		}
		if j.State != from {
			continue
		}
		if j.State == tasks.StateFailed && tasks.Redownloadable(j.FailCode) && len(j.ResultURLs) > 0 {
			ok, err := s.Redownload(ctx, q, j)
			if err != nil {
				return res, err
			}
			if ok {
				res.Queued++
			}
			continue
		}
		if !opts.Rebill && tasks.PossiblyBilled(j.FailCode, j.TaskID != "") {
			res.Skipped = append(res.Skipped, Skipped{Row: j.Row, Line: j.Line, ID: j.Spec.ID, TaskID: j.TaskID,
				FailCode: j.FailCode, Reason: billedReason(j.FailCode)})
			continue
		}
		next := j.Attempt + 1
		if _, err := s.Transition(ctx, id, j.Row, Change{From: []tasks.State{from}, To: tasks.StateQueued,
			Attempt: &j.Attempt, NewAttempt: &next, ClearOutcome: true, Sync: true}); err != nil {
			if errors.Is(err, ErrConflict) {
				continue
			}
			return res, err
		}
		if err := q.Submit(ctx, id, j.Row, next); err != nil {
			return res, err
		}
		res.Queued++
	}
	return res, nil
}

// Redownload moves a row whose video was made but is not stored (done with
// its file gone, or failed with DOWNLOAD_FAILED) back to succeeded and
// queues its download; it reports false when the row has moved on
// meanwhile. Nothing is created again: the provider's result URLs are
// used, while they live.
func (s *Store) Redownload(ctx context.Context, d Downloader, j Job) (bool, error) {
	if _, err := s.Transition(ctx, j.Batch, j.Row, Change{From: []tasks.State{tasks.StateDone, tasks.StateFailed},
		To: tasks.StateSucceeded, Attempt: &j.Attempt, ClearFailure: true}); err != nil {
		if errors.Is(err, ErrConflict) {
			return false, nil
		}
		return false, err
	}
	return true, d.Download(ctx, j.Batch, j.Row, j.Attempt)
}

// TimeOut fails a submitted row whose task has not ended within after of
// its create (TIMED_OUT); it reports false when the row has moved on
// meanwhile. The task may still be billed: retry counts it as possibly
// billed.
func (s *Store) TimeOut(ctx context.Context, j Job, after time.Duration, now time.Time) (bool, error) {
	_, err := s.Transition(ctx, j.Batch, j.Row, Change{From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateFailed,
		Attempt: &j.Attempt, FailCode: tasks.CodeTimedOut,
		FailMsg: fmt.Sprintf("still not finished %s after it was submitted", after), Completed: now})
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// billedReason says, for a fail code tasks.PossiblyBilled accepts, why a
// row's task may have been billed.
func billedReason(code string) string {
	switch code {
	case tasks.CodeNoResult:
		return "the provider reported a success (billed) without a video URL"
	case tasks.CodeResultExpired:
		return "the video was created (billed) but its URL expired before it was stored"
	case tasks.CodeDownloadTooLarge:
		return "the video was created (billed) but is larger than download.max_bytes"
	case tasks.CodeDownloadFailed, tasks.CodeStorageFull, tasks.CodeStorageReadOnly:
		return "the video was created (billed) but could not be stored, and cannot be downloaded again"
	case tasks.CodeAnswerUnreadable:
		return "the provider's answers about the task could not be read: it may have succeeded (billed)"
	case tasks.CodeTimedOut:
		return "the task never reported an end: it may have succeeded (billed)"
	case tasks.CodeTaskNotFound:
		return "the provider does not know the task it created: it may have been billed"
	}
	return "its task may have been billed"
}

// Cancel stops submitting a batch: it is marked canceled, so submits still
// queued end canceled, and rows queued or held by a budget are canceled at
// once. Tasks already created still finish and download. It returns how
// many rows it canceled.
func (s *Store) Cancel(ctx context.Context, id string) (int, error) {
	if err := s.SetCanceled(ctx, id); err != nil {
		return 0, err
	}
	n := 0
	for j, err := range s.All(ctx, id) {
		if err != nil {
			return n, err
		}
		if j.State != tasks.StateQueued && j.State != tasks.StateBudget {
			continue
		}
		_, err := s.Transition(ctx, id, j.Row, Change{From: []tasks.State{tasks.StateQueued, tasks.StateBudget},
			To: tasks.StateCanceled, FailCode: tasks.CodeCanceled, FailMsg: "the batch was canceled before this row was submitted"})
		if err == nil {
			n++
			// A queued row may hold a budget reservation from a try that waited.
			err = s.Refund(ctx, id, j.Row, j.Attempt, j.Spec.Seconds())
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			return n, err
		}
	}
	return n, nil
}

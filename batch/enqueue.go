package batch

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/seedbatch/seedbatch/tasks"
)

// Submitter queues the submit task of a job. The worker package provides
// one backed by asynq; a task that already exists is not an error.
type Submitter interface {
	Submit(ctx context.Context, batch string, row, attempt int) error
}

// EnqueueResult says what Enqueue did.
type EnqueueResult struct {
	// Added counts new jobs recorded; Existing counts rows already recorded
	// by an earlier enqueue of the same batch.
	Added, Existing int
	// Queued counts submit tasks handed to the queue.
	Queued int
	// Rejected counts rows recorded as rejected (bad field or duplicate).
	Rejected int
}

// ErrBatchMismatch is returned when a batch id is reused for another file,
// or the file changed between planning and enqueueing.
var ErrBatchMismatch = errors.New("batch id reused")

// SameFileError is returned (it wraps ErrBatchMismatch) when a file whose
// content was enqueued before under another batch id (a renamed copy) is
// enqueued again without PlanOptions.AllowDuplicates.
type SameFileError struct {
	// Earlier is the batch the content was enqueued as first.
	Earlier string
}

func (e *SameFileError) Error() string {
	return fmt.Sprintf("this file's content was enqueued before as batch %s (a renamed copy?): its rows would be created, "+
		"and billed, again; see seedbatch status %s, or run it anyway with --allow-duplicates", e.Earlier, e.Earlier)
}

// Unwrap makes errors.Is(err, ErrBatchMismatch) true.
func (e *SameFileError) Unwrap() error { return ErrBatchMismatch }

func (s *Store) filesKey() string { return s.prefix + ":files" }

// claimFile records that the content with sha256 hash is batch id, unless
// another batch has it; it returns that other batch, or "".
func (s *Store) claimFile(ctx context.Context, hash, id string) (string, error) {
	if _, err := s.rdb.HSetNX(ctx, s.filesKey(), hash, id).Result(); err != nil {
		return "", fmt.Errorf("enqueue %s: %w", id, err)
	}
	owner, err := s.rdb.HGet(ctx, s.filesKey(), hash).Result()
	if err != nil {
		return "", fmt.Errorf("enqueue %s: %w", id, err)
	}
	if owner == id {
		return "", nil
	}
	return owner, nil
}

// enqueueChunk is how many rows are written to Redis per round trip.
const enqueueChunk = 500

// Enqueue reads the planned file again and records every row as a job:
// valid rows as queued, with a submit task; bad rows and unwanted duplicates
// as rejected, so the results list every row. Rows recorded by an earlier
// enqueue are left alone, except that a row still queued gets its submit
// task again (a no-op if it exists), so an interrupted enqueue can simply be
// repeated.
func (s *Store) Enqueue(ctx context.Context, sub Submitter, plan *Plan, opts PlanOptions) (EnqueueResult, error) {
	var res EnqueueResult
	if h, err := hashFile(plan.Path); err != nil || h != plan.Hash {
		return res, fmt.Errorf("%w: enqueue %s: %s changed since it was read; run again", ErrBatchMismatch, plan.ID, plan.Path)
	}
	if earlier, err := s.claimFile(ctx, plan.Hash, plan.ID); err != nil {
		return res, err
	} else if earlier != "" && !opts.AllowDuplicates {
		return res, &SameFileError{Earlier: earlier}
	}
	if _, err := s.CreateBatch(ctx, Meta{ID: plan.ID, Source: plan.Path, Rows: plan.Rows, Hash: plan.Hash}); err != nil {
		return res, err
	}
	meta, _, err := s.Batch(ctx, plan.ID)
	if err != nil {
		return res, err
	}
	if meta.Hash != "" && meta.Hash != plan.Hash {
		return res, fmt.Errorf("%w: batch %s was enqueued from a different file; choose another --batch", ErrBatchMismatch, plan.ID)
	}
	f, err := os.Open(plan.Path)
	if err != nil {
		return res, fmt.Errorf("enqueue %s: %w", plan.ID, err)
	}
	defer f.Close()
	var chunk []Job
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		added, err := s.AddJobs(ctx, chunk)
		if err != nil {
			return err
		}
		for i, j := range chunk {
			if added[i] {
				res.Added++
				if j.State == tasks.StateRejected {
					res.Rejected++
				}
			} else {
				res.Existing++
				cur, err := s.Job(ctx, j.Batch, j.Row)
				if err != nil {
					return err
				}
				j.State = cur.State
			}
			if j.State == tasks.StateQueued {
				if err := sub.Submit(ctx, j.Batch, j.Row, 0); err != nil {
					return fmt.Errorf("enqueue %s row %d: %w", j.Batch, j.Row, err)
				}
				res.Queued++
			}
		}
		chunk = chunk[:0]
		return nil
	}
	err = eachRow(f, opts, func(r tasks.Row, dup *Duplicate) error {
		j := Job{Batch: plan.ID, Row: r.Index, Line: r.Line, Spec: r.Spec, State: tasks.StateQueued}
		switch {
		case r.Err != nil:
			j.State, j.FailCode, j.FailMsg = tasks.StateRejected, "INVALID_ROW", r.Err.Error()
		case dup != nil && !opts.AllowDuplicates:
			j.State, j.FailCode = tasks.StateRejected, "DUPLICATE_ROW"
			j.FailMsg = fmt.Sprintf("line %d: identical to line %d; enqueue with --allow-duplicates to pay for both", dup.Line, dup.FirstLine)
		}
		chunk = append(chunk, j)
		if len(chunk) >= enqueueChunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("enqueue %s: %w", plan.ID, err)
	}
	if err := flush(); err != nil {
		return res, err
	}
	return res, nil
}

// BatchOptions are the batch-wide settings of EnqueueBatch.
type BatchOptions struct {
	// RequestType is "async" or "callback" (recorded on a new batch only).
	RequestType string
	// BudgetSeconds caps the batch's video seconds: -1 leaves the cap as
	// it is, 0 removes it.
	BudgetSeconds int
	// TotalBudgetSeconds, when positive, sets the cap of all batches.
	TotalBudgetSeconds int
}

// EnqueueBatch records a planned batch with its request type and budgets,
// then enqueues its rows (see Enqueue).
func (s *Store) EnqueueBatch(ctx context.Context, sub Submitter, plan *Plan, popts PlanOptions, bopts BatchOptions) (EnqueueResult, error) {
	if earlier, err := s.claimFile(ctx, plan.Hash, plan.ID); err != nil {
		return EnqueueResult{}, err
	} else if earlier != "" && !popts.AllowDuplicates {
		return EnqueueResult{}, &SameFileError{Earlier: earlier}
	}
	if _, err := s.CreateBatch(ctx, Meta{ID: plan.ID, Source: plan.Path, Rows: plan.Rows,
		RequestType: bopts.RequestType, Hash: plan.Hash}); err != nil {
		return EnqueueResult{}, err
	}
	if bopts.BudgetSeconds >= 0 {
		if err := s.SetBudget(ctx, plan.ID, bopts.BudgetSeconds); err != nil {
			return EnqueueResult{}, err
		}
	}
	if bopts.TotalBudgetSeconds > 0 {
		if err := s.SetBudget(ctx, "", bopts.TotalBudgetSeconds); err != nil {
			return EnqueueResult{}, err
		}
	}
	return s.Enqueue(ctx, sub, plan, popts)
}

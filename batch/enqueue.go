package batch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/tasks"
)

// Submitter queues the submit task of a job. The worker package provides
// one backed by asynq; a task that already exists is not an error.
type Submitter interface {
	Submit(ctx context.Context, batch string, row, attempt int) error
}

// RowAttempt names one submit attempt of a row.
type RowAttempt struct {
	Row, Attempt int
}

// PipelineSubmitter is a Submitter that can also add the submit tasks of
// many rows to a Redis pipeline, so that Enqueue writes a chunk of rows and
// their tasks in one round trip. The worker package's queue is one; it must
// use the store's Redis.
type PipelineSubmitter interface {
	Submitter
	// SubmitPipelined adds the submit tasks of rows of batch to pipe,
	// leaving alone any that exist; once pipe has run, the command holds
	// the number of tasks added.
	SubmitPipelined(ctx context.Context, pipe redis.Pipeliner, batch string, rows []RowAttempt) *redis.Cmd
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

// enqueueChunk is how many rows Enqueue writes to Redis per round trip.
const enqueueChunk = 1000

// Enqueue reads the planned file again and records every row as a job:
// valid rows as queued, with a submit task; bad rows and unwanted duplicates
// as rejected, so the results list every row. Rows recorded by an earlier
// enqueue are left alone, except that a row still queued gets its submit
// task again (a no-op if it exists), so an interrupted enqueue can simply be
// repeated. With a PipelineSubmitter, each chunk of rows and their submit
// tasks reach Redis in one round trip (two when the batch existed before,
// the first reading the chunk's rows).
func (s *Store) Enqueue(ctx context.Context, sub Submitter, plan *Plan, opts PlanOptions) (EnqueueResult, error) {
	return s.enqueue(ctx, sub, plan, opts, nil)
}

func (s *Store) enqueue(ctx context.Context, sub Submitter, plan *Plan, opts PlanOptions, bopts *Settings) (EnqueueResult, error) {
	var res EnqueueResult
	if h, err := hashFile(plan.Path); err != nil || h != plan.Hash {
		return res, fmt.Errorf("%w: enqueue %s: %s changed since it was read; run again", ErrBatchMismatch, plan.ID, plan.Path)
	}
	if earlier, err := s.claimFile(ctx, plan.Hash, plan.ID); err != nil {
		return res, err
	} else if earlier != "" && !opts.AllowDuplicates {
		return res, &SameFileError{Earlier: earlier}
	}
	m := Meta{ID: plan.ID, Source: plan.Path, Rows: plan.Rows, Hash: plan.Hash}
	if bopts != nil {
		m.RequestType, m.Account = bopts.RequestType, bopts.Account
	}
	created, err := s.CreateBatch(ctx, m)
	if err != nil {
		return res, err
	}
	meta, _, err := s.Get(ctx, plan.ID)
	if err != nil {
		return res, err
	}
	if meta.Hash != "" && meta.Hash != plan.Hash {
		return res, fmt.Errorf("%w: batch %s was enqueued from a different file; choose another --batch", ErrBatchMismatch, plan.ID)
	}
	if bopts != nil && cmp.Or(bopts.Account, AccountDefault) != meta.Account {
		return res, fmt.Errorf("%w: batch %s was enqueued for account %s, not %s; use --account %s or choose another --batch",
			ErrBatchMismatch, plan.ID, meta.Account, cmp.Or(bopts.Account, AccountDefault), meta.Account)
	}
	if bopts != nil {
		if err := s.SetBudgets(ctx, plan.ID, *bopts); err != nil {
			return res, err
		}
	}
	f, err := os.Open(plan.Path)
	if err != nil {
		return res, fmt.Errorf("enqueue %s: %w", plan.ID, err)
	}
	defer f.Close()
	// One goroutine reads and checks rows while another writes the chunk
	// before, so Redis and this process work at the same time; two chunks
	// at most are held.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	full, free := make(chan []Job, 1), make(chan []Job, 2)
	free <- make([]Job, 0, s.chunk)
	free <- make([]Job, 0, s.chunk)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for c := range full {
			if ctx.Err() == nil {
				if err := s.enqueueChunk(ctx, sub, c, !created, &res); err != nil {
					cancel(err)
				}
			}
			free <- c[:0]
		}
	}()
	chunk := <-free
	send := func() error {
		if len(chunk) == 0 {
			return nil
		}
		full <- chunk
		select {
		case chunk = <-free:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	now := s.now()
	_, err = eachRow(f, opts, func(r tasks.Row, dup *Duplicate) error {
		j := Job{Batch: plan.ID, Row: r.Index, Line: r.Line, Spec: r.Spec, State: tasks.StateQueued, Enqueued: now}
		switch {
		case r.Err != nil:
			j.State, j.FailCode, j.FailMsg, j.Input = tasks.StateRejected, tasks.CodeInvalidRow, r.Err.Error(), r.Input
		case dup != nil && !opts.AllowDuplicates:
			j.State, j.FailCode = tasks.StateRejected, tasks.CodeDuplicateRow
			j.FailMsg = fmt.Sprintf("line %d: identical to line %d; enqueue with --allow-duplicates to pay for both", dup.Line, dup.FirstLine)
		}
		chunk = append(chunk, j)
		if len(chunk) == s.chunk {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	close(full)
	<-written
	if cause := context.Cause(ctx); cause != nil {
		return res, cause // the writer's error, or the caller's cancel
	}
	if err != nil {
		return res, fmt.Errorf("enqueue %s: %w", plan.ID, err)
	}
	// A batch of rejected rows only is finished at once.
	if _, err := s.Retire(ctx, plan.ID); err != nil {
		return res, err
	}
	return res, nil
}

// enqueueChunk records a chunk of jobs of one batch and queues the submit
// tasks of those that are queued, adding to res. When the batch existed
// before (existed), it first reads which of the rows are recorded already,
// in one round trip: those are left as they are, and the ones still queued
// get their current attempt's submit task again.
func (s *Store) enqueueChunk(ctx context.Context, sub Submitter, chunk []Job, existed bool, res *EnqueueResult) error {
	b := chunk[0].Batch
	add := chunk
	var submits []RowAttempt
	if existed {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(chunk))
		for i, j := range chunk {
			cmds[i] = pipe.HMGet(ctx, s.jobKey(b, j.Row), fState, fAttempt)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("enqueue %s: read rows: %w", b, err)
		}
		add = make([]Job, 0, len(chunk))
		for i, j := range chunk {
			v := cmds[i].Val()
			state, _ := v[0].(string)
			if state == "" {
				add = append(add, j)
				continue
			}
			res.Existing++
			if tasks.State(state) == tasks.StateQueued {
				str, _ := v[1].(string)
				attempt, _ := strconv.Atoi(str)
				submits = append(submits, RowAttempt{Row: j.Row, Attempt: attempt})
			}
		}
	}
	for _, j := range add {
		if j.State == tasks.StateQueued {
			submits = append(submits, RowAttempt{Row: j.Row, Attempt: j.Attempt})
		}
	}
	ps, pipelined := sub.(PipelineSubmitter)
	pipe := s.rdb.Pipeline()
	var addCmd *redis.Cmd
	if len(add) > 0 {
		addCmd = s.addJobs(ctx, pipe, add)
	}
	if pipelined && len(submits) > 0 {
		ps.SubmitPipelined(ctx, pipe, b, submits)
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("enqueue %s: %w", b, err)
		}
	}
	if addCmd != nil {
		added, err := addedJobs(addCmd, len(add))
		if err != nil {
			return fmt.Errorf("enqueue %s: %w", b, err)
		}
		for i, j := range add {
			switch {
			case !added[i]:
				res.Existing++ // recorded meanwhile by another enqueue
			case j.State == tasks.StateRejected:
				res.Added++
				res.Rejected++
			default:
				res.Added++
			}
		}
	}
	if !pipelined {
		for _, r := range submits {
			if err := sub.Submit(ctx, b, r.Row, r.Attempt); err != nil {
				return fmt.Errorf("enqueue %s row %d: %w", b, r.Row, err)
			}
		}
	}
	res.Queued += len(submits)
	return nil
}

// Settings are the batch-wide settings of EnqueueBatch.
type Settings struct {
	// RequestType is "async" or "callback" (recorded on a new batch only).
	RequestType string
	// BudgetSeconds caps the batch's video seconds: -1 leaves the cap as
	// it is, 0 removes it.
	BudgetSeconds int
	// TotalBudgetSeconds, when positive, sets the cap of all batches.
	TotalBudgetSeconds int
	// Account names the provider account of the batch (recorded on a new
	// batch only; default AccountDefault); its budget counts the batch's
	// reservations.
	Account string
	// AccountBudgetSeconds caps the video seconds of every batch of the
	// account together; 0 removes the cap. Both are applied only when
	// Account is set.
	AccountBudgetSeconds int
}

// AccountDefault names the provider account of a batch that names none:
// the configuration's provider.api_key.
const AccountDefault = "default"

// EnqueueBatch records a planned batch with its request type and budgets,
// then enqueues its rows (see Enqueue).
func (s *Store) EnqueueBatch(ctx context.Context, sub Submitter, plan *Plan, popts PlanOptions, bopts Settings) (EnqueueResult, error) {
	return s.enqueue(ctx, sub, plan, popts, &bopts)
}

// SetBudgets applies the budgets of bopts to batch id and the total.
func (s *Store) SetBudgets(ctx context.Context, id string, bopts Settings) error {
	if bopts.BudgetSeconds >= 0 {
		if err := s.SetBudget(ctx, id, bopts.BudgetSeconds); err != nil {
			return err
		}
	}
	if bopts.TotalBudgetSeconds > 0 {
		if err := s.SetBudget(ctx, "", bopts.TotalBudgetSeconds); err != nil {
			return err
		}
	}
	if bopts.Account == "" {
		return nil // the account's budget is left as it is (retry)
	}
	if err := s.setBatchAccount(ctx, id, bopts.Account); err != nil {
		return err
	}
	return s.SetAccountBudget(ctx, bopts.Account, bopts.AccountBudgetSeconds)
}

package batch

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/seedbatch/seedbatch/tasks"
)

// RecoveredCreateMsg is the failure message of a row Recover marks
// ambiguous: its journal holds the intent of a create and no task id.
const RecoveredCreateMsg = "the create may have been sent before Redis lost its data: the journal holds its intent " +
	"but no task id, so it was not sent again; check, then seedbatch retry BATCH --state ambiguous"

// Recover rebuilds a batch that Redis lost from a journal of its changes:
// a run's journal on an embedded Redis or on a Redis server (the header's
// batch and file hash must be want's; its store may be either). The batch
// must have been enqueued again first, its rows queued. It replays the
// journal like Replay: rows whose create was answered get their task id
// back (and are polled, never created again), finished rows their outcome.
// Mark the rows whose create was cut off with Interrupted afterwards.
func (s *Store) Recover(ctx context.Context, r io.Reader, want JournalHeader) (int, error) {
	return s.replay(ctx, r, func(got JournalHeader) error {
		if got.Batch != want.Batch || got.Hash != want.Hash {
			return &JournalMismatchError{Path: "the journal", Got: got, Want: want}
		}
		return nil
	})
}

// Interrupted marks ambiguous, with reason msg, every row of a batch left
// submitting without a task id: its create may have reached the provider.
// It indexes the task of every row that has one, so that callbacks naming
// it find the row. It returns the rows marked.
func (s *Store) Interrupted(ctx context.Context, batch, msg string, now time.Time) (int, error) {
	var marked []Job
	for j, err := range s.All(ctx, batch) {
		if err != nil {
			return 0, err
		}
		switch {
		case j.State == tasks.StateSubmitting && j.TaskID == "":
			marked = append(marked, j)
		case j.TaskID != "":
			if err := s.IndexTask(ctx, j.TaskID, j.Holder()); err != nil {
				return 0, err
			}
		}
	}
	for _, j := range marked {
		_, err := s.Transition(ctx, batch, j.Row, Change{
			From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateAmbiguous, Attempt: &j.Attempt,
			FailCode: tasks.CodeCreateInterrupted, FailMsg: msg, Completed: now, Sync: true,
		})
		if err != nil {
			return 0, fmt.Errorf("mark row %d ambiguous: %w", j.Row, err)
		}
	}
	return len(marked), nil
}

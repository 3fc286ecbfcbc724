package batch_test

import (
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestKeysShareASlot runs every script of the store, and its transactions,
// through a hook that fails the test when one touches keys of more than one
// Redis Cluster hash slot, or when a script of the package never ran.
func TestKeysShareASlot(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	r.CheckSlots(t, ".")
	ctx := t.Context()
	s := batch.NewStore(r.Client, r.Prefix)
	s.SetRetention(time.Hour)
	if err := s.SetBudget(ctx, "", 100); err != nil {
		t.Fatal(err)
	}
	id := enqueueThree(t, r, s, "slots")
	if _, err := s.NextCreate(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Reserve(ctx, id, 1, 0, 4); err != nil || !ok {
		t.Fatalf("reserve: %v, %v", ok, err)
	}
	if err := s.Refund(ctx, id, 1, 0, 4); err != nil {
		t.Fatal(err)
	}
	move(t, s, id, 0, tasks.StateSubmitted, tasks.StateDone)
	move(t, s, id, 1, tasks.StateQueued, tasks.StateCanceled)
	move(t, s, id, 2, tasks.StateQueued, tasks.StateFailed)
	s.WaitRetired()
	if ok, err := s.Retire(ctx, id); err != nil || ok {
		t.Fatalf("retire: %v, %v (want false: retired after the last transition)", ok, err)
	}
	move(t, s, id, 2, tasks.StateFailed, tasks.StateQueued)
	if _, err := s.Reopen(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Batches(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, id, true); err != nil {
		t.Fatal(err)
	}
}

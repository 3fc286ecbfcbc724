package queue_test

import (
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
)

// TestKeysShareASlot enqueues every kind of task, through asynq and through
// the package's own script, under a hook that fails the test when a
// command, transaction or script touches keys of more than one Redis
// Cluster hash slot, or when a script of the package never ran.
func TestKeysShareASlot(t *testing.T) {
	t.Parallel()
	rs, _, q, _ := queueSetup(t)
	rs.CheckSlots(t, ".")
	ctx := t.Context()
	if n := submitPipelined(t, rs, q, "b1", batch.RowAttempt{Row: 0}, batch.RowAttempt{Row: 1}); n != 2 {
		t.Fatalf("added %d tasks, want 2", n)
	}
	for name, err := range map[string]error{
		"submit":   q.Submit(ctx, "b1", 2, 0),
		"poll":     q.Poll(ctx, "b1", 0, 0, 1, time.Now().Add(time.Minute), false),
		"download": q.Download(ctx, "b1", 0, 0),
		"callback": q.Callback(ctx, "b1", 1, 0, "task-1"),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

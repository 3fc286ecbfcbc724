package queue_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// queueSetup gives a test its own Redis namespace, queue and inspector.
func queueSetup(t *testing.T) (*redistest.Server, queue.Names, *queue.Client, *asynq.Inspector) {
	t.Helper()
	rs := redistest.New(t)
	qs := queue.NamesFor(rs.Prefix)
	q := queue.New(rs.Client, qs)
	t.Cleanup(func() { q.Close() })
	insp := asynq.NewInspectorFromRedisClient(rs.Client)
	t.Cleanup(func() { insp.Close() })
	return rs, qs, q, insp
}

// submitPipelined writes rows' submit tasks through one pipeline and
// returns how many were added.
func submitPipelined(t *testing.T, rs *redistest.Server, q *queue.Client, b string, rows ...batch.RowAttempt) int {
	t.Helper()
	pipe := rs.Client.Pipeline()
	cmd := q.SubmitPipelined(t.Context(), pipe, b, rows)
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	n, err := cmd.Int()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSubmitPipelinedWritesWhatAsynqWrites writes each task once with
// asynq's client (Queue.Submit) and once through the pipeline, and compares
// what Redis holds and what asynq's Inspector reads.
func TestSubmitPipelinedWritesWhatAsynqWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		batch   string
		row     int
		attempt int
	}{
		{"first attempt", "ads-0123456789", 0, 0},
		{"large row, later attempt", "b.2_x", 999_999, 3},
		{"long batch id", "a-batch-id-of-sixty-four-characters-is-allowed-by-the-pattern-x", 42, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs, qs, q, insp := queueSetup(t)
			ctx := t.Context()
			id := tasks.SubmitTaskID(tc.batch, tc.row, tc.attempt)
			key := "asynq:{" + qs.Submit + "}:t:" + id
			pending := "asynq:{" + qs.Submit + "}:pending"
			read := func() (map[string]string, *asynq.TaskInfo, []string) {
				h, err := rs.Client.HGetAll(ctx, key).Result()
				if err != nil {
					t.Fatal(err)
				}
				info, err := insp.GetTaskInfo(qs.Submit, id)
				if err != nil {
					t.Fatal(err)
				}
				ids, err := rs.Client.LRange(ctx, pending, 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				return h, info, ids
			}
			if err := q.Submit(ctx, tc.batch, tc.row, tc.attempt); err != nil {
				t.Fatal(err)
			}
			theirs, theirInfo, _ := read()
			if err := insp.DeleteTask(qs.Submit, id); err != nil {
				t.Fatal(err)
			}
			if n := submitPipelined(t, rs, q, tc.batch, batch.RowAttempt{Row: tc.row, Attempt: tc.attempt}); n != 1 {
				t.Fatalf("added %d tasks, want 1", n)
			}
			ours, info, ids := read()
			if ours["msg"] != theirs["msg"] {
				t.Errorf("message differs:\nours   %q\ntheirs %q", ours["msg"], theirs["msg"])
			}
			if ours["state"] != "pending" || ours["pending_since"] == "" || len(ours) != len(theirs) {
				t.Errorf("task hash = %q, asynq wrote %q", ours, theirs)
			}
			if len(ids) != 1 || ids[0] != id {
				t.Errorf("pending list = %q, want [%s]", ids, id)
			}
			p, err := tasks.ParseJobPayload(info.Payload)
			if err != nil || p.Batch != tc.batch || p.Row != tc.row || p.Attempt != tc.attempt {
				t.Errorf("payload = %+v, %v", p, err)
			}
			if info.Type != tasks.TypeSubmit || info.Queue != qs.Submit || info.State != asynq.TaskStatePending ||
				info.MaxRetry != theirInfo.MaxRetry || info.Timeout != theirInfo.Timeout || info.Timeout != 5*time.Minute ||
				info.MaxRetry < 1<<20 {
				t.Errorf("inspector reads %+v, asynq's own task %+v", info, theirInfo)
			}
			queues, err := insp.Queues()
			if err != nil || len(queues) == 0 {
				t.Errorf("queues = %v, %v", queues, err)
			}
		})
	}
}

// TestSubmitPipelinedLeavesExistingTasks: an id written by asynq's client
// is left alone by the pipeline, and the other way round.
func TestSubmitPipelinedLeavesExistingTasks(t *testing.T) {
	t.Parallel()
	rs, qs, q, insp := queueSetup(t)
	ctx := t.Context()
	client := asynq.NewClientFromRedisClient(rs.Client)
	defer client.Close()
	// asynq's client first, with a payload of its own under row 0's id.
	mark := []byte(`{"batch":"b","row":0,"poll":7}`)
	if _, err := client.EnqueueContext(ctx, asynq.NewTask(tasks.TypeSubmit, mark), asynq.Queue(qs.Submit),
		asynq.TaskID(tasks.SubmitTaskID("b", 0, 0))); err != nil {
		t.Fatal(err)
	}
	if n := submitPipelined(t, rs, q, "b", batch.RowAttempt{Row: 0}, batch.RowAttempt{Row: 1}); n != 1 {
		t.Fatalf("added %d tasks, want only row 1's", n)
	}
	info, err := insp.GetTaskInfo(qs.Submit, tasks.SubmitTaskID("b", 0, 0))
	if err != nil || string(info.Payload) != string(mark) {
		t.Fatalf("asynq's task was changed: %+v, %v", info, err)
	}
	// The pipeline first: asynq's client finds the id taken.
	_, err = client.EnqueueContext(ctx, asynq.NewTask(tasks.TypeSubmit, mark), asynq.Queue(qs.Submit),
		asynq.TaskID(tasks.SubmitTaskID("b", 1, 0)))
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Fatalf("asynq's client over a pipelined task: err = %v, want ErrTaskIDConflict", err)
	}
	if err := q.Submit(ctx, "b", 1, 0); err != nil {
		t.Fatalf("Submit over a pipelined task: %v", err)
	}
	// Twice through the pipeline adds nothing either.
	if n := submitPipelined(t, rs, q, "b", batch.RowAttempt{Row: 0}, batch.RowAttempt{Row: 1}); n != 0 {
		t.Fatalf("a second pipeline added %d tasks", n)
	}
	if n, err := rs.Client.LLen(ctx, "asynq:{"+qs.Submit+"}:pending").Result(); err != nil || n != 2 {
		t.Fatalf("pending list holds %d ids (%v), want 2", n, err)
	}
}

// TestSubmitPipelinedTasksAreProcessed: an asynq server runs every task
// written through the pipeline, in row order, with its payload.
func TestSubmitPipelinedTasksAreProcessed(t *testing.T) {
	t.Parallel()
	rs, qs, q, _ := queueSetup(t)
	const n = 300
	rows := make([]batch.RowAttempt, n)
	for i := range rows {
		rows[i] = batch.RowAttempt{Row: i, Attempt: i % 2}
	}
	if got := submitPipelined(t, rs, q, "run", rows...); got != n {
		t.Fatalf("added %d tasks, want %d", got, n)
	}
	var mu sync.Mutex
	var seen []tasks.JobPayload
	done := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeSubmit, func(ctx context.Context, task *asynq.Task) error {
		p, err := tasks.ParseJobPayload(task.Payload())
		if err != nil {
			return err
		}
		if id, _ := asynq.GetTaskID(ctx); id != tasks.SubmitTaskID(p.Batch, p.Row, p.Attempt) {
			t.Errorf("task %s carries %+v", id, p)
		}
		mu.Lock()
		defer mu.Unlock()
		if seen = append(seen, p); len(seen) == n {
			close(done)
		}
		return nil
	})
	srv := asynq.NewServerFromRedisClient(rs.Client, asynq.Config{Queues: map[string]int{qs.Submit: 1}, Concurrency: 1,
		Logger: quietAsynq{}})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("processed %d of %d tasks", len(seen), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range seen {
		if p.Batch != "run" || p.Row != i || p.Attempt != i%2 {
			t.Fatalf("task %d processed = %+v, want row %d in order", i, p, i)
		}
	}
}

// quietAsynq discards asynq's own log lines.
type quietAsynq struct{}

func (quietAsynq) Debug(...any) {}
func (quietAsynq) Info(...any)  {}
func (quietAsynq) Warn(...any)  {}
func (quietAsynq) Error(...any) {}
func (quietAsynq) Fatal(...any) {}

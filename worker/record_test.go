package worker

import (
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestRecordTaskIDAfterARaceBinds plays the run of a submit that got its
// answer after another run of the same submit marked the row ambiguous: the
// task id must not be lost.
func TestRecordTaskIDAfterARaceBinds(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	store := batch.NewStore(rs.Client, rs.Prefix)
	lim, _ := ratelimit.New(rs.Client, ratelimit.Config{Prefix: rs.Prefix, Scope: "r"})
	client, _ := seedance.New(seedance.Config{BaseURL: "http://127.0.0.1:1", APIKey: "k"})
	f, _ := fetch.New(fetch.Config{Dir: t.TempDir()})
	w, err := New(rs.Client, store, lim, client, f, Config{Queues: queue.NamesFor(rs.Prefix)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 1}); err != nil {
		t.Fatal(err)
	}
	spec := tasks.Spec{ID: "a", Mode: "text-to-video", Prompt: "a scene", Duration: 4, Resolution: "720p", AspectRatio: "16:9", Provider: "auto"}
	if _, err := store.AddJobs(ctx, []batch.Job{{Batch: "b", Row: 0, Spec: spec, State: tasks.StateQueued}}); err != nil {
		t.Fatal(err)
	}
	zero := 0
	for _, c := range []batch.Change{
		{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting, Attempt: &zero},
		{From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateAmbiguous, Attempt: &zero, FailCode: tasks.CodeCreateInterrupted},
	} {
		if _, err := store.Transition(ctx, "b", 0, c); err != nil {
			t.Fatal(err)
		}
	}
	job, _ := store.Job(ctx, "b", 0)
	if err := w.recordTaskID(ctx, job, "task_late", time.Now()); err != nil {
		t.Fatal(err)
	}
	job, _ = store.Job(ctx, "b", 0)
	if job.State != tasks.StateSubmitted || job.TaskID != "task_late" || job.FailCode != "" {
		t.Errorf("row after the late answer: %s %q %q", job.State, job.TaskID, job.FailCode)
	}
	if owner, _ := store.TaskOwner(ctx, "task_late"); owner != job.Holder() {
		t.Errorf("task owner %q", owner)
	}
}

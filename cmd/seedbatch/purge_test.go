package main

import (
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestPurgeCommand purges batches from the command line: a finished one, an
// unknown one, and one in progress with and without --force.
func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		finished bool
		args     []string
		wantCode int
		wantOut  string
	}{
		{"finished", true, []string{"purge", "b"}, exitOK, "batch b purged: 2 job records, 1 provider task index entries"},
		{"unknown", true, []string{"purge", "nope"}, exitUsage, "no batch nope in the Redis at"},
		{"in progress", false, []string{"purge", "b"}, exitUsage, "--force"},
		{"in progress forced", false, []string{"purge", "--force", "b"}, exitOK, "2 rows were still in progress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := redistest.New(t)
			ctx := t.Context()
			store := batch.NewStore(rs.Client, rs.Prefix)
			if _, err := store.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 2}); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if _, err := store.AddJobs(ctx, []batch.Job{{Batch: "b", Row: i, Line: i + 2, State: tasks.StateQueued,
					Spec: tasks.Spec{ID: "r", Prompt: "a scene", Duration: 4}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := store.Transition(ctx, "b", 0, batch.Change{From: []tasks.State{tasks.StateQueued},
				To: tasks.StateSubmitted, TaskID: "task_0"}); err != nil {
				t.Fatal(err)
			}
			if err := store.IndexTask(ctx, "task_0", "b:0:0"); err != nil {
				t.Fatal(err)
			}
			to := tasks.StateSubmitted
			if tc.finished {
				to = tasks.StateFailed
			}
			for i, from := range []tasks.State{tasks.StateSubmitted, tasks.StateQueued} {
				if _, err := store.Transition(ctx, "b", i, batch.Change{From: []tasks.State{from}, To: to}); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"REDIS_URL": rs.URL, "SEEDBATCH_REDIS_PREFIX": rs.Prefix}
			code, stdout, stderr := runMain(t, env, tc.args...)
			if code != tc.wantCode || !strings.Contains(stdout+stderr, tc.wantOut) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, tc.wantCode, tc.wantOut, stdout, stderr)
			}
			_, _, err := store.Get(ctx, "b")
			if gone := err != nil; gone != (tc.wantCode == exitOK) {
				t.Fatalf("batch gone = %v after exit %d", gone, code)
			}
		})
	}
}

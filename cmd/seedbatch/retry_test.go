package main

import (
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestRetryRebill checks that retry --state failed lists and leaves alone
// the rows whose task may have been billed, resubmits the others, and
// creates the skipped ones again only with --rebill.
func TestRetryRebill(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	store := batch.NewStore(rs.Client, rs.Prefix)
	if _, err := store.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 3}); err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		id, task, code string
	}{
		{"violated", "task_a", "CONTENT_VIOLATION"},
		{"unreadable", "task_b", tasks.CodeAnswerUnreadable},
		{"expired", "task_c", tasks.CodeResultExpired},
	}
	for i, r := range rows {
		if _, err := store.AddJobs(ctx, []batch.Job{{Batch: "b", Row: i, Line: i + 2, State: tasks.StateQueued,
			Spec: tasks.Spec{ID: r.id, Prompt: "scene " + r.id, Duration: 4}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Transition(ctx, "b", i, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateFailed,
			TaskID: r.task, FailCode: r.code, FailMsg: "why"}); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"REDIS_URL": rs.URL, "SEEDBATCH_REDIS_PREFIX": rs.Prefix}
	states := func() []tasks.State {
		var out []tasks.State
		for i := range rows {
			j, err := store.Job(ctx, "b", i)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, j.State)
		}
		return out
	}

	code, stdout, stderr := runMain(t, env, "retry", "b", "--state", "failed")
	if code != exitOK {
		t.Fatalf("retry: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"skipped unreadable (line 3, task task_b, PROVIDER_ANSWER_UNREADABLE): ",
		"skipped expired (line 4, task task_c, RESULT_EXPIRED): ",
		"batch b: 1 failed rows queued again",
		"2 failed rows skipped", "--rebill",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("retry output does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "skipped violated") {
		t.Errorf("a provider failure was skipped:\n%s", stdout)
	}
	if got := states(); got[0] != tasks.StateQueued || got[1] != tasks.StateFailed || got[2] != tasks.StateFailed {
		t.Fatalf("after retry: %v, want queued, failed, failed", got)
	}

	code, stdout, stderr = runMain(t, env, "retry", "b", "--state", "failed", "--rebill")
	if code != exitOK || !strings.Contains(stdout, "batch b: 2 failed rows queued again") || strings.Contains(stdout, "skipped") {
		t.Fatalf("retry --rebill: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := states(); got[1] != tasks.StateQueued || got[2] != tasks.StateQueued {
		t.Fatalf("after retry --rebill: %v, want every row queued", got)
	}
}

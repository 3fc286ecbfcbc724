package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// statusBatch records a batch of 11 rows on rs, moved into every state the
// status table has to show.
func statusBatch(t *testing.T, rs *redistest.Server, id string) {
	t.Helper()
	ctx := t.Context()
	path := writeCSV(t, "status", 11)
	plan, err := batch.PlanFile(path, batch.PlanOptions{BatchID: id})
	if err != nil {
		t.Fatal(err)
	}
	store := batch.NewStore(rs.Client, rs.Prefix)
	if _, err := store.Enqueue(ctx, &noSubmitter{}, plan, batch.PlanOptions{BatchID: id}); err != nil {
		t.Fatal(err)
	}
	// Row 10 stays queued.
	for row, to := range []tasks.State{tasks.StateBudget, tasks.StateSubmitting, tasks.StateSubmitted, tasks.StateSucceeded,
		tasks.StateDone, tasks.StateDone, tasks.StateFailed, tasks.StateRejected, tasks.StateAmbiguous, tasks.StateCanceled} {
		if _, err := store.Transition(ctx, id, row, batch.Change{From: []tasks.State{tasks.StateQueued}, To: to}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusTable checks status's table on a batch with rows in every
// state: one DONE column, 100 columns wide, every state with --wide, and
// the queues no worker serves named instead of a rate of 0 and no ETA.
func TestStatusTable(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	const id = "spring-campaign-2c0ffee1a7"
	statusBatch(t, rs, id)
	env := []string{"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix}
	queues := queue.NamesFor(rs.Prefix)

	status := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := cliStreams(t, env, append([]string{"status"}, args...)...)
		if code != exitOK {
			t.Fatalf("status %v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		return stdout
	}
	header := func(out string) []string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "BATCH") {
				return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), -1)
			}
		}
		t.Fatalf("no table:\n%s", out)
		return nil
	}
	row := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, id+" ") {
				return l
			}
		}
		t.Fatalf("no row for %s:\n%s", id, out)
		return ""
	}

	out := status()
	for _, l := range strings.Split(out, "\n") {
		if w := utf8.RuneCountInString(l); w > 100 {
			t.Errorf("line of %d columns: %q", w, l)
		}
	}
	seen := map[string]bool{}
	for _, h := range header(out) {
		if seen[h] {
			t.Errorf("two columns headed %s:\n%s", h, out)
		}
		seen[h] = true
	}
	if got, want := strings.Fields(row(out))[:6], []string{id, "11", "2", "3", "2", "4"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("row %v, want %v (waiting, running, done, no video):\n%s", got, want, out)
	}
	for _, want := range []string{
		"no worker is serving the submit queue: start seedbatch worker\n",
		"no worker is serving the poll queue: start seedbatch worker\n",
		"no worker is serving the download queue: start seedbatch worker\n",
		id + ": 0 video seconds created (no budget)\n" +
			"  1 held by the budget, 1 still downloading, 1 failed, 1 ambiguous, 1 rejected, 1 canceled\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if r := row(out); !strings.HasSuffix(r, "no worker") || strings.HasSuffix(r, "?") {
		t.Errorf("row without a worker: %q", r)
	}

	wide := status("--wide")
	h := header(wide)
	for _, st := range tasks.States {
		if n := strings.Count(" "+strings.Join(h, " ")+" ", " "+strings.ToUpper(string(st))+" "); n != 1 {
			t.Errorf("--wide has %d columns for %s: %v", n, st, h)
		}
	}
	if !strings.Contains(strings.Join(h, " "), "FINISHED") {
		t.Errorf("--wide has no FINISHED column: %v", h)
	}

	// A worker serving the queues: no complaint, and an ETA again.
	srv := asynq.NewServerFromRedisClient(rs.Client, asynq.Config{
		Queues: map[string]int{queues.Submit: 1, queues.Poll: 1, queues.Download: 1}, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	testwait.Until(t, 15*time.Second, func() error {
		if out := status(); strings.Contains(out, "no worker") {
			return fmt.Errorf("still no worker with one serving the queues:\n%s", out)
		}
		return nil
	})
}

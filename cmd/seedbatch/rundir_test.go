package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/rundir"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestSecondRunOfABatchIsRefused starts two runs of one batch on the
// embedded Redis at once: the second must refuse, naming the first's pid,
// before it creates anything.
func TestSecondRunOfABatchIsRefused(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	env := []string{"REDIS_URL=", "SEEDANCE_API_KEY=", "SEEDBATCH_OUT_DIR=" + out, "SEEDBATCH_SIM_TIME_SCALE=1"}
	path := writeCSV(t, "twice", 4)
	first := start(t, env, "run", "--batch", "twice", path)
	lock := filepath.Join(out, "twice", rundir.Name, "lock")
	testwait.Until(t, 30*time.Second, func() error {
		if b, err := os.ReadFile(lock); err != nil || len(b) == 0 {
			return fmt.Errorf("the first run never took its lock (%v):\n%s", err, first.stderr.String())
		}
		return nil
	})
	code, output := cli(t, env, "run", "--batch", "twice", path)
	want := fmt.Sprintf("batch twice is already running (pid %d)", first.cmd.Process.Pid)
	if code != exitUsage || !strings.Contains(output, want) {
		t.Errorf("second run: exit %d, want %d and %q\n%s", code, exitUsage, want, output)
	}
	if strings.Contains(output, "rows (") {
		t.Errorf("the refused run enqueued rows:\n%s", output)
	}
}

// TestRenamedCopyIsRefused runs a file, then a renamed copy of it: the copy
// would create every row again, so it is refused unless asked for.
func TestRenamedCopyIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"SEEDBATCH_OUT_DIR": filepath.Join(dir, "out"), "SEEDBATCH_SIM_TIME_SCALE": "200"}
	orig := writeCSV(t, "copy", 3)
	copyPath := filepath.Join(dir, "copy-final-v2.csv")
	b, _ := os.ReadFile(orig)
	if err := os.WriteFile(copyPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runMain(t, env, "run", orig); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	code, _, stderr := runMain(t, env, "run", copyPath)
	if code != exitUsage || !strings.Contains(stderr, "enqueued before as batch copy-") || !strings.Contains(stderr, "--allow-duplicates") {
		t.Errorf("renamed copy: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runMain(t, env, "run", "--allow-duplicates", copyPath); code != exitOK {
		t.Errorf("renamed copy with --allow-duplicates: exit %d\n%s", code, stderr)
	}
}

// TestResumeWithAnEditedFileIsRefused runs a batch, inserts a row at the top
// of its file and runs the same batch again: replaying the journal by row
// would give the old first row's task and video to the new row.
func TestResumeWithAnEditedFileIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"SEEDBATCH_OUT_DIR": filepath.Join(dir, "out"), "SEEDBATCH_SIM_TIME_SCALE": "200"}
	path := filepath.Join(dir, "edit.csv")
	if err := os.WriteFile(path, []byte("id,prompt\nfirst,the first scene\nsecond,the second scene\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runMain(t, env, "run", "--batch", "edit", path); code != exitOK {
		t.Fatalf("first run: exit %d\n%s", code, stderr)
	}
	results := filepath.Join(dir, "out", "edit", "results.csv")
	before, _ := os.ReadFile(results)
	if err := os.WriteFile(path, []byte("id,prompt\nnew,a new scene on top\nfirst,the first scene\nsecond,the second scene\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMain(t, env, "run", "--batch", "edit", path)
	if code != exitUsage || !strings.Contains(stderr, "the CSV changed since the batch began") {
		t.Errorf("resume with an edited file: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(results); string(after) != string(before) {
		t.Errorf("the refused run rewrote the results:\n%s", after)
	}
}

// TestResumeRestoresLeases replays a journal whose rows were created before
// a stop: their tasks may still run at the provider, so each must hold an
// in-flight slot again.
func TestResumeRestoresLeases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "leases.csv")
	if err := os.WriteFile(csvPath, []byte("prompt\nscene one here\nscene two here\nscene three here\nscene four here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := batch.PlanFile(csvPath, batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hdr := batch.JournalHeader{Batch: plan.ID, Hash: plan.Hash, Store: batch.StoreEmbedded}
	journalPath := filepath.Join(dir, "journal.jsonl")
	j, err := batch.OpenJournal(journalPath, hdr)
	if err != nil {
		t.Fatal(err)
	}
	zero := 0
	for row, to := range []tasks.State{tasks.StateSubmitting, tasks.StateSubmitted, tasks.StateSubmitted} {
		c := batch.Change{From: []tasks.State{tasks.StateQueued}, To: to, Attempt: &zero}
		if to == tasks.StateSubmitted {
			c.From, c.TaskID = []tasks.State{tasks.StateQueued, tasks.StateSubmitting}, fmt.Sprintf("task_%d", row)
		}
		if err := j.Write(batch.Record{Kind: batch.RecordTransition, Batch: plan.ID, Row: row, Change: &c}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()

	m := &Main{Stdout: &strings.Builder{}, Stderr: &strings.Builder{}, Getenv: func(string) (string, bool) { return "", false }}
	cfg := config.Default()
	cfg.Provider.APIKey = "leases-key"
	s, err := m.open(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := &noSubmitter{}
	if _, err := s.store.Enqueue(ctx, q, plan, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	closeJournal, err := m.journal(ctx, s, journalPath, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer closeJournal()
	if n, err := s.limiter.InFlight(ctx); err != nil || n != 3 {
		t.Errorf("in flight after the resume = %d, %v; want 3 (one per row created or being created)", n, err)
	}
}

// TestRunResumeAnnouncesWhereTheBatchStands runs a batch, then the same
// command again: the second run resumes from the journal and must say so,
// with the rows already finished, not announce them as new.
func TestRunResumeAnnouncesWhereTheBatchStands(t *testing.T) {
	t.Parallel()
	env := []string{"REDIS_URL=", "SEEDANCE_API_KEY=", "SEEDBATCH_OUT_DIR=" + t.TempDir(), "SEEDBATCH_SIM_TIME_SCALE=200"}
	path := writeCSV(t, "again", 4)
	code, out := cli(t, env, "run", "--batch", "again", path)
	if code != exitOK || !strings.Contains(out, "batch again: 4 rows (4 to submit, 0 rejected)") {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	code, out = cli(t, env, "run", "--batch", "again", path)
	want := "batch again: 4 rows (resumed: 4 finished, 0 in flight, 0 still to submit)"
	if code != exitOK || !strings.Contains(out, "resuming:") || !strings.Contains(out, want) || strings.Contains(out, "to submit, ") {
		t.Errorf("second run: exit %d, want %q\n%s", code, want, out)
	}
}

type noSubmitter struct{}

func (*noSubmitter) Submit(context.Context, string, int, int) error { return nil }

package batch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/tasks"
)

func setup(t *testing.T) (*batch.Store, context.Context) {
	t.Helper()
	r := redistest.New(t)
	return batch.NewStore(r.Client, r.Prefix), t.Context()
}

func spec(prompt string) tasks.Spec {
	return tasks.Spec{Mode: "text-to-video", Prompt: prompt, Duration: 4, Resolution: "720p", AspectRatio: "16:9", Provider: "auto"}
}

func TestTransitionMovesStateAndCounters(t *testing.T) {
	s, ctx := setup(t)
	if _, err := s.CreateBatch(ctx, batch.Meta{ID: "b1", Rows: 2}); err != nil {
		t.Fatal(err)
	}
	added, err := s.AddJobs(ctx, []batch.Job{
		{Batch: "b1", Row: 0, Line: 2, Spec: spec("first row"), State: tasks.StateQueued},
		{Batch: "b1", Row: 1, Line: 3, Spec: spec("second row"), State: tasks.StateRejected, FailMsg: "bad"},
	})
	if err != nil || !added[0] || !added[1] {
		t.Fatalf("AddJobs = %v, %v", added, err)
	}
	again, _ := s.AddJobs(ctx, []batch.Job{{Batch: "b1", Row: 0, Spec: spec("changed"), State: tasks.StateQueued}})
	if again[0] {
		t.Fatal("AddJobs added an existing job")
	}
	zero := 0
	steps := []struct {
		name     string
		change   batch.Change
		wantErr  error
		wantPrev tasks.State
	}{
		{"queued to submitting", batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting, Attempt: &zero}, nil, tasks.StateQueued},
		{"not from queued again", batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting}, batch.ErrConflict, tasks.StateSubmitting},
		{"wrong attempt", batch.Change{From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateSubmitted, Attempt: new(int(1))}, batch.ErrConflict, tasks.StateSubmitting},
		{"submitted with task id", batch.Change{From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateSubmitted, TaskID: "task_1"}, nil, tasks.StateSubmitting},
		{"succeeded with urls", batch.Change{From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateSucceeded, ResultURLs: []string{"http://x/a.mp4"}}, nil, tasks.StateSubmitted},
	}
	for _, st := range steps {
		prev, err := s.Transition(ctx, "b1", 0, st.change)
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		}
		if prev != st.wantPrev {
			t.Fatalf("%s: prev = %s, want %s", st.name, prev, st.wantPrev)
		}
	}
	job, err := s.Job(ctx, "b1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != tasks.StateSucceeded || job.TaskID != "task_1" || len(job.ResultURLs) != 1 || job.Spec.Prompt != "first row" || job.Line != 2 {
		t.Fatalf("job = %+v", job)
	}
	_, counts, err := s.Get(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	if counts[tasks.StateSucceeded] != 1 || counts[tasks.StateRejected] != 1 || counts[tasks.StateQueued] != 0 || counts.Terminal() != 1 {
		t.Fatalf("counts = %v", counts)
	}
	if _, err := s.Transition(ctx, "b1", 9, batch.Change{To: tasks.StateFailed}); !errors.Is(err, batch.ErrNotFound) {
		t.Fatalf("missing job: err = %v", err)
	}
}

// TestTransitionRace: many goroutines race one transition; exactly one wins
// and the counters stay exact.
func TestTransitionRace(t *testing.T) {
	s, ctx := setup(t)
	s.CreateBatch(ctx, batch.Meta{ID: "race", Rows: 1})
	s.AddJobs(ctx, []batch.Job{{Batch: "race", Row: 0, Spec: spec("race row"), State: tasks.StateQueued}})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Go(func() {
			_, err := s.Transition(ctx, "race", 0, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	_, counts, _ := s.Get(ctx, "race")
	if wins != 1 || counts[tasks.StateSubmitting] != 1 || counts[tasks.StateQueued] != 0 {
		t.Fatalf("wins = %d, counts = %v", wins, counts)
	}
}

type fakeSubmitter struct {
	mu    sync.Mutex
	calls map[int]int
}

func (f *fakeSubmitter) Submit(_ context.Context, _ string, row, _ int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[int]int{}
	}
	f.calls[row]++
	return nil
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnqueueTwiceAddsNothing(t *testing.T) {
	s, ctx := setup(t)
	path := writeFile(t, "ads.csv", "id,prompt,duration\n"+
		"a,a good prompt,4\n"+
		"b,another prompt,5\n"+ // bad duration
		"c,a good prompt,4\n"+ // duplicate of a (all but id)
		"d,\"a prompt with, a comma\",12\n")
	plan, err := batch.PlanFile(path, batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Rows != 4 || plan.Valid != 2 || plan.Invalid != 1 || len(plan.Duplicates) != 1 {
		t.Fatalf("plan = %+v", plan)
	}
	if plan.Errors[0].Line != 3 || !strings.HasPrefix(plan.ID, "ads-") {
		t.Fatalf("error line %d, id %s", plan.Errors[0].Line, plan.ID)
	}
	if plan.Seconds["720p"] != 16 {
		t.Fatalf("seconds = %v", plan.Seconds)
	}
	sub := &fakeSubmitter{}
	res, err := s.Enqueue(ctx, sub, plan, batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 4 || res.Rejected != 2 || res.Queued != 2 {
		t.Fatalf("first enqueue = %+v", res)
	}
	// Once a row has moved on, enqueueing the batch again does nothing to it.
	s.Transition(ctx, plan.ID, 0, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitted, TaskID: "t"})
	res, err = s.Enqueue(ctx, sub, plan, batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 0 || res.Existing != 4 || res.Queued != 1 {
		t.Fatalf("second enqueue = %+v", res)
	}
	if sub.calls[0] != 1 || sub.calls[3] != 2 || sub.calls[1] != 0 || sub.calls[2] != 0 {
		t.Fatalf("submit calls = %v", sub.calls)
	}
	_, counts, _ := s.Get(ctx, plan.ID)
	if counts.Total() != 4 {
		t.Fatalf("counts = %v", counts)
	}
	var out strings.Builder
	if _, err := s.WriteResults(ctx, &out, plan.ID, batch.ResultsOptions{Format: batch.FormatCSV}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[3], "DUPLICATE_ROW") || !strings.Contains(lines[2], "INVALID_ROW") {
		t.Fatalf("results:\n%s", out.String())
	}
}

func TestSpreadsheetSafe(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "plain": "plain", "": "", "a=b": "a=b",
	} {
		if got := batch.SpreadsheetSafe(in); got != want {
			t.Errorf("SpreadsheetSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBatchIDReusedForAnotherFile(t *testing.T) {
	s, ctx := setup(t)
	dir := t.TempDir()
	plan := func(name, text string) *batch.Plan {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		pl, err := batch.PlanFile(p, batch.PlanOptions{BatchID: "shared"})
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	first := plan("a.csv", "prompt\nthe first file\n")
	if _, err := s.Enqueue(ctx, &fakeSubmitter{}, first, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	second := plan("b.csv", "prompt\nanother file\nwith two rows\n")
	if _, err := s.Enqueue(ctx, &fakeSubmitter{}, second, batch.PlanOptions{}); !errors.Is(err, batch.ErrBatchMismatch) {
		t.Errorf("enqueue of another file under the same id: err = %v", err)
	}
	// The same file again is fine.
	if _, err := s.Enqueue(ctx, &fakeSubmitter{}, first, batch.PlanOptions{}); err != nil {
		t.Errorf("enqueue of the same file again: %v", err)
	}
}

// TestRenamedCopyIsRefused enqueues one file's content under two batch ids:
// the second would create every row again.
func TestRenamedCopyIsRefused(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	dir := t.TempDir()
	var plans []*batch.Plan
	for _, name := range []string{"ads.csv", "ads-final-v2.csv"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("prompt\nthe same content\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		pl, err := batch.PlanFile(p, batch.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, pl)
	}
	if plans[0].ID == plans[1].ID {
		t.Fatal("a renamed copy got the same batch id")
	}
	if _, err := s.EnqueueBatch(ctx, &fakeSubmitter{}, plans[0], batch.PlanOptions{}, batch.Settings{BudgetSeconds: -1}); err != nil {
		t.Fatal(err)
	}
	_, err := s.EnqueueBatch(ctx, &fakeSubmitter{}, plans[1], batch.PlanOptions{}, batch.Settings{BudgetSeconds: -1})
	var same *batch.SameFileError
	if !errors.As(err, &same) || same.Earlier != plans[0].ID || !errors.Is(err, batch.ErrBatchMismatch) {
		t.Fatalf("renamed copy: err = %v, want a SameFileError naming %s", err, plans[0].ID)
	}
	if _, _, err := s.Get(ctx, plans[1].ID); !errors.Is(err, batch.ErrNotFound) {
		t.Errorf("the refused copy left a batch behind: %v", err)
	}
	// The original again is a resume, and the copy goes through when asked.
	if _, err := s.EnqueueBatch(ctx, &fakeSubmitter{}, plans[0], batch.PlanOptions{}, batch.Settings{BudgetSeconds: -1}); err != nil {
		t.Errorf("enqueue of the original again: %v", err)
	}
	if _, err := s.EnqueueBatch(ctx, &fakeSubmitter{}, plans[1], batch.PlanOptions{AllowDuplicates: true}, batch.Settings{BudgetSeconds: -1}); err != nil {
		t.Errorf("enqueue of the copy with AllowDuplicates: %v", err)
	}
}

func TestDuplicatesOnlyWithTheFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dups.csv")
	if err := os.WriteFile(path, []byte("id,prompt\na,the same scene\nb,the same scene\nc,another scene\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		s, ctx := setup(t)
		opts := batch.PlanOptions{AllowDuplicates: allow}
		plan, err := batch.PlanFile(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Duplicates) != 1 || plan.Duplicates[0].Line != 3 || plan.Duplicates[0].FirstLine != 2 {
			t.Fatalf("allow=%v: duplicates %+v", allow, plan.Duplicates)
		}
		sub := &fakeSubmitter{}
		res, err := s.Enqueue(ctx, sub, plan, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]int{false: 2, true: 3}[allow]
		if res.Queued != want || plan.Valid != want {
			t.Errorf("allow=%v: %d queued, %d valid; want %d", allow, res.Queued, plan.Valid, want)
		}
		job, _ := s.Job(ctx, plan.ID, 1)
		if !allow && (job.State != tasks.StateRejected || job.FailCode != "DUPLICATE_ROW") {
			t.Errorf("duplicate row without the flag: %s %s", job.State, job.FailCode)
		}
	}
}

// downloadingSubmitter also queues downloads.
type downloadingSubmitter struct {
	fakeSubmitter
	downloads []int
}

func (d *downloadingSubmitter) Download(_ context.Context, _ string, row, _ int) error {
	d.downloads = append(d.downloads, row)
	return nil
}

func TestResubmitAndCancel(t *testing.T) {
	s, ctx := setup(t)
	if _, err := s.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 4}); err != nil {
		t.Fatal(err)
	}
	var jobs []batch.Job
	for i := range 4 {
		jobs = append(jobs, batch.Job{Batch: "b", Row: i, Spec: spec(fmt.Sprintf("scene %d", i)), State: tasks.StateQueued})
	}
	if _, err := s.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	fail := func(row int, code string, urls []string) {
		if _, err := s.Transition(ctx, "b", row, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateFailed,
			FailCode: code, ResultURLs: urls}); err != nil {
			t.Fatal(err)
		}
	}
	fail(0, "CONTENT_VIOLATION", nil)
	fail(1, tasks.CodeDownloadFailed, []string{"http://x/1.mp4"})
	// Row 3 holds a budget reservation from a submit that then waited.
	if ok, _, err := s.Reserve(ctx, "b", 3, 0, 4); !ok || err != nil {
		t.Fatal(ok, err)
	}
	sub := &downloadingSubmitter{}
	res, err := s.Resubmit(ctx, sub, "b", batch.ResubmitOptions{From: tasks.StateFailed})
	if err != nil || res.Queued != 2 || len(res.Skipped) != 0 {
		t.Fatalf("Resubmit = %+v, %v", res, err)
	}
	j0, _ := s.Job(ctx, "b", 0)
	j1, _ := s.Job(ctx, "b", 1)
	if j0.State != tasks.StateQueued || j0.Attempt != 1 || j0.FailCode != "" || sub.calls[0] != 1 {
		t.Errorf("a provider failure is created again: %+v, calls %v", j0, sub.calls)
	}
	if j1.State != tasks.StateSucceeded || j1.Attempt != 0 || len(sub.downloads) != 1 || sub.calls[1] != 0 {
		t.Errorf("a failed download is downloaded again, not created: %+v, downloads %v", j1, sub.downloads)
	}
	n, err := s.Cancel(ctx, "b")
	if err != nil || n != 3 { // rows 0 (queued again), 2 and 3
		t.Fatalf("Cancel = %d, %v", n, err)
	}
	if b, _ := s.Budget(ctx, "b"); b.BatchSpent != 0 {
		t.Errorf("a canceled row keeps %d seconds reserved", b.BatchSpent)
	}
}

// TestDurabilityWarnings checks that a Redis without an append-only file is
// reported; it needs a real server whose settings say so.
func TestDurabilityWarnings(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	if rs.Mini != nil {
		t.Skip("the embedded Redis has no persistence settings")
	}
	v, err := rs.Client.ConfigGet(t.Context(), "appendonly").Result()
	if err != nil || v["appendonly"] != "no" {
		t.Skipf("this Redis has appendonly %q (%v)", v["appendonly"], err)
	}
	got := batch.NewStore(rs.Client, rs.Prefix).DurabilityWarnings(t.Context())
	if len(got) == 0 || !strings.Contains(got[0], "appendonly yes") {
		t.Errorf("warnings = %q, want one about appendonly", got)
	}
}

// TestResubmitSkipsPossiblyBilled checks that retry --state failed never
// creates again a row whose task may have been billed unless asked to
// rebill, and that it still resubmits the others.
func TestResubmitSkipsPossiblyBilled(t *testing.T) {
	s, ctx := setup(t)
	rows := []struct {
		code       string
		taskID     string
		urls       []string
		billed     bool // skipped without Rebill
		redownload bool // downloaded again rather than created
	}{
		{"CONTENT_VIOLATION", "t0", nil, false, false},
		{tasks.CodeNoResult, "t1", nil, true, false},
		{tasks.CodeResultExpired, "t2", []string{"http://x/2.mp4"}, true, false},
		{tasks.CodeDownloadTooLarge, "t3", []string{"http://x/3.mp4"}, true, false},
		{tasks.CodeDownloadFailed, "t4", nil, true, false},
		{tasks.CodeDownloadFailed, "t5", []string{"http://x/5.mp4"}, false, true},
		{tasks.CodeAnswerUnreadable, "t6", nil, true, false},
		{tasks.CodeTimedOut, "t7", nil, true, false},
		{tasks.CodeTaskNotFound, "t8", nil, true, false},
		{tasks.CodeProviderError, "", nil, false, false},
		{tasks.CodeInvalidRequest, "", nil, false, false},
	}
	if _, err := s.CreateBatch(ctx, batch.Meta{ID: "b", Rows: len(rows)}); err != nil {
		t.Fatal(err)
	}
	var jobs []batch.Job
	for i := range rows {
		jobs = append(jobs, batch.Job{Batch: "b", Row: i, Line: i + 2, Spec: spec(fmt.Sprintf("scene %d", i)), State: tasks.StateQueued})
	}
	if _, err := s.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if _, err := s.Transition(ctx, "b", i, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateFailed,
			TaskID: r.taskID, FailCode: r.code, FailMsg: "why", ResultURLs: r.urls}); err != nil {
			t.Fatal(err)
		}
	}

	sub := &downloadingSubmitter{}
	res, err := s.Resubmit(ctx, sub, "b", batch.ResubmitOptions{From: tasks.StateFailed})
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[int]batch.Skipped{}
	for _, sk := range res.Skipped {
		skipped[sk.Row] = sk
	}
	wantQueued := 0
	for i, r := range rows {
		j, _ := s.Job(ctx, "b", i)
		sk, isSkipped := skipped[i]
		switch {
		case r.billed:
			if !isSkipped || sk.FailCode != r.code || sk.TaskID != r.taskID || sk.Line != i+2 || sk.Reason == "" ||
				j.State != tasks.StateFailed || j.Attempt != 0 || sub.calls[i] != 0 {
				t.Errorf("row %d (%s): skipped %+v, job %s attempt %d, %d submits; want skipped and left failed",
					i, r.code, sk, j.State, j.Attempt, sub.calls[i])
			}
		case r.redownload:
			wantQueued++
			if isSkipped || j.State != tasks.StateSucceeded || sub.calls[i] != 0 {
				t.Errorf("row %d (%s): %s, %d submits; want downloaded again", i, r.code, j.State, sub.calls[i])
			}
		default:
			wantQueued++
			if isSkipped || j.State != tasks.StateQueued || j.Attempt != 1 || sub.calls[i] != 1 {
				t.Errorf("row %d (%s): %s attempt %d, %d submits; want queued again", i, r.code, j.State, j.Attempt, sub.calls[i])
			}
		}
	}
	if res.Queued != wantQueued {
		t.Errorf("Queued = %d, want %d", res.Queued, wantQueued)
	}

	// With Rebill the skipped rows are created again.
	res, err = s.Resubmit(ctx, sub, "b", batch.ResubmitOptions{From: tasks.StateFailed, Rebill: true})
	if err != nil || res.Queued != len(skipped) || len(res.Skipped) != 0 {
		t.Fatalf("Resubmit with Rebill = %+v, %v; want %d queued", res, err, len(skipped))
	}
	for i := range skipped {
		if j, _ := s.Job(ctx, "b", i); j.State != tasks.StateQueued || j.Attempt != 1 || j.TaskID != "" || sub.calls[i] != 1 {
			t.Errorf("row %d after rebill: %s attempt %d task %q, %d submits", i, j.State, j.Attempt, j.TaskID, sub.calls[i])
		}
	}
}

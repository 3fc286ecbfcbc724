package batch_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestBudgetRace has several clients, as several workers would, reserve
// 4-second videos against a 50-second batch budget at once.
func TestBudgetRace(t *testing.T) {
	rs := redistest.New(t)
	ctx := t.Context()
	s := batch.NewStore(rs.Client, rs.Prefix)
	if err := s.SetBudget(ctx, "b", 50); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBudget(ctx, "", 1000); err != nil {
		t.Fatal(err)
	}
	var granted atomic.Int64
	var heldRow atomic.Int64 // one row that got its reservation
	heldRow.Store(-1)
	var wg sync.WaitGroup
	for w := range 3 {
		opt, _ := redis.ParseURL(rs.URL)
		c := redis.NewClient(opt)
		defer c.Close()
		ws := batch.NewStore(c, rs.Prefix)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for row := w; row < 60; row += 3 {
				ok, scope, err := ws.Reserve(ctx, "b", row, 0, 4)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					granted.Add(4)
					heldRow.Store(int64(row))
				} else if scope != batch.BudgetBatch {
					t.Errorf("refused by %q, want batch", scope)
				}
			}
		}()
	}
	wg.Wait()
	if g := granted.Load(); g != 48 {
		t.Errorf("granted %d seconds, want 48 (12 videos of 4 s under 50)", g)
	}
	b, err := s.Budget(ctx, "b")
	if err != nil || b.BatchSpent != 48 || b.TotalSpent != 48 || b.BatchLimit != 50 || b.TotalLimit != 1000 {
		t.Errorf("budget = %+v, %v", b, err)
	}
	// Reserving an attempt again is free; a refund gives the seconds back once.
	held := int(heldRow.Load())
	if ok, _, _ := s.Reserve(ctx, "b", held, 0, 4); !ok {
		t.Errorf("re-reserving held row %d was refused", held)
	}
	for range 2 {
		if err := s.Refund(ctx, "b", held, 0, 4); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := s.Budget(ctx, "b"); b.BatchSpent != 44 {
		t.Errorf("after refund: %+v, want 44 spent", b)
	}
	// The total budget refuses too.
	if err := s.SetBudget(ctx, "", 46); err != nil {
		t.Fatal(err)
	}
	if ok, scope, _ := s.Reserve(ctx, "other", 0, 0, 4); ok || scope != batch.BudgetTotal {
		t.Errorf("reserve over the total: ok=%v scope=%q", ok, scope)
	}
}

// TestJournalReplay rebuilds a store's state on a fresh Redis from its
// journal, as a run does after a crash.
func TestJournalReplay(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	jobs := func(id string) []batch.Job {
		var out []batch.Job
		for i := range 4 {
			out = append(out, batch.Job{Batch: id, Row: i, Line: i + 2, Spec: spec(fmt.Sprintf("row %d", i)), State: tasks.StateQueued})
		}
		return out
	}
	first, _ := setup(t)
	if _, err := first.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.AddJobs(ctx, jobs("b")); err != nil {
		t.Fatal(err)
	}
	hdr := batch.JournalHeader{Batch: "b", Hash: "0123abcd", Store: batch.StoreEmbedded}
	j, err := batch.OpenJournal(path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	first.SetJournal(j)
	zero := 0
	step := func(row int, c batch.Change) {
		t.Helper()
		if _, err := first.Transition(ctx, "b", row, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.SetBudget(ctx, "b", 100); err != nil {
		t.Fatal(err)
	}
	for row := range 3 {
		if ok, _, err := first.Reserve(ctx, "b", row, 0, 4); !ok || err != nil {
			t.Fatal(ok, err)
		}
		step(row, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting, Attempt: &zero, Sync: true})
	}
	step(0, batch.Change{From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateSubmitted, TaskID: "task_a", Sync: true})
	step(1, batch.Change{From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateSubmitted, TaskID: "task_b", Sync: true})
	step(1, batch.Change{From: []tasks.State{tasks.StateSubmitted}, To: tasks.StateSucceeded, ResultURLs: []string{"http://x/b.mp4"}})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash may cut the last line short.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"k":"transition","b":"b","r":3,"c":{"To":"subm`)
	f.Close()

	second, _ := setup(t)
	if _, err := second.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := second.AddJobs(ctx, jobs("b")); err != nil {
		t.Fatal(err)
	}
	r, _ := os.Open(path)
	defer r.Close()
	n, err := second.Replay(ctx, r, hdr)
	if err != nil || n != 10 {
		t.Fatalf("replayed %d records, %v; want 10", n, err)
	}
	want := []struct {
		state tasks.State
		task  string
	}{{tasks.StateSubmitted, "task_a"}, {tasks.StateSucceeded, "task_b"}, {tasks.StateSubmitting, ""}, {tasks.StateQueued, ""}}
	got, _ := second.Jobs(ctx, "b", 0, 4)
	for i, w := range want {
		if got[i].State != w.state || got[i].TaskID != w.task {
			t.Errorf("row %d: %s %q, want %s %q", i, got[i].State, got[i].TaskID, w.state, w.task)
		}
	}
	if b, _ := second.Budget(ctx, "b"); b.BatchSpent != 12 || b.BatchLimit != 100 {
		t.Errorf("budget after replay = %+v", b)
	}
	_, counts, _ := second.Get(ctx, "b")
	if counts[tasks.StateSubmitting] != 1 || counts[tasks.StateQueued] != 1 || counts.Total() != 4 {
		t.Errorf("counts after replay = %v", counts)
	}
}

// TestJournalRefusesAnotherRun checks that a journal is only replayed and
// appended to by the run it belongs to, and that only its last line may be
// unreadable.
func TestJournalRefusesAnotherRun(t *testing.T) {
	t.Parallel()
	hdr := batch.JournalHeader{Batch: "b", Hash: "aaaa", Store: batch.StoreEmbedded}
	transition := `{"k":"transition","b":"b","r":0,"c":{"From":["queued"],"To":"submitting"}}`
	header := `{"k":"header","b":"b","h":"aaaa","st":"embedded"}`
	tests := []struct {
		name    string
		content string
		want    error // nil: replays
		applied int
	}{
		{"good", header + "\n" + transition + "\n", nil, 1},
		{"torn last line skipped", header + "\n" + transition + "\n" + `{"k":"trans`, nil, 1},
		{"corrupt line in the middle", header + "\n" + `{"k":"trans` + "\n" + transition + "\n", batch.ErrJournalCorrupt, 0},
		{"no header", transition + "\n", batch.ErrJournalCorrupt, 0},
		{"empty", "", batch.ErrJournalCorrupt, 0},
		{"another file", `{"k":"header","b":"b","h":"bbbb","st":"embedded"}` + "\n" + transition + "\n", batch.ErrJournalMismatch, 0},
		{"another batch", `{"k":"header","b":"c","h":"aaaa","st":"embedded"}` + "\n", batch.ErrJournalMismatch, 0},
		{"unknown record", header + "\n" + `{"k":"mystery"}` + "\n", batch.ErrJournalCorrupt, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ctx := setup(t)
			if _, err := s.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddJobs(ctx, []batch.Job{{Batch: "b", Row: 0, Spec: spec("row 0"), State: tasks.StateQueued}}); err != nil {
				t.Fatal(err)
			}
			n, err := s.Replay(ctx, strings.NewReader(tt.content), hdr)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Replay = %d, %v; want %v", n, err, tt.want)
			}
			if tt.want == nil && n != tt.applied {
				t.Errorf("applied %d records, want %d", n, tt.applied)
			}
		})
	}

	// Appending: a journal of another file is refused, not extended.
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	j, err := batch.OpenJournal(path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	other := hdr
	other.Hash = "bbbb"
	if _, err := batch.OpenJournal(path, other); !errors.Is(err, batch.ErrJournalMismatch) {
		t.Errorf("OpenJournal for another file = %v, want ErrJournalMismatch", err)
	} else if !strings.Contains(err.Error(), "the CSV changed") {
		t.Errorf("message %q does not say the file changed", err)
	}
	if got, err := batch.ReadJournalHeader(path); err != nil || got != hdr {
		t.Errorf("ReadJournalHeader = %+v, %v", got, err)
	}
	again, err := batch.OpenJournal(path, hdr)
	if err != nil {
		t.Fatalf("reopening the run's own journal: %v", err)
	}
	again.Close()
}

// TestAccountBudget has two batches of one account share the account's
// budget while a batch of another account is held by none of it.
func TestAccountBudget(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	s := batch.NewStore(rs.Client, rs.Prefix)
	for _, b := range []struct {
		id, account string
		budget      int
	}{{"a1", "a", 10}, {"a2", "a", 10}, {"b1", "b", 0}} {
		if err := s.SetBudgets(ctx, b.id, batch.Settings{BudgetSeconds: -1, Account: b.account, AccountBudgetSeconds: b.budget}); err != nil {
			t.Fatal(err)
		}
	}
	reserve := func(id string, row int) (bool, string) {
		t.Helper()
		ok, scope, err := s.Reserve(ctx, id, row, 0, 4)
		if err != nil {
			t.Fatal(err)
		}
		return ok, scope
	}
	if ok, _ := reserve("a1", 0); !ok {
		t.Fatal("a1 row 0 refused")
	}
	if ok, _ := reserve("a2", 0); !ok {
		t.Fatal("a2 row 0 refused")
	}
	if ok, scope := reserve("a1", 1); ok || scope != batch.BudgetAccount {
		t.Fatalf("a1 row 1 past account a's 10 s: ok %v, scope %q; want refused by account", ok, scope)
	}
	for row := range 5 {
		if ok, scope := reserve("b1", row); !ok {
			t.Fatalf("b1 row %d refused by %q: account a's budget is not b's", row, scope)
		}
	}
	b, err := s.Budget(ctx, "a2")
	if err != nil || b.Account != "a" || b.AccountLimit != 10 || b.AccountSpent != 8 || b.TotalSpent != 28 {
		t.Fatalf("budget of a2 = %+v, %v; want account a, 8 of 10 s, 28 s in total", b, err)
	}
	if err := s.Refund(ctx, "a1", 0, 0, 4); err != nil {
		t.Fatal(err)
	}
	if ok, _ := reserve("a1", 1); !ok {
		t.Fatal("a1 row 1 refused after a refund to account a")
	}
	if b, _ := s.Budget(ctx, "b1"); b.Account != "b" || b.AccountLimit != 0 || b.AccountSpent != 20 {
		t.Fatalf("budget of b1 = %+v; want account b, no limit, 20 s", b)
	}
	// A new batch budget without an account (retry --budget) leaves the account's alone.
	if err := s.SetBudgets(ctx, "a1", batch.Settings{BudgetSeconds: 100}); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Budget(ctx, "a1"); b.Account != "a" || b.AccountLimit != 10 || b.BatchLimit != 100 {
		t.Fatalf("budget of a1 after a batch budget = %+v; want account a's 10 s kept", b)
	}
}

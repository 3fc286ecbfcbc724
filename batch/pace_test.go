package batch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestNewPace: the rate is measured over the last minutes while a batch
// runs, so a stall shows at once; once it is finished the rate is its
// run's and no longer changes with time.
func TestNewPace(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	minute := func(m, finished int) batch.Minute {
		return batch.Minute{Start: created.Add(time.Duration(m) * time.Minute), Finished: finished}
	}
	// 30 rows a minute for the first 20 minutes.
	var steady batch.Series
	for m := range 20 {
		steady = append(steady, minute(m, 30))
	}
	running := batch.Counts{tasks.StateDone: 600, tasks.StateQueued: 400}
	finished := batch.Counts{tasks.StateDone: 990, tasks.StateRejected: 10}
	meta := batch.Meta{ID: "b", Rows: 1000, Created: created}
	done := meta
	done.Finished = created.Add(40 * time.Minute)
	for _, tc := range []struct {
		name      string
		meta      batch.Meta
		counts    batch.Counts
		series    batch.Series
		now       time.Duration // after created
		rate, eta string
	}{
		{"steady", meta, running, steady, 20 * time.Minute, "30.0", "13m20s"},
		{"young batch: its own life is the window", meta, batch.Counts{tasks.StateDone: 60, tasks.StateQueued: 940},
			batch.Series{minute(0, 30), minute(1, 30)}, 2 * time.Minute, "30.0", "31m20s"},
		{"stalled for 10 minutes: nothing in the window", meta, running, steady, 30 * time.Minute, "0", "unknown"},
		{"half the window stalled", meta, running, steady, 25 * time.Minute, "13.3", "30m0s"},
		{"nothing finished yet", meta, batch.Counts{tasks.StateQueued: 1000}, nil, 5 * time.Minute, "0", "unknown"},
		{"finished: the run's rate, rejected rows left out", done, finished, steady, 41 * time.Minute, "24.8", "done"},
		{"finished, a day later: the same", done, finished, steady, 24 * time.Hour, "24.8", "done"},
		{"finished by an earlier version", meta, finished, nil, time.Hour, "-", "done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := batch.NewPace(tc.meta, tc.counts, tc.series, created.Add(tc.now))
			if p.Rate() != tc.rate || p.ETA() != tc.eta {
				t.Errorf("rate %q, ETA %q; want %q, %q (%+v)", p.Rate(), p.ETA(), tc.rate, tc.eta, p)
			}
		})
	}
}

// TestSeries: each transition counts in the minute it ran in: rows that
// became terminal, and the rows in flight; replayed transitions do not;
// Store.Pace reads the same series NewPace is given.
func TestSeries(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	const rows = 6
	if _, err := s.CreateBatch(ctx, batch.Meta{ID: "sb", Rows: rows, Created: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var jobs []batch.Job
	for i := range rows {
		jobs = append(jobs, batch.Job{Batch: "sb", Row: i, Spec: spec(fmt.Sprintf("row %d", i)), State: tasks.StateQueued})
	}
	if _, err := s.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.jsonl")
	hdr := batch.JournalHeader{Batch: "sb", Hash: "0123abcd", Store: batch.StoreEmbedded}
	j, err := batch.OpenJournal(path, hdr)
	if err != nil {
		t.Fatal(err)
	}
	s.SetJournal(j)
	step := func(row int, from, to tasks.State) {
		t.Helper()
		if _, err := s.Transition(ctx, "sb", row, batch.Change{From: []tasks.State{from}, To: to}); err != nil {
			t.Fatal(err)
		}
	}
	for row := range 4 {
		step(row, tasks.StateQueued, tasks.StateSubmitting)
		step(row, tasks.StateSubmitting, tasks.StateSubmitted)
	}
	step(0, tasks.StateSubmitted, tasks.StateSucceeded)
	step(0, tasks.StateSucceeded, tasks.StateDone)
	step(1, tasks.StateSubmitted, tasks.StateFailed)
	step(4, tasks.StateQueued, tasks.StateCanceled)
	j.Close()
	s.SetJournal(nil)

	series, err := s.Series(ctx, "sb")
	if err != nil {
		t.Fatal(err)
	}
	finished, peak := 0, 0
	for _, m := range series {
		finished += m.Finished
		peak = max(peak, m.PeakInFlight)
	}
	last := series[len(series)-1]
	if finished != 3 || peak != 4 || last.InFlight != 2 {
		t.Errorf("series %+v: %d finished, peak %d, last %d in flight; want 3, 4, 2", series, finished, peak, last.InFlight)
	}
	meta, counts, err := s.Get(ctx, "sb")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p, err := s.Pace(ctx, meta, counts, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := batch.NewPace(meta, counts, series, now); p != want || p.PerMinute == 0 {
		t.Errorf("Store.Pace %+v, NewPace of the series %+v", p, want)
	}

	// The same transitions replayed elsewhere are not counted again.
	other, _ := setup(t)
	if _, err := other.CreateBatch(ctx, batch.Meta{ID: "sb", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if _, err := other.Replay(ctx, f, hdr); err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Series(ctx, "sb"); len(got) != 0 {
		t.Errorf("a replay recorded %+v", got)
	}

	// The last row finishes the batch: its finish time is recorded, and
	// taken away when a row is retried.
	step(2, tasks.StateSubmitted, tasks.StateFailed)
	step(3, tasks.StateSubmitted, tasks.StateFailed)
	step(5, tasks.StateQueued, tasks.StateCanceled)
	if meta, _, _ := s.Get(ctx, "sb"); meta.Finished.IsZero() || time.Since(meta.Finished) > time.Minute {
		t.Errorf("finished batch: finish time %v", meta.Finished)
	}
	step(5, tasks.StateCanceled, tasks.StateQueued)
	if meta, _, _ := s.Get(ctx, "sb"); !meta.Finished.IsZero() {
		t.Errorf("reopened batch: finish time %v", meta.Finished)
	}
}

// TestSeriesFill: minutes without a move get no finished row and the rows
// in flight of the minute before.
func TestSeriesFill(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := batch.Series{
		{Start: t0, Finished: 1, PeakInFlight: 5, InFlight: 4},
		{Start: t0.Add(3 * time.Minute), Finished: 2, PeakInFlight: 6, InFlight: 1},
	}
	got := s.Fill(t0.Add(4*time.Minute + 30*time.Second))
	want := []batch.Minute{s[0], {Start: t0.Add(time.Minute), PeakInFlight: 4, InFlight: 4},
		{Start: t0.Add(2 * time.Minute), PeakInFlight: 4, InFlight: 4}, s[1],
		{Start: t0.Add(4 * time.Minute), PeakInFlight: 1, InFlight: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Fill = %+v\nwant %+v", got, want)
	}
}

// TestCombine: batches' minutes add up, each batch carrying its rows in
// flight through minutes without a move, from before the window too.
func TestCombine(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	a := batch.Series{{Start: at(0), Finished: 1, PeakInFlight: 5, InFlight: 4}, {Start: at(2), Finished: 3, PeakInFlight: 4, InFlight: 0}}
	b := batch.Series{{Start: at(1), Finished: 2, PeakInFlight: 7, InFlight: 6}}
	got := batch.Combine(at(1), at(3).Add(10*time.Second), a, b)
	want := batch.Series{
		{Start: at(1), Finished: 2, PeakInFlight: 4 + 7, InFlight: 4 + 6},
		{Start: at(2), Finished: 3, PeakInFlight: 4 + 6, InFlight: 0 + 6},
		{Start: at(3), PeakInFlight: 6, InFlight: 6},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Combine = %+v\nwant %+v", got, want)
	}
}

// TestJobsInState: a filtered page reads rows of one state in order, goes
// on from where it stopped, and looks at no more rows than it may.
func TestJobsInState(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	const rows = 1200
	if _, err := s.CreateBatch(ctx, batch.Meta{ID: "f", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	var jobs []batch.Job
	for i := range rows {
		jobs = append(jobs, batch.Job{Batch: "f", Row: i, Spec: spec(fmt.Sprintf("row %d", i)), State: tasks.StateQueued})
	}
	if _, err := s.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for row := 0; row < rows; row += 7 {
		if _, err := s.Transition(ctx, "f", row, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateFailed}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name            string
		from, n, scan   int
		first, got, nxt int
	}{
		{"first page", 0, 10, 10000, 0, 10, 64},
		{"next page", 64, 10, 10000, 70, 10, 134},
		{"the rest", 1100, 100, 10000, 1106, 14, -1},
		{"a page found within the scan", 0, 100, 700, 0, 100, 694},
		{"scan budget smaller than a page", 0, 200, 650, 0, 93, 650},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := s.JobsInState(ctx, "f", tasks.StateFailed, tc.from, tc.n, tc.scan)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.got || next != tc.nxt || (len(got) > 0 && got[0].Row != tc.first) {
				t.Fatalf("%d jobs from row %v, next %d; want %d from %d, next %d", len(got), got[0].Row, next, tc.got, tc.first, tc.nxt)
			}
			for _, j := range got {
				if j.State != tasks.StateFailed || j.Row%7 != 0 {
					t.Errorf("row %d in state %s", j.Row, j.State)
				}
			}
		})
	}
}

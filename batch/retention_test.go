package batch_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/tasks"
)

// enqueueThree enqueues a batch of three rows, reserves row 0's seconds
// and submits it (indexing its provider task), and returns the batch id.
func enqueueThree(t *testing.T, r *redistest.Server, s *batch.Store, name string) string {
	t.Helper()
	plan, err := batch.PlanFile(writeFile(t, name+".csv", "prompt\nfirst scene of "+name+"\nsecond scene of "+name+"\nthird scene of "+name+"\n"),
		batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(t.Context(), &fakeSubmitter{}, plan, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Reserve(t.Context(), plan.ID, 0, 0, 4); err != nil || !ok {
		t.Fatalf("reserve: %v, %v", ok, err)
	}
	move(t, s, plan.ID, 0, tasks.StateQueued, tasks.StateSubmitted)
	if err := s.IndexTask(t.Context(), "task-"+name, plan.ID+":0:0"); err != nil {
		t.Fatal(err)
	}
	return plan.ID
}

func move(t *testing.T, s *batch.Store, id string, row int, from, to tasks.State) {
	t.Helper()
	if _, err := s.Transition(t.Context(), id, row, batch.Change{From: []tasks.State{from}, To: to}); err != nil {
		t.Fatal(err)
	}
}

// keysOf lists the keys of a batch: its own, its task index entries and its
// file claim.
func keysOf(t *testing.T, r *redistest.Server, id, task string) []string {
	t.Helper()
	var keys []string
	for _, pat := range []string{r.Prefix + ":b:{" + id + "}:*", r.Prefix + ":task:" + task, r.Prefix + ":file:*"} {
		ks, err := r.Client.Keys(t.Context(), pat).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			if strings.Contains(pat, ":file:") {
				if v, _ := r.Client.Get(t.Context(), k).Result(); v != id {
					continue
				}
			}
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // KEYS answers in no particular order
	return keys
}

// ttls maps each key to its time to live (-1: none).
func ttls(t *testing.T, r *redistest.Server, keys []string) map[string]time.Duration {
	t.Helper()
	m := map[string]time.Duration{}
	for _, k := range keys {
		d, err := r.Client.PTTL(t.Context(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		m[k] = d
	}
	return m
}

func TestRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		retention time.Duration
		steps     func(t *testing.T, s *batch.Store, id string)
		wantTTL   bool
	}{
		{"the last row's transition retires", time.Hour, func(t *testing.T, s *batch.Store, id string) {
			move(t, s, id, 0, tasks.StateSubmitted, tasks.StateFailed)
			move(t, s, id, 1, tasks.StateQueued, tasks.StateCanceled)
			move(t, s, id, 2, tasks.StateQueued, tasks.StateAmbiguous)
		}, true},
		{"a row left keeps it", time.Hour, func(t *testing.T, s *batch.Store, id string) {
			move(t, s, id, 0, tasks.StateSubmitted, tasks.StateFailed)
			move(t, s, id, 1, tasks.StateQueued, tasks.StateCanceled)
		}, false},
		{"a row retried reopens it", time.Hour, func(t *testing.T, s *batch.Store, id string) {
			move(t, s, id, 0, tasks.StateSubmitted, tasks.StateFailed)
			move(t, s, id, 1, tasks.StateQueued, tasks.StateCanceled)
			move(t, s, id, 2, tasks.StateQueued, tasks.StateAmbiguous)
			move(t, s, id, 2, tasks.StateAmbiguous, tasks.StateQueued)
		}, false},
		{"retention 0 keeps it forever", 0, func(t *testing.T, s *batch.Store, id string) {
			move(t, s, id, 0, tasks.StateSubmitted, tasks.StateFailed)
			move(t, s, id, 1, tasks.StateQueued, tasks.StateCanceled)
			move(t, s, id, 2, tasks.StateQueued, tasks.StateAmbiguous)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := redistest.New(t)
			s := batch.NewStore(r.Client, r.Prefix)
			s.SetRetention(tc.retention)
			id := enqueueThree(t, r, s, "ret")
			tc.steps(t, s, id)
			s.WaitRetired()
			keys := keysOf(t, r, id, "task-ret")
			if len(keys) != 4+3+2 { // meta, counts, series, tasks set, 3 jobs, task entry, file claim
				t.Fatalf("keys of the batch: %q", keys)
			}
			for k, d := range ttls(t, r, keys) {
				if tc.wantTTL && (d <= 0 || d > tc.retention) {
					t.Errorf("%s: time to live %v, want %v", k, d, tc.retention)
				}
				if !tc.wantTTL && d > 0 {
					t.Errorf("%s: time to live %v, want none", k, d)
				}
			}
		})
	}
}

// TestRetentionExpires: a finished batch's records go away, and the batch
// list and status skip it; a batch of rejected rows only is retired by
// Enqueue.
func TestRetentionExpires(t *testing.T) {
	t.Parallel()
	r := redistest.New(t)
	s := batch.NewStore(r.Client, r.Prefix)
	s.SetRetention(300 * time.Millisecond)
	plan, err := batch.PlanFile(writeFile(t, "bad.csv", "prompt,duration\nok prompt,5\nanother,7\n"), batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(t.Context(), &fakeSubmitter{}, plan, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	keep := enqueueThree(t, r, s, "keep")
	if ids, _ := s.Batches(t.Context()); len(ids) != 2 {
		t.Fatalf("batches = %v", ids)
	}
	testwait.Until(t, 5*time.Second, func() error {
		ids, err := s.Batches(t.Context())
		if err != nil {
			return err
		}
		if len(ids) != 1 || ids[0] != keep {
			return fmt.Errorf("batches = %v, want only %s", ids, keep)
		}
		return nil
	})
	if _, _, err := s.Get(t.Context(), plan.ID); !errors.Is(err, batch.ErrNotFound) {
		t.Fatalf("expired batch: err = %v", err)
	}
	if n, _ := r.Client.ZCard(t.Context(), r.Prefix+":batches").Result(); n != 1 {
		t.Fatalf("the batch list keeps %d entries", n)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		finish  bool
		force   bool
		wantErr error
	}{
		{"finished", true, false, nil},
		{"in progress refused", false, false, batch.ErrBatchActive},
		{"in progress forced", false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := redistest.New(t)
			s := batch.NewStore(r.Client, r.Prefix)
			s.SetRetention(0)
			ctx := t.Context()
			id := enqueueThree(t, r, s, "gone")
			other := enqueueThree(t, r, s, "other")
			if err := s.SetBudget(ctx, id, 100); err != nil {
				t.Fatal(err)
			}
			// Row 1 waited for a slot holding a reservation: never sent.
			if ok, _, err := s.Reserve(ctx, id, 1, 0, 4); err != nil || !ok {
				t.Fatalf("reserve: %v %v", ok, err)
			}
			// An index entry an earlier version kept in one hash.
			r.Client.HSet(ctx, r.Prefix+":tasks", "old-task", id+":2:0", "old-other", other+":2:0")
			if tc.finish {
				move(t, s, id, 0, tasks.StateSubmitted, tasks.StateFailed)
				move(t, s, id, 1, tasks.StateQueued, tasks.StateCanceled)
				move(t, s, id, 2, tasks.StateQueued, tasks.StateCanceled)
			}
			before, _ := s.Budget(ctx, "")
			otherKeys := keysOf(t, r, other, "task-other")
			res, err := s.Purge(ctx, id, tc.force)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("purge: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if keys := keysOf(t, r, id, "task-gone"); len(keys) != 9 {
					t.Fatalf("a refused purge deleted keys: %q left", keys)
				}
				return
			}
			if keys := keysOf(t, r, id, "task-gone"); len(keys) != 0 {
				t.Errorf("keys left: %q", keys)
			}
			if res.Jobs != 3 || res.TaskIndex != 2 || !res.FileClaim || res.Reservations != 2 || res.Refunded != 4 {
				t.Errorf("purge = %+v", res)
			}
			if ids, _ := s.Batches(ctx); fmt.Sprint(ids) != "["+other+"]" {
				t.Errorf("batches = %v", ids)
			}
			if owner, _ := s.TaskOwner(ctx, "old-task"); owner != "" {
				t.Errorf("old index entry left: %s", owner)
			}
			after, _ := s.Budget(ctx, id)
			if after.BatchLimit != 0 || after.BatchSpent != 0 || after.TotalSpent != before.TotalSpent-4 {
				t.Errorf("budget before %+v, after %+v", before, after)
			}
			// The other batch is untouched.
			if got := keysOf(t, r, other, "task-other"); fmt.Sprint(got) != fmt.Sprint(otherKeys) {
				t.Errorf("other batch's keys %q, were %q", got, otherKeys)
			}
			if owner, _ := s.TaskOwner(ctx, "old-other"); owner != other+":2:0" {
				t.Errorf("other batch's old index entry: %q", owner)
			}
			if b, _ := s.Budget(ctx, other); b.BatchSpent != 4 {
				t.Errorf("other batch's budget: %+v", b)
			}
			if ok, _, _ := s.Reserve(ctx, other, 0, 0, 4); !ok {
				t.Error("other batch's reservation is gone")
			}
		})
	}
}

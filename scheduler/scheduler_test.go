package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/housekeeping"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/scheduler"
)

// recorder is a Runner that reports each kind it is asked to do.
type recorder chan string

func (r recorder) Do(_ context.Context, kind string) error {
	select {
	case r <- kind:
	default:
	}
	return nil
}

// entryList is an Entries function whose answer the test changes.
type entryList struct {
	mu      sync.Mutex
	entries []scheduler.Entry
}

func (l *entryList) set(e ...scheduler.Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = e
}

func (l *entryList) get() ([]scheduler.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries), nil
}

// TestScheduleFollowsItsEntries registers the entries it is given, runs
// one through its Runner, and follows a change of the entries without a
// restart.
func TestScheduleFollowsItsEntries(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	insp := asynq.NewInspectorFromRedisClient(rs.Client)
	t.Cleanup(func() { insp.Close() })
	queue := rs.Prefix + "-maintenance"
	var list entryList
	list.set(scheduler.Entry{Cron: "@every 1s", Kind: housekeeping.KindImport})
	done := make(recorder, 1)
	s, err := scheduler.New(rs.Client, done, scheduler.Options{Entries: list.get, Kinds: housekeeping.Kinds(),
		Queue: queue, SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)

	entries := func() []string {
		list, err := insp.SchedulerEntries()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, en := range list {
			// Only this test's scheduler: others may share the Redis.
			if slices.ContainsFunc(en.Opts, func(o asynq.Option) bool { return strings.Contains(o.String(), queue) }) {
				out = append(out, en.Spec+" "+en.Task.Type())
			}
		}
		slices.Sort(out)
		return out
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		testwait.Until(t, 20*time.Second, func() error {
			if !cond() {
				return fmt.Errorf("no %s yet (entries %v)", what, entries())
			}
			return nil
		})
	}
	waitFor("the import entry", func() bool { return slices.Equal(entries(), []string{"@every 1s maintain:import"}) })
	select {
	case kind := <-done:
		if kind != housekeeping.KindImport {
			t.Errorf("the runner was asked for %q, want %q", kind, housekeeping.KindImport)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the import entry never ran")
	}
	list.set(scheduler.Entry{Cron: "@every 1h", Kind: housekeeping.KindImport},
		scheduler.Entry{Cron: "*/5 * * * *", Kind: housekeeping.KindReconcile})
	waitFor("the changed entries", func() bool {
		return slices.Equal(entries(), []string{"*/5 * * * * maintain:reconcile", "@every 1h maintain:import"})
	})
}

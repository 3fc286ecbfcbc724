package scheduler_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/housekeeping"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/scheduler"
)

type env struct {
	rs     *redistest.Server
	m      *housekeeping.Runner
	insp   *asynq.Inspector
	queues queue.Names
	dir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rs := redistest.New(t)
	dir := t.TempDir()
	queues := queue.NamesFor(rs.Prefix)
	q := queue.New(rs.Client, queues)
	t.Cleanup(func() { q.Close() })
	insp := asynq.NewInspectorFromRedisClient(rs.Client)
	t.Cleanup(func() { insp.Close() })
	m := &housekeeping.Runner{
		Redis: rs.Client, Store: batch.NewStore(rs.Client, rs.Prefix), Queue: q, Insp: insp, Queues: queues,
		Inbox: filepath.Join(dir, "inbox"), OutDir: filepath.Join(dir, "out"),
		Settings: batch.Settings{RequestType: "async", BudgetSeconds: -1}, GiveUpAfter: time.Hour,
	}
	if err := os.MkdirAll(m.Inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	return &env{rs: rs, m: m, insp: insp, queues: queues, dir: dir}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestScheduleFollowsTheFile registers the entries of a config file, runs
// one, and follows an edit of the file without a restart.
// TestScheduleFollowsTheFile runs the scheduler from a config file, sees an
// import entry register and import a dropped CSV, then edits the file and
// sees the registered entries change without a restart.
func TestScheduleFollowsTheFile(t *testing.T) {
	e := newEnv(t)
	cfgPath := filepath.Join(e.dir, "seedbatch.yaml")
	write(t, cfgPath, "schedule:\n  entries:\n    - {cron: \"@every 1s\", task: import}\n")
	queue := e.queues.Submit + "-maintenance"
	fromFile := func() ([]scheduler.Entry, error) {
		cfg, err := config.Load(config.Options{File: cfgPath, Env: func(string) (string, bool) { return "", false }})
		if err != nil {
			return nil, err
		}
		var out []scheduler.Entry
		for _, en := range cfg.Schedule.Entries {
			out = append(out, scheduler.Entry{Cron: en.Cron, Kind: en.Task})
		}
		return out, nil
	}
	s, err := scheduler.New(e.rs.Client, e.m, scheduler.Options{Entries: fromFile, Kinds: housekeeping.Kinds(),
		Queue: queue, SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)

	entries := func() []string {
		list, err := e.insp.SchedulerEntries()
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
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (entries %v)", what, entries())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("the import entry", func() bool { return slices.Equal(entries(), []string{"@every 1s maintain:import"}) })
	write(t, filepath.Join(e.m.Inbox, "dropped.csv"), "prompt\na dropped scene\n")
	waitFor("the dropped file to be imported", func() bool {
		_, err := os.Stat(filepath.Join(e.m.Inbox, "done", "dropped.csv"))
		return err == nil
	})
	write(t, cfgPath, "schedule:\n  entries:\n    - {cron: \"@every 1h\", task: import}\n    - {cron: \"*/5 * * * *\", task: reconcile}\n")
	waitFor("the edited entries", func() bool {
		return slices.Equal(entries(), []string{"*/5 * * * * maintain:reconcile", "@every 1h maintain:import"})
	})
}

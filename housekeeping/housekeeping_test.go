package housekeeping_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/housekeeping"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/s3test"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
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

func TestImport(t *testing.T) {
	e := newEnv(t)
	write(t, filepath.Join(e.m.Inbox, "ads.csv"), "id,prompt,duration\na,a good scene,4\nb,a bad one,5\n")
	write(t, filepath.Join(e.m.Inbox, "broken.csv"), "prompt\n\"never closed\nmore\n")
	write(t, filepath.Join(e.m.Inbox, "notes.txt"), "not a csv")
	write(t, filepath.Join(e.m.Inbox, ".partial.csv"), "prompt\nstill being copied\n")
	r, err := e.m.Import(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Imported) != 1 || len(r.Failed) != 1 {
		t.Fatalf("report %+v", r)
	}
	for _, want := range []string{"done/ads.csv", "done/ads.csv.report.txt", "failed/broken.csv", "failed/broken.csv.report.txt", "notes.txt", ".partial.csv"} {
		if _, err := os.Stat(filepath.Join(e.m.Inbox, want)); err != nil {
			t.Errorf("%s: %v", want, err)
		}
	}
	report, _ := os.ReadFile(filepath.Join(e.m.Inbox, "done/ads.csv.report.txt"))
	if !strings.Contains(string(report), "line 3") || !strings.Contains(string(report), "duration") {
		t.Errorf("done report:\n%s", report)
	}
	reason, _ := os.ReadFile(filepath.Join(e.m.Inbox, "failed/broken.csv.report.txt"))
	if !strings.Contains(string(reason), "line 2") {
		t.Errorf("failed report:\n%s", reason)
	}
	ids, _ := e.m.Store.Batches(t.Context())
	if len(ids) != 1 {
		t.Fatalf("batches %v", ids)
	}
	_, c, _ := e.m.Store.Get(t.Context(), ids[0])
	if c[tasks.StateQueued] != 1 || c[tasks.StateRejected] != 1 {
		t.Errorf("counts %v", c)
	}
	// Nothing left: a second run does nothing.
	if r, err := e.m.Import(t.Context()); err != nil || len(r.Imported)+len(r.Failed) != 0 {
		t.Errorf("second import: %+v, %v", r, err)
	}
}

func TestImportWaitsForFilesToSettle(t *testing.T) {
	e := newEnv(t)
	now := time.Now().Truncate(time.Second)
	clock := now
	e.m.Now = func() time.Time { return clock }
	e.m.ImportSettle = 10 * time.Second
	type outcome int
	const (
		imported outcome = iota // moved to done/
		waiting                 // left in the inbox, named in the report
		ignored                 // left in the inbox, named nowhere
	)
	tests := []struct {
		name string
		file string
		age  time.Duration // since the file's last modification
		want outcome
	}{
		{"just written", "fresh.csv", time.Second, waiting},
		{"modified a moment short of settling", "almost.csv", 10*time.Second - time.Millisecond, waiting},
		{"modified in the future, as a skewed clock may", "future.csv", -time.Minute, waiting},
		{"settled", "old.csv", time.Minute, imported},
		{"settled just now", "exact.csv", 10 * time.Second, imported},
		{"still being written under a temporary name", "incoming.csv.part", time.Hour, ignored},
	}
	for i, tt := range tests {
		path := filepath.Join(e.m.Inbox, tt.file)
		write(t, path, fmt.Sprintf("prompt\nscene number %d\n", i))
		if err := os.Chtimes(path, now, now.Add(-tt.age)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.m.Import(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		_, inInbox := os.Stat(filepath.Join(e.m.Inbox, tt.file))
		_, inDone := os.Stat(filepath.Join(e.m.Inbox, "done", tt.file))
		reported := slices.ContainsFunc(r.Imported, func(s string) bool { return strings.HasPrefix(s, tt.file+" -> ") })
		isWaiting := slices.Contains(r.Waiting, tt.file)
		var ok bool
		switch tt.want {
		case imported:
			ok = inInbox != nil && inDone == nil && reported && !isWaiting
		case waiting:
			ok = inInbox == nil && inDone != nil && !reported && isWaiting
		case ignored:
			ok = inInbox == nil && inDone != nil && !reported && !isWaiting
		}
		if !ok {
			t.Errorf("%s: in inbox %v, in done/ %v, reported imported %v, waiting %v; want outcome %d",
				tt.name, inInbox == nil, inDone == nil, reported, isWaiting, tt.want)
		}
	}
	if len(r.Failed) != 0 || !strings.Contains(r.String(), "3 waiting to settle") {
		t.Errorf("report: %s", r)
	}

	// The writer renames its finished file into place; the clock moves on
	// past the fresh file's settling time.
	if err := os.Rename(filepath.Join(e.m.Inbox, "incoming.csv.part"), filepath.Join(e.m.Inbox, "incoming.csv")); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(9 * time.Second)
	r, err = e.m.Import(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Waiting, []string{"future.csv"}) || len(r.Imported) != 3 {
		t.Errorf("second import: %s", r)
	}
	for _, f := range []string{"incoming.csv", "fresh.csv", "almost.csv"} {
		if _, err := os.Stat(filepath.Join(e.m.Inbox, "done", f)); err != nil {
			t.Errorf("second import: %s not imported: %v", f, err)
		}
	}
}

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	write(t, filepath.Join(e.m.Inbox, "r.csv"), "prompt\nfirst scene\nsecond scene\nthird scene\n")
	if _, err := e.m.Import(ctx); err != nil {
		t.Fatal(err)
	}
	ids, _ := e.m.Store.Batches(ctx)
	id := ids[0]
	// Lose every submit task, as a Redis restore might.
	if _, err := e.insp.DeleteAllPendingTasks(e.queues.Submit); err != nil {
		t.Fatal(err)
	}
	// Row 1 was submitted an hour and a half ago and row 2 just now; neither has a poll.
	zero := 0
	for row, at := range map[int]time.Time{1: time.Now().Add(-90 * time.Minute), 2: time.Now()} {
		for _, c := range []batch.Change{
			{From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting, Attempt: &zero},
			{From: []tasks.State{tasks.StateSubmitting}, To: tasks.StateSubmitted, TaskID: "task_x", Submitted: at},
		} {
			if _, err := e.m.Store.Transition(ctx, id, row, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	r, err := e.m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Rearmed != 2 || r.Ended != 1 {
		t.Errorf("report %+v, want 2 re-armed (a submit and a poll) and 1 ended", r)
	}
	if info, err := e.insp.GetQueueInfo(e.queues.Submit); err != nil || info.Pending != 1 {
		t.Errorf("submit queue: %+v, %v", info, err)
	}
	if info, err := e.insp.GetQueueInfo(e.queues.Poll); err != nil || info.Pending+info.Scheduled != 1 {
		t.Errorf("poll queue: %+v, %v", info, err)
	}
	if j, _ := e.m.Store.Job(ctx, id, 1); j.State != tasks.StateFailed || j.FailCode != "TIMED_OUT" {
		t.Errorf("old row: %s %s", j.State, j.FailCode)
	}
	// Everything is armed now: a second run changes nothing.
	if r, err := e.m.Reconcile(ctx); err != nil || r.Rearmed+r.Ended != 0 {
		t.Errorf("second reconcile: %+v, %v", r, err)
	}
}

// TestReconcileSkipsFinishedBatchesAndHandsBackOrphans checks that
// reconcile reads only batches with rows still to move, and that a task
// asynq shows active with no lease and no worker (left by a failover or a
// restore) gets an expired lease for asynq's recoverer to take back.
func TestReconcileSkipsFinishedBatchesAndHandsBackOrphans(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	write(t, filepath.Join(e.m.Inbox, "done.csv"), "prompt\na finished scene\n")
	write(t, filepath.Join(e.m.Inbox, "open.csv"), "prompt\nan open scene\nanother open scene\n")
	if _, err := e.m.Import(ctx); err != nil {
		t.Fatal(err)
	}
	ids, _ := e.m.Store.Batches(ctx)
	if len(ids) != 2 {
		t.Fatalf("batches %v", ids)
	}
	var open string
	for _, id := range ids {
		if strings.HasPrefix(id, "done-") {
			if _, err := e.m.Store.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
		} else {
			open = id
		}
	}
	// An orphan: asynq's active list holds the task, without a lease.
	q := e.queues.Submit
	taskID := tasks.SubmitTaskID(open, 0, 0)
	c := e.rs.Client
	if err := c.LRem(ctx, "asynq:{"+q+"}:pending", 0, taskID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.LPush(ctx, "asynq:{"+q+"}:active", taskID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, "asynq:{"+q+"}:t:"+taskID, "state", "active").Err(); err != nil {
		t.Fatal(err)
	}
	r, err := e.m.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Scanned != 1 || r.Orphans != 1 {
		t.Errorf("report %+v, want 1 batch scanned (the finished one skipped) and 1 orphan", r)
	}
	if score, err := c.ZScore(ctx, "asynq:{"+q+"}:lease", taskID).Result(); err != nil || score != 0 {
		t.Errorf("the orphan's lease = %v, %v; want an expired one", score, err)
	}
	if r, err := e.m.Reconcile(ctx); err != nil || r.Orphans != 0 {
		t.Errorf("second reconcile: %+v, %v; want no orphan left", r, err)
	}
}

// TestExpiry: the videos of done rows that are missing, from a directory
// or from a bucket, are downloaded again while their URLs live.
func TestExpiry(t *testing.T) {
	for _, store := range []string{"dir", "s3"} {
		t.Run(store, func(t *testing.T) { testExpiry(t, store) })
	}
}

func testExpiry(t *testing.T, store string) {
	e := newEnv(t)
	ctx := t.Context()
	write(t, filepath.Join(e.m.Inbox, "x.csv"), "prompt\nrecent scene\nold scene\nkept scene\n")
	if _, err := e.m.Import(ctx); err != nil {
		t.Fatal(err)
	}
	ids, _ := e.m.Store.Batches(ctx)
	id := ids[0]
	if store == "s3" {
		srv := s3test.New(t, "videos")
		bucket, err := objstore.Open(ctx, srv.URL("videos", "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer bucket.Close()
		if err := bucket.Put(ctx, "b/kept.mp4", strings.NewReader("video")); err != nil {
			t.Fatal(err)
		}
		e.m.Objects, e.m.OutDir = bucket, ""
	} else {
		os.MkdirAll(filepath.Join(e.m.OutDir, "b"), 0o755)
		write(t, filepath.Join(e.m.OutDir, "b", "kept.mp4"), "video")
	}
	for row, done := range map[int]time.Time{0: time.Now().Add(-time.Hour), 1: time.Now().Add(-48 * time.Hour), 2: time.Now()} {
		file := []batch.File{{Path: "b/missing.mp4", Size: 5}}
		if row == 2 {
			file = []batch.File{{Path: "b/kept.mp4", Size: 5}}
		}
		if _, err := e.m.Store.Transition(ctx, id, row, batch.Change{From: []tasks.State{tasks.StateQueued},
			To: tasks.StateDone, TaskID: "task_y", ResultURLs: []string{"http://x/y.mp4"}, Completed: done, Files: file}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.m.Expiry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Redownloads != 1 || r.Lost != 1 {
		t.Errorf("report %+v, want 1 download queued again and 1 lost", r)
	}
	states := []tasks.State{}
	for row := range 3 {
		j, _ := e.m.Store.Job(ctx, id, row)
		states = append(states, j.State)
	}
	if !slices.Equal(states, []tasks.State{tasks.StateSucceeded, tasks.StateDone, tasks.StateDone}) {
		t.Errorf("states %v", states)
	}
	if info, err := e.insp.GetQueueInfo(e.queues.Download); err != nil || info.Pending != 1 {
		t.Errorf("download queue: %+v, %v", info, err)
	}
}

// TestReconcileRetiresFinishedBatches: a batch finished while no retention
// was applied (a process stopped in between) is retired by reconcile; an
// unfinished one is not.
func TestReconcileRetiresFinishedBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	write(t, filepath.Join(e.m.Inbox, "done.csv"), "prompt\na finished scene\n")
	write(t, filepath.Join(e.m.Inbox, "open.csv"), "prompt\nan open scene\n")
	if _, err := e.m.Import(ctx); err != nil {
		t.Fatal(err)
	}
	ids, _ := e.m.Store.Batches(ctx)
	// Finished by a store that retires nothing.
	quiet := batch.NewStore(e.rs.Client, e.rs.Prefix)
	quiet.SetRetention(0)
	var done string
	for _, id := range ids {
		if strings.HasPrefix(id, "done-") {
			done = id
			if _, err := quiet.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.m.Store.SetRetention(time.Hour)
	for i, want := range []int{1, 0} { // the second run finds nothing more to do
		r, err := e.m.Reconcile(ctx)
		if err != nil || r.Retired != want {
			t.Fatalf("reconcile %d: %+v, %v", i, r, err)
		}
	}
	for _, id := range ids {
		d, err := e.rs.Client.PTTL(ctx, e.rs.Prefix+":b:{"+id+"}:job:0").Result()
		if err != nil || (id == done) != (d > 0) {
			t.Errorf("%s: job time to live %v, %v", id, d, err)
		}
	}
}

package batch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// writeRows writes a CSV file of n rows with distinct prompts of
// promptLen characters.
func writeRows(t testing.TB, n, promptLen int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,prompt\n")
	filler := strings.Repeat("a calm sea under a slow grey sky ", promptLen/32+1)
	for i := range n {
		p := fmt.Sprintf("scene %d: %s", i, filler)[:promptLen]
		fmt.Fprintf(&b, "clip-%d,%s\n", i, p)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("rows-%d.csv", n))
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// deleteKeys removes every key matching pattern.
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) {
	it := rdb.Scan(ctx, 0, pattern, 5000).Iterator()
	pipe := rdb.Pipeline()
	for it.Next(ctx) {
		pipe.Unlink(ctx, it.Val())
		if pipe.Len() == 5000 {
			pipe.Exec(ctx)
		}
	}
	pipe.Exec(ctx)
}

// BenchmarkEnqueue enqueues a CSV file of rows as seedbatch enqueue does
// (plan, then enqueue), next to asynq's own client enqueueing as many
// tasks from 32 goroutines into the same Redis, and reports both rates and
// their ratio.
func BenchmarkEnqueue(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			r := redistest.New(b)
			ctx := b.Context()
			path := writeRows(b, n, 200)
			store := batch.NewStore(r.Client, r.Prefix)
			queues := queue.NamesFor(r.Prefix)
			q := queue.New(r.Client, queues)
			defer q.Close()
			client := asynq.NewClientFromRedisClient(r.Client)
			defer client.Close()
			var ours, theirs time.Duration
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				id := fmt.Sprintf("bench-%d", i)
				start := time.Now()
				opts := batch.PlanOptions{BatchID: id, AllowDuplicates: true}
				plan, err := batch.PlanFile(path, opts)
				if err != nil {
					b.Fatal(err)
				}
				res, err := store.EnqueueBatch(ctx, q, plan, opts, batch.Settings{RequestType: queue.RequestAsync, BudgetSeconds: -1})
				if err != nil || res.Queued != n {
					b.Fatalf("enqueue: %+v, %v", res, err)
				}
				ours += time.Since(start)

				b.StopTimer()
				deleteKeys(ctx, r.Client, "asynq:{"+queues.Submit+"}:*")
				deleteKeys(ctx, r.Client, r.Prefix+":b:{"+id+"}:*")
				theirs += asynqEnqueue(b, client, queues.Submit, id, n)
				deleteKeys(ctx, r.Client, "asynq:{"+queues.Submit+"}:*")
				b.StartTimer()
			}
			rows := float64(n * i)
			b.ReportMetric(rows/ours.Seconds(), "rows/s")
			b.ReportMetric(rows/theirs.Seconds(), "asynq-tasks/s")
			b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x-asynq")
		})
	}
}

// asynqEnqueue enqueues n submit tasks with asynq's client from 32
// goroutines and returns how long it took.
func asynqEnqueue(b *testing.B, client *asynq.Client, queue, id string, n int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for {
				row := int(next.Add(1)) - 1
				if row >= n {
					return
				}
				t := asynq.NewTask(tasks.TypeSubmit, tasks.JobPayload{Batch: id, Row: row}.Marshal())
				if _, err := client.Enqueue(t, asynq.Queue(queue), asynq.TaskID(tasks.SubmitTaskID(id, row, 0)),
					asynq.MaxRetry(1<<20), asynq.Timeout(5*time.Minute)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// realSetup gives a test a store and a real queue on its own namespace.
func realSetup(t *testing.T) (*redistest.Server, *batch.Store, queue.Names, *queue.Client) {
	t.Helper()
	r := redistest.New(t)
	qs := queue.NamesFor(r.Prefix)
	q := queue.New(r.Client, qs)
	t.Cleanup(func() { q.Close() })
	return r, batch.NewStore(r.Client, r.Prefix), qs, q
}

// pendingIDs lists the submit queue's pending task ids.
func pendingIDs(t *testing.T, r *redistest.Server, qs queue.Names) map[string]int {
	t.Helper()
	ids, err := r.Client.LRange(t.Context(), "asynq:{"+qs.Submit+"}:pending", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, id := range ids {
		m[id]++
	}
	return m
}

// TestEnqueueRepeatable enqueues a batch, disturbs it as an interrupted or
// advanced enqueue would leave it, and enqueues it again: rows still queued
// get their current attempt's submit task back, nothing else is added.
func TestEnqueueRepeatable(t *testing.T) {
	t.Parallel()
	chunk := 1000
	if !redistest.Real() {
		chunk = 100 // miniredis checks every key's expiry at every command
	}
	rows := chunk*2 + chunk/2 // three chunks
	for _, tc := range []struct {
		name    string
		disturb func(t *testing.T, r *redistest.Server, s *batch.Store, qs queue.Names, id string)
		// want are the submit tasks expected afterwards, by row, with their attempt.
		wantTasks func(row int) (attempt int, ok bool)
		// wantAdded is the jobs added again; -1: all but the first chunk.
		wantAdded int
	}{
		{"again as it is", func(*testing.T, *redistest.Server, *batch.Store, queue.Names, string) {},
			func(int) (int, bool) { return 0, true }, 0},
		{"tasks lost", func(t *testing.T, r *redistest.Server, _ *batch.Store, qs queue.Names, id string) {
			deleteKeys(t.Context(), r.Client, "asynq:{"+qs.Submit+"}:*")
		}, func(int) (int, bool) { return 0, true }, 0},
		{"cut off after the first chunk", func(t *testing.T, r *redistest.Server, _ *batch.Store, qs queue.Names, id string) {
			pipe := r.Client.Pipeline()
			for row := chunk; row < rows; row++ {
				pipe.Del(t.Context(), r.Prefix+":b:{"+id+"}:job:"+fmt.Sprint(row))
				pipe.Del(t.Context(), "asynq:{"+qs.Submit+"}:t:"+tasks.SubmitTaskID(id, row, 0))
				pipe.LRem(t.Context(), "asynq:{"+qs.Submit+"}:pending", 0, tasks.SubmitTaskID(id, row, 0))
			}
			pipe.HIncrBy(t.Context(), r.Prefix+":b:{"+id+"}:counts", string(tasks.StateQueued), int64(chunk-rows))
			if _, err := pipe.Exec(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, func(int) (int, bool) { return 0, true }, -1},
		{"rows moved on", func(t *testing.T, r *redistest.Server, s *batch.Store, qs queue.Names, id string) {
			deleteKeys(t.Context(), r.Client, "asynq:{"+qs.Submit+"}:*")
			// Row 0 was submitted; row 1 resubmitted and queued under attempt 1.
			if _, err := s.Transition(t.Context(), id, 0, batch.Change{From: []tasks.State{tasks.StateQueued},
				To: tasks.StateSubmitted, TaskID: "task-0"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Transition(t.Context(), id, 1, batch.Change{From: []tasks.State{tasks.StateQueued},
				To: tasks.StateQueued, NewAttempt: new(int(1))}); err != nil {
				t.Fatal(err)
			}
		}, func(row int) (int, bool) { return map[int]int{1: 1}[row], row != 0 }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, s, qs, q := realSetup(t)
			s.SetChunk(chunk)
			wantAdded := tc.wantAdded
			if wantAdded < 0 {
				wantAdded = rows - chunk
			}
			path := writeRows(t, rows, 200)
			plan, err := batch.PlanFile(path, batch.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Enqueue(t.Context(), q, plan, batch.PlanOptions{})
			if err != nil || res.Added != rows || res.Queued != rows {
				t.Fatalf("first enqueue = %+v, %v", res, err)
			}
			tc.disturb(t, r, s, qs, plan.ID)
			res, err = s.Enqueue(t.Context(), q, plan, batch.PlanOptions{})
			if err != nil || res.Added != wantAdded || res.Existing != rows-wantAdded {
				t.Fatalf("second enqueue = %+v, %v", res, err)
			}
			ids := pendingIDs(t, r, qs)
			want := 0
			for row := range rows {
				attempt, ok := tc.wantTasks(row)
				if !ok {
					continue
				}
				want++
				if ids[tasks.SubmitTaskID(plan.ID, row, attempt)] != 1 {
					t.Fatalf("row %d: submit task of attempt %d listed %d times", row, attempt, ids[tasks.SubmitTaskID(plan.ID, row, attempt)])
				}
			}
			if len(ids) != want {
				t.Fatalf("%d pending tasks, want %d", len(ids), want)
			}
			_, counts, err := s.Get(t.Context(), plan.ID)
			if err != nil || counts.Total() != rows {
				t.Fatalf("counts = %v, %v", counts, err)
			}
		})
	}
}

// TestJobSpecRoundTrip stores specs the compact way and reads them back.
func TestJobSpecRoundTrip(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	long := strings.Repeat("ü a long prompt <with> \"quotes\" & more, ", 70)[:2500]
	full := tasks.Spec{ID: "custom id", Mode: "image-to-video", Prompt: "a cat", ImageURLs: []string{"https://x.test/a.png", "https://x.test/b.png"},
		Duration: 12, Resolution: "480p", AspectRatio: "9:16", Sound: true, FixedLens: true, Provider: "official"}
	for i, tc := range []struct {
		name string
		line int
		spec tasks.Spec
	}{
		{"all defaults, generated id", 7, tasks.Spec{ID: "row-7", Mode: "text-to-video", Prompt: "a dog", Duration: 4,
			Resolution: "720p", AspectRatio: "16:9", Provider: "auto"}},
		{"every field set", 3, full},
		{"generated id of another line", 9, tasks.Spec{ID: "row-7", Mode: "text-to-video", Prompt: "x y z", Duration: 4,
			Resolution: "720p", AspectRatio: "16:9", Provider: "auto"}},
		{"empty fields of a rejected row", 4, tasks.Spec{ID: "", Mode: "", Prompt: "", Duration: 0}},
		{"2500 characters", 5, tasks.Spec{ID: "long", Mode: "text-to-video", Prompt: long, Duration: 8,
			Resolution: "720p", AspectRatio: "16:9", Provider: "auto"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("spec-%d", i)
			if _, err := s.AddJobs(ctx, []batch.Job{{Batch: id, Row: 0, Line: tc.line, Spec: tc.spec, State: tasks.StateQueued}}); err != nil {
				t.Fatal(err)
			}
			j, err := s.Job(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(j.Spec) != fmt.Sprint(tc.spec) || j.Line != tc.line || j.Attempt != 0 || j.FailCode != "" {
				t.Fatalf("read back %+v, stored %+v", j, tc.spec)
			}
		})
	}
}

// TestRedisMemoryPerJob measures on a real Redis what a queued job with a
// 200-character prompt takes: its record, its asynq task and its entry in
// the pending list.
func TestRedisMemoryPerJob(t *testing.T) {
	if !redistest.Real() {
		t.Skip("MEMORY USAGE needs a real Redis (REDIS_URL)")
	}
	t.Parallel()
	r := redistest.New(t)
	ctx := t.Context()
	// Keys as long as a production namespace's ("seedbatch").
	prefix := fmt.Sprintf("sb%07d", time.Now().UnixNano()%10_000_000)
	s, qs := batch.NewStore(r.Client, prefix), queue.NamesFor(prefix)
	q := queue.New(r.Client, qs)
	defer q.Close()
	t.Cleanup(func() {
		deleteKeys(context.Background(), r.Client, prefix+":*")
		deleteKeys(context.Background(), r.Client, "asynq:{"+qs.Submit+"}:*")
	})
	const rows = 2000
	plan, err := batch.PlanFile(writeRows(t, rows, 200), batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, q, plan, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	usage := func(key string) int64 {
		n, err := r.Client.MemoryUsage(ctx, key, 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	job := usage(prefix + ":b:{" + plan.ID + "}:job:1234")
	task := usage("asynq:{" + qs.Submit + "}:t:" + tasks.SubmitTaskID(plan.ID, 1234, 0))
	list := usage("asynq:{"+qs.Submit+"}:pending") / rows
	enc, err := r.Client.ObjectEncoding(ctx, prefix+":b:{"+plan.ID+"}:job:1234").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bytes per queued job: record %d (%s), asynq task %d, pending list entry %d: %d", job, enc, task, list, job+task+list)
	if enc != "listpack" {
		t.Errorf("job record encoded as %s, want listpack", enc)
	}
	if job+task+list > 1024 {
		t.Errorf("a queued job takes %d bytes, want at most 1024", job+task+list)
	}
}

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
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
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
			queues := worker.QueuesFor(r.Prefix)
			q := worker.NewQueue(r.Client, queues)
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
				res, err := store.EnqueueBatch(ctx, q, plan, opts, batch.BatchOptions{RequestType: worker.RequestAsync, BudgetSeconds: -1})
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

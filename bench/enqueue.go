package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/internal/proc"
)

// enqueueGoroutines is how many goroutines enqueue asynq's tasks.
const enqueueGoroutines = 32

// EnqueueLine compares `seedbatch enqueue` with asynq's own Client.Enqueue.
type EnqueueLine struct {
	// Rows is the number of rows (and asynq tasks) enqueued.
	Rows int
	// Seedbatch is the wall time of the `seedbatch enqueue` process.
	Seedbatch time.Duration
	// MaxRSS is that process's maximum resident set in bytes, -1 if unknown.
	MaxRSS int64
	// Asynq is the wall time of enqueueing Rows tasks with asynq's
	// Client.Enqueue from enqueueGoroutines goroutines.
	Asynq time.Duration
	// Err is why the measurement failed.
	Err error
}

// SeedbatchRate returns seedbatch's rows a second.
func (e *EnqueueLine) SeedbatchRate() float64 { return perSecond(e.Rows, e.Seedbatch) }

// AsynqRate returns asynq's tasks a second.
func (e *EnqueueLine) AsynqRate() float64 { return perSecond(e.Rows, e.Asynq) }

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// enqueueLine measures both enqueues of r.cfg.EnqueueRows rows into r's
// Redis, each namespace deleted afterwards.
func (r *run) enqueueLine(ctx context.Context) *EnqueueLine {
	line := &EnqueueLine{Rows: r.cfg.EnqueueRows, MaxRSS: -1}
	ns := newNamespace("enqueue")
	asynqQueue := ns.prefix + "-asynq"
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := r.redis.drop(dctx, ns, asynqQueue); err != nil && line.Err == nil {
			line.Err = err
		}
	}()
	path := filepath.Join(r.dir, "enqueue.csv")
	if err := writeCSV(path, line.Rows, r.cfg.Duration); err != nil {
		line.Err = err
		return line
	}
	env := proc.Env("REDIS_URL="+r.redis.url, "SEEDBATCH_REDIS_PREFIX="+ns.prefix,
		"SEEDANCE_API_KEY="+ns.apiKey, "SEEDBATCH_LOG_LEVEL=warn")
	start := time.Now()
	c, err := proc.Start(ctx, r.cfg.Executable, r.dir, env, "", "enqueue", "--batch", "bench-enqueue", path)
	if err != nil {
		line.Err = fmt.Errorf("start enqueue: %w", err)
		return line
	}
	<-c.Done()
	line.Seedbatch = time.Since(start)
	if err := c.ExitErr(); err != nil {
		line.Err = fmt.Errorf("seedbatch enqueue: %w", err)
		return line
	}
	line.MaxRSS = maxRSS(c.Cmd.ProcessState)

	line.Asynq, err = r.asynqEnqueue(ctx, asynqQueue, line.Rows)
	if err != nil {
		line.Err = err
	}
	return line
}

// asynqEnqueue enqueues n tasks, with a row number and a prompt as their
// payload, into queue from enqueueGoroutines goroutines, and returns the
// time it took.
func (r *run) asynqEnqueue(ctx context.Context, queue string, n int) (time.Duration, error) {
	client := asynq.NewClientFromRedisClient(r.redis.client)
	defer client.Close()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, enqueueGoroutines)
	start := time.Now()
	for range enqueueGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				payload, _ := json.Marshal(struct {
					Row    int    `json:"row"`
					Prompt string `json:"prompt"`
				}{i, prompt(i)})
				task := asynq.NewTask("bench:row", payload)
				if _, err := client.EnqueueContext(ctx, task, asynq.Queue(queue), asynq.TaskID("row-"+strconv.Itoa(i))); err != nil {
					errs <- fmt.Errorf("asynq enqueue: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	return elapsed, <-errs
}

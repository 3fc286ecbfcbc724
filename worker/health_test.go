package worker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/worker"
)

// TestWorkerHealth follows Health through a worker's life: not started,
// serving, then shutting down.
func TestWorkerHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sim-key")
	ctx := t.Context()
	if err := h.worker.Health(ctx); !errors.Is(err, worker.ErrNotStarted) {
		t.Errorf("before Start: %v, want ErrNotStarted", err)
	}
	if err := h.worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.worker.Health(ctx); err != nil {
		t.Errorf("serving: %v, want nil", err)
	}
	h.worker.Shutdown()
	if err := h.worker.Health(ctx); !errors.Is(err, worker.ErrStopping) {
		t.Errorf("after Shutdown: %v, want ErrStopping", err)
	}
}

// TestWorkerHealthRedisDown: a worker whose Redis stops answering is not
// healthy, and says why, until Redis is back.
func TestWorkerHealthRedisDown(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	const prefix = "health"
	lim, err := ratelimit.New(rdb, ratelimit.Config{Prefix: prefix, Scope: "test", RequestsPerMinute: 600, Burst: 10, MaxInFlight: 10})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fetch.New(fetch.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(rdb, batch.NewStore(rdb, prefix), lim, nil, f,
		worker.Config{Queues: queue.NamesFor(prefix), ShutdownTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	if err := w.Health(ctx); err != nil {
		t.Fatalf("serving: %v", err)
	}
	mr.Close()
	err = w.Health(ctx)
	if err == nil || !strings.Contains(err.Error(), "redis does not answer") {
		t.Errorf("Redis down: %v, want an error saying Redis does not answer", err)
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, func() error { return w.Health(ctx) })
}

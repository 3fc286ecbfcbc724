package bench

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
)

// The provider's advice (PROVIDER.md, Timing): wait about 50 s after a
// create, then poll every 5 s; and what a user does on a 429.
const (
	naiveFirstPoll    = 50 * time.Second
	naivePollInterval = 5 * time.Second
	naiveBackoff      = 2 * time.Second
)

// provider is what the naive client calls.
type provider interface {
	Create(ctx context.Context, req seedance.CreateRequest) (string, error)
	Status(ctx context.Context, taskID string) (seedance.Task, error)
}

var _ provider = (*seedance.Client)(nil)

// naiveConfig configures the naive client. Zero fields take the provider's
// limits and advice; every wait is divided by timeScale, and the request
// rate multiplied by it.
type naiveConfig struct {
	maxInFlight       int           // local slots, default the provider's 1 000
	requestsPerMinute int           // local bucket, default the provider's 10 000
	firstPoll         time.Duration // after a create, default 50 s
	pollInterval      time.Duration // between reads, default 5 s
	backoff           time.Duration // after a 429, default 2 s
	timeScale         float64       // default 1
}

func (c naiveConfig) withDefaults() naiveConfig {
	c.maxInFlight = cmp.Or(c.maxInFlight, sim.MaxInFlightDefault)
	c.requestsPerMinute = cmp.Or(c.requestsPerMinute, sim.RequestsPerMinuteDefault)
	c.firstPoll = cmp.Or(c.firstPoll, naiveFirstPoll)
	c.pollInterval = cmp.Or(c.pollInterval, naivePollInterval)
	c.backoff = cmp.Or(c.backoff, naiveBackoff)
	c.timeScale = cmp.Or(c.timeScale, 1)
	return c
}

// naiveResult counts how the naive client's jobs ended.
type naiveResult struct {
	succeeded, failed int
	// errors counts jobs given up on an error other than a 429 (a create
	// that was refused or whose outcome is unknown, a task not found).
	errors int
}

// runNaive runs jobs as a user's script would: for each job, in order, it
// waits for a local in-flight slot, then a goroutine waits for a token,
// creates the task, sleeps the first-poll delay and reads the status at
// the poll interval until the task succeeds or fails, and frees the slot.
// A 429, to a create or a read, backs off and tries again. It returns when
// every job has ended, or with ctx's error.
func runNaive(ctx context.Context, p provider, cfg naiveConfig, jobs []seedance.CreateRequest) (naiveResult, error) {
	cfg = cfg.withDefaults()
	limiter := rate.NewLimiter(rate.Limit(float64(cfg.requestsPerMinute)*cfg.timeScale/60), 1)
	wait := func(d time.Duration) time.Duration { return time.Duration(float64(d) / cfg.timeScale) }
	firstPoll, interval, backoff := wait(cfg.firstPoll), wait(cfg.pollInterval), wait(cfg.backoff)

	var succeeded, failed, errs atomic.Int64
	slots := make(chan struct{}, cfg.maxInFlight)
	var wg sync.WaitGroup
	job := func(req seedance.CreateRequest) {
		defer func() { <-slots }()
		var id string
		for {
			if limiter.Wait(ctx) != nil {
				return
			}
			var err error
			if id, err = p.Create(ctx, req); err == nil {
				break
			}
			if !errors.Is(err, seedance.ErrRateLimited) {
				errs.Add(1)
				return
			}
			if !sleep(ctx, backoff) {
				return
			}
		}
		next := firstPoll
		for {
			if !sleep(ctx, next) || limiter.Wait(ctx) != nil {
				return
			}
			task, err := p.Status(ctx, id)
			switch {
			case errors.Is(err, seedance.ErrRateLimited):
				next = backoff
				continue
			case errors.Is(err, seedance.ErrNotFound):
				errs.Add(1)
				return
			case err == nil && task.State == seedance.StateSuccess:
				succeeded.Add(1)
				return
			case err == nil && task.State == seedance.StateFailed:
				failed.Add(1)
				return
			}
			next = interval
		}
	}
	for _, req := range jobs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			job(req)
		}()
	}
	wg.Wait()
	res := naiveResult{succeeded: int(succeeded.Load()), failed: int(failed.Load()), errors: int(errs.Load())}
	return res, ctx.Err()
}

// sleep waits for d and reports false without waiting it out when ctx is
// done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

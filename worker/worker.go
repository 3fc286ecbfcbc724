package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
)

// Defaults of Config.
const (
	SubmitConcurrencyDefault = 20
	PollConcurrencyDefault   = 50
	PollIntervalDefault      = 5 * time.Second
	MaxRetryDefault          = 10
	ShutdownTimeoutDefault   = 30 * time.Second
	MaxWaitDefault           = 5 * time.Second
	RequestTypeDefault       = "async"
)

// FirstPollDefault is when a task of each video duration is read first: the
// fastest generation time the provider documents for it.
var FirstPollDefault = map[int]time.Duration{4: 40 * time.Second, 8: 60 * time.Second, 12: 90 * time.Second}

// Config tunes a Worker. Zero fields take the defaults above.
type Config struct {
	// Queues are the queue names (required; see QueuesFor).
	Queues Queues
	// SubmitConcurrency and PollConcurrency are handlers per process.
	SubmitConcurrency, PollConcurrency int
	// FirstPoll maps a video duration in seconds to the delay of its first
	// status read (default FirstPollDefault).
	FirstPoll map[int]time.Duration
	// PollInterval separates later status reads (default 5s).
	PollInterval time.Duration
	// TimeScale divides FirstPoll and PollInterval (default 1); only for a
	// provider simulated in compressed time.
	TimeScale float64
	// MaxRetry is how often a failing request is retried (default 10).
	MaxRetry int
	// ShutdownTimeout lets running handlers finish on shutdown (default 30s).
	ShutdownTimeout time.Duration
	// MaxWait is how long a handler waits in place for a limit before it
	// hands its task back to be run later (default 5s).
	MaxWait time.Duration
	// RequestType is "async" (poll) or "callback" (default async).
	RequestType string
	// Logger receives the worker's logs (default: discarded).
	Logger *slog.Logger
	// LogLevel is asynq's own log level (default warn).
	LogLevel asynq.LogLevel
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.SubmitConcurrency = cmp.Or(c.SubmitConcurrency, SubmitConcurrencyDefault)
	c.PollConcurrency = cmp.Or(c.PollConcurrency, PollConcurrencyDefault)
	if c.FirstPoll == nil {
		c.FirstPoll = FirstPollDefault
	}
	c.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	c.TimeScale = cmp.Or(c.TimeScale, 1)
	c.MaxRetry = cmp.Or(c.MaxRetry, MaxRetryDefault)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, ShutdownTimeoutDefault)
	c.MaxWait = cmp.Or(c.MaxWait, MaxWaitDefault)
	c.RequestType = cmp.Or(c.RequestType, RequestTypeDefault)
	c.LogLevel = cmp.Or(c.LogLevel, asynq.WarnLevel)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Queues.Submit == "" || c.Queues.Poll == "" || c.Queues.Submit == c.Queues.Poll:
		return errors.New("worker: Queues: need two distinct queue names")
	case c.TimeScale < 1:
		return errors.New("worker: TimeScale: must be at least 1")
	case c.RequestType != "async":
		return fmt.Errorf("worker: RequestType: %q is not supported", c.RequestType)
	}
	return nil
}

// scaled divides a provider timing by the time scale.
func (c Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.TimeScale)
}

// firstPoll is when a new task of a given video duration is read first.
func (c Config) firstPoll(seconds int) time.Duration {
	d, ok := c.FirstPoll[seconds]
	if !ok {
		d = time.Duration(seconds) * 10 * time.Second
	}
	return c.scaled(d)
}

// Provider is the video API as the worker uses it (seedance.Client).
type Provider interface {
	Create(ctx context.Context, req seedance.CreateRequest) (string, error)
	Status(ctx context.Context, taskID string) (seedance.Task, error)
}

// Limiter holds the provider's limits across processes (ratelimit.Limiter).
type Limiter interface {
	AdmitSubmit(ctx context.Context, holder string) (ratelimit.Result, error)
	AdmitRequest(ctx context.Context, holder string) (ratelimit.Result, error)
	Release(ctx context.Context, holder string) error
	Cooldown(ctx context.Context, d time.Duration) error
	Pause(ctx context.Context, reason string) error
}

// Worker serves the submit and poll queues.
type Worker struct {
	cfg      Config
	store    *batch.Store
	limiter  Limiter
	provider Provider
	queue    *Queue
	insp     *asynq.Inspector
	submit   *asynq.Server
	poll     *asynq.Server
	log      *slog.Logger
}

// New returns a Worker that keeps its records in store and its queues in rdb.
func New(rdb redis.UniversalClient, store *batch.Store, lim Limiter, prov Provider, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, store: store, limiter: lim, provider: prov, log: cfg.Logger,
		queue: NewQueue(rdb, cfg.Queues, cfg.MaxRetry),
		insp:  asynq.NewInspectorFromRedisClient(rdb),
	}
	server := func(queue string, concurrency int) *asynq.Server {
		return asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency:              concurrency,
			Queues:                   map[string]int{queue: 1},
			IsFailure:                isFailure,
			RetryDelayFunc:           retryDelay,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			DelayedTaskCheckInterval: 250 * time.Millisecond,
			TaskCheckInterval:        100 * time.Millisecond,
			Logger:                   asynqLogger{cfg.Logger},
			LogLevel:                 cfg.LogLevel,
		})
	}
	w.submit = server(cfg.Queues.Submit, cfg.SubmitConcurrency)
	w.poll = server(cfg.Queues.Poll, cfg.PollConcurrency)
	return w, nil
}

// Start starts both servers.
func (w *Worker) Start() error {
	sm := asynq.NewServeMux()
	sm.HandleFunc(tasks.TypeSubmit, w.handleSubmit)
	if err := w.submit.Start(sm); err != nil {
		return fmt.Errorf("start submit server: %w", err)
	}
	pm := asynq.NewServeMux()
	pm.HandleFunc(tasks.TypePoll, w.handlePoll)
	if err := w.poll.Start(pm); err != nil {
		w.submit.Shutdown()
		return fmt.Errorf("start poll server: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks and waits up to the shutdown timeout for the
// running ones; those still running are handed back to the queue.
func (w *Worker) Shutdown() {
	w.submit.Stop()
	w.poll.Stop()
	w.submit.Shutdown()
	w.poll.Shutdown()
	w.queue.Close()
	w.insp.Close()
}

// Pause stops submitting in every process: the limiter refuses submits and
// the submit queue is paused, so status shows why. Polls go on.
func (w *Worker) Pause(ctx context.Context, reason string) error {
	return PauseSubmitting(ctx, w.limiter, w.insp, w.cfg.Queues, reason)
}

// pauser is the part of the limiter that pausing needs.
type pauser interface {
	Pause(ctx context.Context, reason string) error
}

// PauseSubmitting pauses the limiter's submits and the asynq submit queue.
func PauseSubmitting(ctx context.Context, lim pauser, insp *asynq.Inspector, q Queues, reason string) error {
	if err := lim.Pause(ctx, reason); err != nil {
		return fmt.Errorf("pause submitting: %w", err)
	}
	if err := insp.PauseQueue(q.Submit); err != nil && !isAlreadyPaused(err) {
		return fmt.Errorf("pause queue %s: %w", q.Submit, err)
	}
	return nil
}

// resumer is the part of the limiter that resuming needs.
type resumer interface {
	Resume(ctx context.Context) error
}

// ResumeSubmitting undoes PauseSubmitting.
func ResumeSubmitting(ctx context.Context, lim resumer, insp *asynq.Inspector, q Queues) error {
	if err := lim.Resume(ctx); err != nil {
		return fmt.Errorf("resume submitting: %w", err)
	}
	if err := insp.UnpauseQueue(q.Submit); err != nil && !isNotPaused(err) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("unpause queue %s: %w", q.Submit, err)
	}
	return nil
}

// asynq reports these conditions only as text.
func isAlreadyPaused(err error) bool { return strings.Contains(err.Error(), "already paused") }
func isNotPaused(err error) bool     { return strings.Contains(err.Error(), "not paused") }

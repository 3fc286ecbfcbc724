package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/crashpoint"
	"github.com/seedbatch/seedbatch/internal/hostcheck"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/redact"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
)

// Defaults of Config.
const (
	SubmitConcurrencyDefault   = 20
	PollConcurrencyDefault     = 1000
	PollIntervalDefault        = time.Second
	MaxRetryDefault            = 10
	ShutdownTimeoutDefault     = 30 * time.Second
	MaxWaitDefault             = 5 * time.Second
	SlotWaitDefault            = time.Minute
	RequestTypeDefault         = queue.RequestAsync
	DownloadConcurrencyDefault = 4
	SafetyGraceDefault         = 60 * time.Second
	SafetyIntervalDefault      = 30 * time.Second
	CallbackMaxBodyDefault     = 64 << 10
	// MaxUnreadableDefault is the default Config.MaxUnreadable.
	MaxUnreadableDefault = 3
)

// slowestFinish is the longest generation time the provider documents for
// each video duration; a callback job's safety poll comes after it.
var slowestFinish = map[int]time.Duration{4: 60 * time.Second, 8: 90 * time.Second, 12: 120 * time.Second}

// FirstPollDefault is when a task of each video duration is read first: the
// fastest generation time the provider documents for it.
var FirstPollDefault = map[int]time.Duration{4: 40 * time.Second, 8: 60 * time.Second, 12: 90 * time.Second}

// Config tunes a Worker. Zero fields take the defaults above.
type Config struct {
	// Queues are the queue names (required; see queue.NamesFor).
	Queues queue.Names
	// Prefix namespaces the worker's own keys: the generation times its
	// poll planning shares (default: the prefix the queue names were made with).
	Prefix string
	// SubmitConcurrency and PollConcurrency are handlers per process.
	SubmitConcurrency, PollConcurrency int
	// FirstPoll maps a video duration in seconds to the fastest generation
	// time to expect until enough have been observed (default
	// FirstPollDefault, the provider's documented fastest).
	FirstPoll map[int]time.Duration
	// PollInterval is the least time between two reads of one task
	// (default 1s); the poll plan spaces them as the request budget allows.
	PollInterval time.Duration
	// TimeScale divides FirstPoll and PollInterval (default 1); only for a
	// provider simulated in compressed time.
	TimeScale float64
	// MaxRetry is how often a failing request is retried (default 10).
	MaxRetry int
	// MaxUnreadable is how many status answers in a row that cannot be read
	// (seedance.ErrUnreadable: an unknown state, a resultJson that is not
	// JSON...) end a row failed with PROVIDER_ANSWER_UNREADABLE (default
	// MaxUnreadableDefault, 3). Between them the row is polled as usual.
	MaxUnreadable int
	// ShutdownTimeout lets running handlers finish on shutdown (default 30s).
	ShutdownTimeout time.Duration
	// MaxWait is how long a handler waits in place for a request token or
	// a cool-down before it hands its task back to be run later (default 5s).
	MaxWait time.Duration
	// SlotWait is how long a submit waits in place for an in-flight slot
	// before it hands its task back (default 1m). The release of a slot in
	// any process wakes it at once, so waiting long in place costs nothing
	// and keeps the queue's order.
	SlotWait time.Duration
	// RequestType is "async" (poll) or "callback", for batches that do not
	// name one (default async).
	RequestType string
	// Callback configures callback mode.
	Callback CallbackConfig
	// DownloadConcurrency is the number of download handlers (default 4).
	DownloadConcurrency int
	// Account names the account of the provider and limiter given to New
	// (default batch.AccountDefault).
	Account string
	// Accounts are the further accounts by name: a batch's tasks are
	// created and read with its account's provider, under its limiter.
	Accounts map[string]Account
	// Metrics receives measurements (default: discarded).
	Metrics Metrics
	// Redactor masks secrets in every error the worker stores (in job
	// records, and as asynq's last error of a task) and in its logs
	// (default: one that knows the callback secret; give it the API key
	// too).
	Redactor *redact.Redactor
	// Logger receives the worker's logs (default: discarded).
	Logger *slog.Logger
	// LogLevel is asynq's own log level (default warn).
	LogLevel asynq.LogLevel
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Crash arms the crash points of submits (crashpoint.AfterSubmitting,
	// AfterCreateSent, AfterCreateAnswer), for tests and drills; nil arms
	// none.
	Crash *crashpoint.Set
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.Prefix = cmp.Or(c.Prefix, strings.TrimSuffix(c.Queues.Submit, "-"+tasks.QueueSubmit))
	c.SubmitConcurrency = cmp.Or(c.SubmitConcurrency, SubmitConcurrencyDefault)
	c.PollConcurrency = cmp.Or(c.PollConcurrency, PollConcurrencyDefault)
	if c.FirstPoll == nil {
		c.FirstPoll = FirstPollDefault
	}
	c.PollInterval = cmp.Or(c.PollInterval, PollIntervalDefault)
	c.TimeScale = cmp.Or(c.TimeScale, 1)
	c.MaxRetry = cmp.Or(c.MaxRetry, MaxRetryDefault)
	c.MaxUnreadable = cmp.Or(c.MaxUnreadable, MaxUnreadableDefault)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, ShutdownTimeoutDefault)
	c.MaxWait = cmp.Or(c.MaxWait, MaxWaitDefault)
	c.SlotWait = cmp.Or(c.SlotWait, SlotWaitDefault)
	c.RequestType = cmp.Or(c.RequestType, RequestTypeDefault)
	c.DownloadConcurrency = cmp.Or(c.DownloadConcurrency, DownloadConcurrencyDefault)
	c.Callback.SafetyGrace = cmp.Or(c.Callback.SafetyGrace, SafetyGraceDefault)
	c.Callback.SafetyInterval = cmp.Or(c.Callback.SafetyInterval, SafetyIntervalDefault)
	c.Callback.MaxBody = cmp.Or(c.Callback.MaxBody, CallbackMaxBodyDefault)
	c.LogLevel = cmp.Or(c.LogLevel, asynq.WarnLevel)
	c.Account = cmp.Or(c.Account, batch.AccountDefault)
	if c.Redactor == nil {
		c.Redactor = redact.New(string(c.Callback.Secret))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Logger = slog.New(c.Redactor.Handler(c.Logger.Handler()))
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Queues.Submit == "" || c.Queues.Poll == "" || c.Queues.Download == "" ||
		c.Queues.Submit == c.Queues.Poll || c.Queues.Poll == c.Queues.Download || c.Queues.Submit == c.Queues.Download:
		return errors.New("worker: Queues: need three distinct queue names")
	case c.TimeScale < 1:
		return errors.New("worker: TimeScale: must be at least 1")
	case c.MaxUnreadable < 1:
		return errors.New("worker: MaxUnreadable: must be at least 1")
	case c.RequestType != queue.RequestAsync && c.RequestType != queue.RequestCallback:
		return fmt.Errorf("worker: RequestType: %q is not async or callback", c.RequestType)
	case c.RequestType == queue.RequestCallback && !c.Callback.enabled():
		return errors.New("worker: RequestType callback needs Callback.PublicURL and Callback.Secret")
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

// safetyPoll is when a callback job is read if its callback has not come.
func (c Config) safetyPoll(seconds int) time.Duration {
	d, ok := slowestFinish[seconds]
	if !ok {
		d = time.Duration(seconds) * 10 * time.Second
	}
	return c.scaled(d + c.Callback.SafetyGrace)
}

// Provider is the video API as the worker uses it (seedance.Client).
type Provider interface {
	Create(ctx context.Context, req seedance.CreateRequest) (string, error)
	Status(ctx context.Context, taskID string) (seedance.Task, error)
}

// Fetcher stores result files (fetch.Fetcher).
type Fetcher interface {
	Get(ctx context.Context, url, relPath string, want fetch.File) (fetch.File, error)
}

// Limiter holds the provider's limits across processes (ratelimit.Limiter).
type Limiter interface {
	WaitSubmit(ctx context.Context, holder string, maxWait time.Duration) (ratelimit.Result, error)
	WaitRequest(ctx context.Context, holder string, maxWait time.Duration) (ratelimit.Result, error)
	Release(ctx context.Context, holder string) error
	Cooldown(ctx context.Context, d time.Duration) error
	Pause(ctx context.Context, reason string) error
	InFlight(ctx context.Context) (int, error)
	Started(ctx context.Context, age, recent time.Duration) (old, new int, err error)
	Register(ctx context.Context) error
	Config() ratelimit.Config
}

// Errors of Health.
var (
	// ErrNotStarted: Start has not (yet) started the servers.
	ErrNotStarted = errors.New("worker: not started")
	// ErrStopping: Shutdown has begun.
	ErrStopping = errors.New("worker: shutting down")
)

// Worker serves the submit, poll and download queues.
type Worker struct {
	cfg      Config
	rdb      redis.UniversalClient
	store    *batch.Store
	limiter  Limiter   // the first account's: pauses of every account
	accounts *accounts // a batch's account: its provider and limiter
	fetcher  Fetcher
	queue    *queue.Client
	insp     *asynq.Inspector
	submit   *asynq.Server
	poll     *asynq.Server
	download *asynq.Server
	metrics  Metrics
	log      *slog.Logger
	hosts    *hostcheck.Checker // the callback receiver's Host check
	epoch    epochGuard         // the Redis epoch this process has seen
	// stopping is done once Shutdown begins: handlers waiting in place for
	// a limit hand their tasks back at once instead of holding up the stop.
	stopping context.Context
	stop     context.CancelFunc
	// started is set once Start has started every server.
	started atomic.Bool
}

// New returns a Worker that keeps its records in store and its queues in
// rdb, and stores result files with fetcher. It makes store redact what it
// writes with cfg.Redactor.
func New(rdb redis.UniversalClient, store *batch.Store, lim Limiter, prov Provider, fetcher Fetcher, cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if fetcher == nil {
		return nil, errors.New("worker: a Fetcher is required")
	}
	store.SetRedactor(cfg.Redactor.String)
	hosts, err := cfg.Callback.hostChecker(cfg.Logger)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		cfg: cfg, rdb: rdb, store: store, limiter: lim, fetcher: fetcher,
		metrics: cfg.Metrics, log: cfg.Logger, hosts: hosts,
		queue: queue.New(rdb, cfg.Queues),
		insp:  asynq.NewInspectorFromRedisClient(rdb),
	}
	w.stopping, w.stop = context.WithCancel(context.Background())
	w.accounts = &accounts{byName: map[string]*account{}, byBatch: map[string]*account{}}
	add := func(name string, a Account) error {
		if a.Limiter == nil || w.accounts.byName[name] != nil {
			return fmt.Errorf("worker: account %q: needs a limiter and a name of its own", name)
		}
		w.accounts.byName[name] = &account{name: name, limiter: a.Limiter, provider: measuredProvider{a.Provider, cfg.Metrics},
			plans: newPlanner(rdb, cfg.Prefix, cfg, a.Limiter)}
		return nil
	}
	if err := add(cfg.Account, Account{Provider: prov, Limiter: lim}); err != nil {
		return nil, err
	}
	w.accounts.first = w.accounts.byName[cfg.Account]
	for name, a := range cfg.Accounts {
		if err := add(name, a); err != nil {
			return nil, err
		}
	}
	// Each account may keep its share of the submit handlers (all of them
	// when it is the only one) waiting in place for its slots.
	share := (cfg.SubmitConcurrency + len(w.accounts.byName) - 1) / len(w.accounts.byName)
	for _, a := range w.accounts.byName {
		a.submitting = make(chan struct{}, share)
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
	w.download = server(cfg.Queues.Download, cfg.DownloadConcurrency)
	return w, nil
}

// load reads a task's payload and its job. A payload that cannot be read
// or a job that does not exist ends the task without retries.
func (w *Worker) load(ctx context.Context, t *asynq.Task) (tasks.JobPayload, batch.Job, error) {
	p, err := tasks.ParseJobPayload(t.Payload())
	if err != nil {
		return p, batch.Job{}, permanent(err)
	}
	job, err := w.store.Job(ctx, p.Batch, p.Row)
	if errors.Is(err, batch.ErrNotFound) {
		return p, job, permanent(err)
	}
	return p, job, err
}

// Start checks that the account's limits stored in Redis are this
// worker's (storing them if none are), then starts the servers.
func (w *Worker) Start(ctx context.Context) error {
	for _, a := range w.accounts.byName {
		if err := a.limiter.Register(ctx); err != nil {
			return fmt.Errorf("start: account %s: %w", a.name, err)
		}
	}
	sm := asynq.NewServeMux()
	sm.Use(w.redactErrors)
	sm.HandleFunc(tasks.TypeSubmit, w.handleSubmit)
	if err := w.submit.Start(sm); err != nil {
		return fmt.Errorf("start submit server: %w", err)
	}
	pm := asynq.NewServeMux()
	pm.Use(w.redactErrors)
	pm.HandleFunc(tasks.TypePoll, w.handlePoll)
	pm.HandleFunc(tasks.TypeCallback, w.handleCallback)
	if err := w.poll.Start(pm); err != nil {
		w.submit.Shutdown()
		return fmt.Errorf("start poll server: %w", err)
	}
	dm := asynq.NewServeMux()
	dm.Use(w.redactErrors)
	dm.HandleFunc(tasks.TypeDownload, w.handleDownload)
	if err := w.download.Start(dm); err != nil {
		w.submit.Shutdown()
		w.poll.Shutdown()
		return fmt.Errorf("start download server: %w", err)
	}
	w.started.Store(true)
	return nil
}

// Health returns nil while the worker's servers run and Redis answers a
// PING within ctx; otherwise ErrNotStarted, ErrStopping, or an error that
// says Redis does not answer. Its errors hold no secret, so a health
// endpoint can show them.
func (w *Worker) Health(ctx context.Context) error {
	switch {
	case w.stopping.Err() != nil:
		return ErrStopping
	case !w.started.Load():
		return ErrNotStarted
	}
	if err := w.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis does not answer: %w", w.cfg.Redactor.Error(err))
	}
	return nil
}

// redactErrors masks secrets in a handler's error, which asynq stores as
// the task's last error and asynqmon shows; asynq still sees what the error
// is (a NotYet, SkipRetry) through it.
func (w *Worker) redactErrors(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		return w.cfg.Redactor.Error(next.ProcessTask(ctx, t))
	})
}

// Shutdown stops taking tasks and waits up to the shutdown timeout for the
// running ones; those still running are handed back to the queue.
func (w *Worker) Shutdown() {
	w.stop()
	w.submit.Stop()
	w.poll.Stop()
	w.download.Stop()
	w.submit.Shutdown()
	w.poll.Shutdown()
	w.download.Shutdown()
	w.queue.Close()
	w.insp.Close()
}

// Pause stops submitting in every process: the limiter refuses submits and
// the submit queue is paused, so status shows why. Polls go on.
func (w *Worker) Pause(ctx context.Context, reason string) error {
	return queue.PauseSubmitting(ctx, w.limiter, w.insp, w.cfg.Queues, reason)
}

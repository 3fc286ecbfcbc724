// Package scheduler runs seedbatch's housekeeping on cron schedules with
// asynq's PeriodicTaskManager. Its entries come from a function (the
// command reads them from the config file), asked again every sync
// interval, so editing the file changes the schedule without a restart.
// Each entry enqueues a maintain:<kind> task on the maintenance queue,
// which the scheduler process serves itself by calling its Runner (package
// housekeeping).
//
// asynq's scheduler has no leader election: run one scheduler per Redis.
// The housekeeping tasks are idempotent, so a second one only repeats
// harmless work.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// SyncIntervalDefault is how often the entries are asked again.
const SyncIntervalDefault = 10 * time.Second

// TypePrefix starts the asynq type of a housekeeping task.
const TypePrefix = "maintain:"

// taskTimeout bounds one housekeeping run; asynq retries a failed one
// taskRetries times.
const (
	taskTimeout = 30 * time.Minute
	taskRetries = 2
)

// Entry runs one kind of housekeeping on a cron schedule.
type Entry struct {
	// Cron is a 5-field cron spec or "@every 1m".
	Cron string
	// Kind is the housekeeping to run (one of Options.Kinds).
	Kind string
}

// Runner does one kind of housekeeping (housekeeping.Runner).
type Runner interface {
	Do(ctx context.Context, kind string) error
}

// Options configure a Scheduler.
type Options struct {
	// Entries returns the entries; it is asked again every SyncInterval. An
	// error keeps the entries asynq has.
	Entries func() ([]Entry, error)
	// Kinds are the kinds of housekeeping the scheduler serves.
	Kinds []string
	// Queue is the maintenance queue.
	Queue string
	// SyncInterval is how often Entries is asked again.
	SyncInterval time.Duration
	// Logger receives the logs.
	Logger *slog.Logger
}

// Scheduler registers the entries and runs their tasks.
type Scheduler struct {
	mgr    *asynq.PeriodicTaskManager
	server *asynq.Server
	runner Runner
	kinds  []string
}

// New returns a Scheduler that enqueues on rdb and runs tasks with runner.
func New(rdb redis.UniversalClient, runner Runner, opts Options) (*Scheduler, error) {
	if opts.Queue == "" || opts.Entries == nil {
		return nil, fmt.Errorf("scheduler: Queue and Entries are required")
	}
	mgr, err := asynq.NewPeriodicTaskManager(asynq.PeriodicTaskManagerOpts{
		RedisUniversalClient:       rdb,
		PeriodicTaskConfigProvider: provider{entries: opts.Entries, queue: opts.Queue},
		SyncInterval:               opts.SyncInterval,
		SchedulerOpts: &asynq.SchedulerOpts{LogLevel: asynq.WarnLevel,
			// Entries show in the inspector (and asynqmon) at each heartbeat.
			HeartbeatInterval: min(opts.SyncInterval, 10*time.Second)},
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{opts.Queue: 1}, LogLevel: asynq.WarnLevel,
		DelayedTaskCheckInterval: time.Second,
	})
	return &Scheduler{mgr: mgr, server: srv, runner: runner, kinds: opts.Kinds}, nil
}

// Start registers the entries and starts serving their tasks.
func (s *Scheduler) Start() error {
	mux := asynq.NewServeMux()
	for _, kind := range s.kinds {
		mux.HandleFunc(TypePrefix+kind, func(ctx context.Context, _ *asynq.Task) error {
			return s.runner.Do(ctx, kind)
		})
	}
	if err := s.server.Start(mux); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	if err := s.mgr.Start(); err != nil {
		s.server.Shutdown()
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// Shutdown stops registering and running tasks.
func (s *Scheduler) Shutdown() {
	s.mgr.Shutdown()
	s.server.Shutdown()
}

// provider is an asynq.PeriodicTaskConfigProvider over Options.Entries.
type provider struct {
	entries func() ([]Entry, error)
	queue   string
}

// GetConfigs implements asynq.PeriodicTaskConfigProvider.
func (p provider) GetConfigs() ([]*asynq.PeriodicTaskConfig, error) {
	entries, err := p.entries()
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	return Configs(entries, p.queue), nil
}

// Configs turns entries into asynq periodic task configs.
func Configs(entries []Entry, queue string) []*asynq.PeriodicTaskConfig {
	out := make([]*asynq.PeriodicTaskConfig, 0, len(entries))
	for _, e := range entries {
		out = append(out, &asynq.PeriodicTaskConfig{
			Cronspec: e.Cron,
			Task:     asynq.NewTask(TypePrefix+e.Kind, nil),
			Opts:     []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(taskRetries), asynq.Timeout(taskTimeout)},
		})
	}
	return out
}

// Package scheduler runs seedbatch's housekeeping on cron schedules, and on
// demand from the command line.
//
// Entries come from the schedule section of the config file, read again
// every sync interval by asynq's PeriodicTaskManager, so editing the file
// changes the schedule without a restart. Each entry enqueues a maintain:*
// task on the maintenance queue, which the scheduler process serves itself:
//
//	import     enqueue every CSV file in the inbox that has not been
//	           modified for import_settle as a batch, then move it to done/
//	           (with a report of its bad rows) or failed/ (with the reason)
//	reconcile  re-arm jobs that wait for a task that no longer exists (a
//	           submit, poll or download lost to a crash or a restore), and
//	           end jobs submitted longer ago than give_up_after
//	expiry     download again the videos of done jobs whose files are
//	           missing, and retry failed downloads, while the provider's
//	           result URLs are still valid (24 hours)
//
// asynq's scheduler has no leader election: run one scheduler per Redis.
// The tasks are idempotent, so a second one only repeats harmless work.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/config"
)

// Task kinds of schedule entries.
const (
	TaskImport    = "import"
	TaskReconcile = "reconcile"
	TaskExpiry    = "expiry"
)

// TypePrefix starts the asynq type of a housekeeping task.
const TypePrefix = "maintain:"

// FileProvider is an asynq.PeriodicTaskConfigProvider that reads the
// entries from a config file each time it is asked.
type FileProvider struct {
	// Path is the YAML config file.
	Path string
	// Queue is where the tasks go.
	Queue string
	// Env looks up environment variables (os.LookupEnv when nil).
	Env func(string) (string, bool)
}

// GetConfigs implements asynq.PeriodicTaskConfigProvider. A file that no
// longer loads is an error: asynq then keeps the entries it has.
func (p FileProvider) GetConfigs() ([]*asynq.PeriodicTaskConfig, error) {
	cfg, err := config.Load(config.Options{File: p.Path, Env: p.Env})
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	return Configs(cfg.Schedule.Entries, p.Queue), nil
}

// Configs turns entries into asynq periodic task configs.
func Configs(entries []config.ScheduleEntry, queue string) []*asynq.PeriodicTaskConfig {
	out := make([]*asynq.PeriodicTaskConfig, 0, len(entries))
	for _, e := range entries {
		out = append(out, &asynq.PeriodicTaskConfig{
			Cronspec: e.Cron,
			Task:     asynq.NewTask(TypePrefix+e.Task, nil),
			Opts:     []asynq.Option{asynq.Queue(queue), asynq.MaxRetry(2), asynq.Timeout(30 * time.Minute)},
		})
	}
	return out
}

// Scheduler registers the entries of a config file and runs their tasks.
type Scheduler struct {
	mgr    *asynq.PeriodicTaskManager
	server *asynq.Server
	m      *Maintainer
}

// Options configure a Scheduler.
type Options struct {
	// File is the config file holding the entries.
	File string
	// Env looks up environment variables for reading File.
	Env func(string) (string, bool)
	// Queue is the maintenance queue.
	Queue string
	// SyncInterval is how often File is read again.
	SyncInterval time.Duration
	// Logger receives the logs.
	Logger *slog.Logger
}

// New returns a Scheduler that enqueues on rdb and runs tasks with m.
func New(rdb redis.UniversalClient, m *Maintainer, opts Options) (*Scheduler, error) {
	if opts.Queue == "" {
		return nil, fmt.Errorf("scheduler: Queue is required")
	}
	mgr, err := asynq.NewPeriodicTaskManager(asynq.PeriodicTaskManagerOpts{
		RedisUniversalClient:       rdb,
		PeriodicTaskConfigProvider: FileProvider{Path: opts.File, Queue: opts.Queue, Env: opts.Env},
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
	return &Scheduler{mgr: mgr, server: srv, m: m}, nil
}

// Start registers the entries and starts serving their tasks.
func (s *Scheduler) Start() error {
	mux := asynq.NewServeMux()
	for _, kind := range Kinds() {
		mux.HandleFunc(TypePrefix+kind, func(ctx context.Context, _ *asynq.Task) error {
			_, err := s.m.Run(ctx, kind)
			return err
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

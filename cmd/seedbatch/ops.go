package main

import (
	"context"
	"flag"
	"fmt"
	"net"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/dashboard"
	"github.com/seedbatch/seedbatch/housekeeping"
	"github.com/seedbatch/seedbatch/internal/serve"
	"github.com/seedbatch/seedbatch/metrics"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/scheduler"
	"github.com/seedbatch/seedbatch/tasks"
)

// housekeeper builds the housekeeping runner on a stack; close it when done.
func (m *Main) housekeeper(ctx context.Context, s *stack) (*housekeeping.Runner, func(), error) {
	objs, err := openObjects(ctx, s.cfg)
	if err != nil {
		return nil, nil, err
	}
	q := queue.New(s.rdb, s.queues)
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	pf := planFlags{budget: -1}
	bopts, _ := pf.settings(s.cfg) // validated config: cannot fail
	mt := &housekeeping.Runner{
		Redis: s.rdb, Store: s.store, Queue: q, Insp: insp, Queues: s.queues, Release: s.limiter.Release,
		Inbox: s.cfg.Schedule.Inbox, OutDir: s.cfg.OutDir,
		PlanOptions: batch.PlanOptions{Reader: tasks.ReaderOptions{Defaults: s.cfg.Defaults}},
		Settings:    bopts, ImportSettle: s.cfg.Schedule.ImportSettle, GiveUpAfter: s.cfg.Schedule.GiveUpAfter,
		Log: s.log,
	}
	if objs != nil {
		mt.Objects = objs
	}
	return mt, func() { q.Close(); insp.Close(); closeObjects(objs) }, nil
}

// scheduleEntries reads the schedule's entries from the config file each
// time it is called, so that editing the file changes the schedule.
func (m *Main) scheduleEntries(file string) func() ([]scheduler.Entry, error) {
	return func() ([]scheduler.Entry, error) {
		cfg, err := config.Load(config.Options{File: file, Env: m.Getenv})
		if err != nil {
			return nil, err
		}
		out := make([]scheduler.Entry, len(cfg.Schedule.Entries))
		for i, e := range cfg.Schedule.Entries {
			out[i] = scheduler.Entry{Cron: e.Cron, Kind: e.Task}
		}
		return out, nil
	}
}

// maintenanceQueue is the queue of housekeeping tasks.
func maintenanceQueue(cfg config.Config) string { return cfg.Redis.Prefix + "-maintenance" }

func (m *Main) schedulerCmd(ctx context.Context, args []string) error {
	_, s, err := m.connect(ctx, "scheduler", "", args, nil, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.cfg
	mt, done, err := m.housekeeper(ctx, s)
	if err != nil {
		return err
	}
	defer done()
	file := s.configFile
	if file == "" {
		file = config.FileDefault
	}
	sch, err := scheduler.New(s.rdb, mt, scheduler.Options{Entries: m.scheduleEntries(file), Kinds: housekeeping.Kinds(),
		Queue: maintenanceQueue(cfg), SyncInterval: cfg.Schedule.SyncInterval, Logger: s.log})
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if err := sch.Start(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	s.log.Info("scheduler_started", "file", file, "entries", len(cfg.Schedule.Entries), "sync_interval", cfg.Schedule.SyncInterval)
	<-ctx.Done()
	s.log.Info("scheduler_stopping")
	sch.Shutdown()
	return nil
}

// housekeepingCmd runs one housekeeping task once: import, reconcile or expiry.
func housekeepingCmd(kind string) func(*Main, context.Context, []string) error {
	return func(m *Main, ctx context.Context, args []string) error {
		usage := ""
		if kind == housekeeping.KindImport {
			usage = "[INBOX]"
		}
		_, s, err := m.connect(ctx, kind, usage, args, nil, func(fs *flag.FlagSet, cfg *config.Config) error {
			switch {
			case kind == housekeeping.KindImport && fs.NArg() == 1:
				cfg.Schedule.Inbox = fs.Arg(0)
			case fs.NArg() > 0:
				fs.Usage()
				return fail(exitUsage, "%s: unexpected arguments %v", kind, fs.Args())
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer s.Close()
		cfg := s.cfg
		mt, done, err := m.housekeeper(ctx, s)
		if err != nil {
			return err
		}
		defer done()
		r, err := mt.Run(ctx, kind)
		if err != nil {
			return fail(exitUnreachable, "%v", err)
		}
		fmt.Fprintln(m.Stdout, r)
		if len(r.Failed) > 0 {
			return fail(exitRows, "%d files refused (see their reports in %s/failed)", len(r.Failed), cfg.Schedule.Inbox)
		}
		return nil
	}
}

func (m *Main) dashboardCmd(ctx context.Context, args []string) error {
	_, s, err := m.connect(ctx, "dashboard", "", args, nil, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.cfg
	redisOpt, err := cfg.Redis.Conn().ConnOpt()
	if err != nil {
		return fail(exitUsage, "redis: %v", err)
	}
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	defer insp.Close()
	rec := metrics.NewRecorder(s.rdb, cfg.Redis.Prefix)
	dcfg := dashboard.Config{
		Redis: s.rdb, RedisOpt: redisOpt, Store: s.store, Limiter: s.limiter, Queues: s.queues,
		Listen: cfg.Dashboard.Listen, AllowedHosts: cfg.Dashboard.AllowedHosts,
		OutDir: cfg.OutDir, Token: cfg.Dashboard.Token.Reveal(), User: cfg.Dashboard.User,
		Password: cfg.Dashboard.Password.Reveal(), AllowWrites: cfg.Dashboard.AllowWrites,
		Metrics: metricsHandler(s, rec, insp),
		Logger:  s.log,
	}
	for _, a := range s.accounts {
		dcfg.Accounts = append(dcfg.Accounts, dashboard.Account{Name: a.Name, Limiter: a.limiter})
	}
	if sim := s.simulated(); sim != nil {
		dcfg.Simulated = sim.store
	}
	objs, err := openObjects(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeObjects(objs)
	if objs != nil {
		dcfg.Objects, dcfg.OutDir = objs, ""
	}
	if err := dashboard.CheckListen(cfg.Dashboard.Listen, dcfg); err != nil {
		return fail(exitUsage, "dashboard.listen: %v", err)
	}
	d, err := dashboard.New(dcfg)
	if err != nil {
		return fail(exitUsage, "dashboard: %v", err)
	}
	defer d.Close()
	ln, err := net.Listen("tcp", cfg.Dashboard.Listen)
	if err != nil {
		return fail(exitUsage, "dashboard.listen: %v", err)
	}
	fmt.Fprintf(m.Stderr, "dashboard on http://%s (asynq under /monitor/, metrics at /metrics)\n", ln.Addr())
	if err := serve.Run(ctx, ln, d.Handler()); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}

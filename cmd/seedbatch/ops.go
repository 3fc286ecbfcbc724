package main

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/scheduler"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// maintainer builds the housekeeping worker on a stack; close it when done.
func (m *Main) maintainer(s *stack) (*scheduler.Maintainer, func()) {
	q := worker.NewQueue(s.rdb, s.queues)
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	pf := planFlags{budget: -1}
	bopts, _ := pf.batchOptions(s.cfg) // validated config: cannot fail
	mt := &scheduler.Maintainer{
		Store: s.store, Queue: q, Insp: insp, Queues: s.queues, Release: s.limiter.Release,
		Inbox: s.cfg.Schedule.Inbox, OutDir: s.cfg.OutDir,
		PlanOptions:  batch.PlanOptions{Reader: tasks.ReaderOptions{Defaults: s.cfg.Defaults}},
		BatchOptions: bopts, GiveUpAfter: s.cfg.Schedule.GiveUpAfter, Log: s.log,
	}
	return mt, func() { q.Close(); insp.Close() }
}

// maintenanceQueue is the queue of housekeeping tasks.
func maintenanceQueue(cfg config.Config) string { return cfg.Redis.Prefix + "-maintenance" }

func (m *Main) schedulerCmd(ctx context.Context, args []string) error {
	var c common
	fs := m.flags("scheduler", "", &c)
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	s, err := m.open(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer s.Close()
	mt, done := m.maintainer(s)
	defer done()
	file := c.configFile
	if file == "" {
		file = config.FileDefault
	}
	sch, err := scheduler.New(s.rdb, mt, scheduler.Options{File: file, Env: m.Getenv, Queue: maintenanceQueue(cfg),
		SyncInterval: cfg.Schedule.SyncInterval, Logger: s.log})
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
		var c common
		usage := ""
		if kind == scheduler.TaskImport {
			usage = "[INBOX]"
		}
		fs := m.flags(kind, usage, &c)
		cfg, err := m.parse(fs, &c, args)
		if err != nil {
			return err
		}
		if kind == scheduler.TaskImport && fs.NArg() == 1 {
			cfg.Schedule.Inbox = fs.Arg(0)
		}
		s, err := m.open(ctx, cfg, false)
		if err != nil {
			return err
		}
		defer s.Close()
		mt, done := m.maintainer(s)
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

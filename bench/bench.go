package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Run runs the scenarios of cfg one after the other, then the enqueue
// line, and returns the report. A scenario that fails has its error in its
// row and the others still run; the error returned is only about setting
// the run up (an invalid Config, no Redis, no temporary directory). Every
// process the run started has ended when Run returns, and the keys of every
// namespace it used are deleted.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	dir, err := os.MkdirTemp("", "seedbatch-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	rdb, err := openRedis(ctx, cfg.RedisURL, dir)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer rdb.Close()
	if rdb.kind == redisEmbedded {
		log.Warn("embedded_redis", "note", "no redis-server on PATH and no --redis: the figures are not comparable with a real Redis's")
	}
	r := &run{cfg: cfg, redis: rdb, dir: dir, csv: filepath.Join(dir, "jobs.csv")}
	if cfg.runsSeedbatch() {
		if err := writeCSV(r.csv, cfg.Jobs, cfg.Duration); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	rep := &Report{Machine: thisMachine(), Redis: rdb.describe(), Date: time.Now(), Config: cfg, LoadStart: loadAverage()}
	defer func() { rep.LoadEnd = loadAverage() }()
	for _, sc := range cfg.scenarios() {
		log.Info("scenario_started", "scenario", sc.name, "workers", sc.workers, "jobs", cfg.Jobs)
		var row Row
		if sc.name == ScenarioBaseline {
			row = r.baseline(ctx)
		} else {
			row = r.seedbatch(ctx, sc)
		}
		logRow(log, row)
		rep.Rows = append(rep.Rows, row)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	if cfg.EnqueueRows > 0 {
		log.Info("enqueue_started", "rows", cfg.EnqueueRows)
		rep.Enqueue = r.enqueueLine(ctx)
		if e := rep.Enqueue; e.Err != nil {
			log.Error("enqueue_failed", "err", e.Err)
		} else {
			log.Info("enqueue_done", "seedbatch_rows_per_second", e.SeedbatchRate(), "asynq_tasks_per_second", e.AsynqRate())
		}
	}
	return rep, ctx.Err()
}

// logRow logs the end of a scenario.
func logRow(log *slog.Logger, row Row) {
	if row.Err != nil {
		log.Error("scenario_failed", "scenario", row.Scenario, "workers", row.Workers, "err", row.Err)
		return
	}
	log.Info("scenario_done", "scenario", row.Scenario, "workers", row.Workers,
		"busy_utilization", row.Stats.BusyUtilization, "wall", row.Wall.Round(time.Millisecond))
}

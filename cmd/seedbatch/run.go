package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

func (m *Main) runCmd(ctx context.Context, args []string) error {
	var c common
	var pf planFlags
	fs := m.flags("run", "FILE.csv", &c)
	pf.register(fs)
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fail(exitUsage, "run: want one CSV file")
	}
	if c.logLevel == "" && cfg.Log.Level == config.Default().Log.Level {
		// The progress display is run's interface; logs only say what went wrong.
		cfg.Log.Level = "warn"
	}
	path := fs.Arg(0)
	plan, err := m.plan(cfg, path, pf)
	if err != nil {
		return err
	}
	if pf.dryRun {
		printPlan(m.Stdout, plan, cfg.Prices)
		fmt.Fprintln(m.Stdout, "dry run: nothing submitted")
		return nil
	}

	if cfg.Provider.APIKey == "" {
		sim, err := startSim(cfg)
		if err != nil {
			return err
		}
		defer sim.Close()
		cfg.Provider.BaseURL = sim.url
		cfg.Provider.APIKey = config.Secret(sim.key)
		cfg.Worker.TimeScale = cfg.Sim.TimeScale
		if cfg.Redis.URL != "" {
			// Never let simulated work mix with real jobs on a shared Redis.
			cfg.Redis.Prefix += "-sim"
		}
		fmt.Fprintf(m.Stderr, "No SEEDANCE_API_KEY set: using the built-in provider simulator at %s "+
			"(%gx compressed time, placeholder videos, nothing billed).\n", sim.url, cfg.Sim.TimeScale)
	}
	s, err := m.open(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.mini != nil {
		fmt.Fprintln(m.Stderr, "No REDIS_URL set: using an embedded Redis for this run.")
	}
	prov, err := provider(cfg)
	if err != nil {
		return err
	}
	q := worker.NewQueue(s.rdb, s.queues, cfg.Worker.MaxRetry)
	defer q.Close()
	res, err := s.store.Enqueue(ctx, q, plan, pf.options(cfg))
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	fmt.Fprintf(m.Stderr, "batch %s: %d rows (%d new, %d already known, %d rejected)\n",
		plan.ID, plan.Rows, res.Added, res.Existing, res.Rejected)

	w, err := worker.New(s.rdb, s.store, s.limiter, prov, workerConfig(s))
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	counts, waitErr := m.wait(ctx, s, plan.ID, plan.Rows)
	w.Shutdown()

	out := filepath.Join(cfg.OutDir, tasks.SafeFileName(plan.ID))
	if err := writeResults(ctx, s.store, plan.ID, out); err != nil {
		return fail(exitRows, "%v", err)
	}
	m.summary(plan.ID, counts, filepath.Join(out, "results.csv"))
	if waitErr != nil {
		return waitErr
	}
	if counts.Terminal() < plan.Rows {
		return fail(exitRows, "stopped with %d of %d rows unfinished", plan.Rows-counts.Terminal(), plan.Rows)
	}
	if counts[tasks.StateSucceeded] < plan.Rows {
		return &exitError{code: exitRows, err: fmt.Errorf("%d of %d rows did not succeed (see the results file)", plan.Rows-counts[tasks.StateSucceeded], plan.Rows)}
	}
	return nil
}

// wait follows a batch until every row is terminal, the context ends or
// submitting is paused, showing progress on stderr.
func (m *Main) wait(ctx context.Context, s *stack, id string, rows int) (batch.Counts, error) {
	prog := newProgress(m.Stderr, rows)
	defer prog.finish()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var counts batch.Counts
	for {
		_, c, err := s.store.Batch(context.WithoutCancel(ctx), id)
		if err != nil {
			return counts, fail(exitUnreachable, "%v", err)
		}
		counts = c
		prog.update(counts)
		if counts.Terminal() >= rows {
			return counts, nil
		}
		if reason, paused, err := s.limiter.Paused(ctx); err == nil && paused {
			return counts, fail(exitUnreachable, "submitting paused: %s", reason)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(m.Stderr, "\nstopping: waiting for running requests to finish")
			return counts, fail(exitRows, "interrupted")
		case <-tick.C:
		}
	}
}

// progress shows a bar on a terminal and a line every few seconds otherwise.
type progress struct {
	w    io.Writer
	bar  *progressbar.ProgressBar
	rows int
	last time.Time
}

func newProgress(w io.Writer, rows int) *progress {
	p := &progress{w: w, rows: rows}
	if isTerminal(w) {
		p.bar = progressbar.NewOptions(rows,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("rows"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) update(c batch.Counts) {
	done := c.Terminal()
	if p.bar != nil {
		_ = p.bar.Set(done)
		p.bar.Describe(fmt.Sprintf("%d in flight", c[tasks.StateSubmitted]+c[tasks.StateSubmitting]))
		return
	}
	if time.Since(p.last) < 5*time.Second && done < p.rows {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "progress: %d/%d rows finished, %d in flight, %d queued\n",
		done, p.rows, c[tasks.StateSubmitted]+c[tasks.StateSubmitting], c[tasks.StateQueued])
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// summary prints the final counts.
func (m *Main) summary(id string, c batch.Counts, results string) {
	fmt.Fprintf(m.Stdout, "batch %s:", id)
	for _, st := range tasks.States {
		if c[st] > 0 {
			fmt.Fprintf(m.Stdout, " %s %d", st, c[st])
		}
	}
	fmt.Fprintf(m.Stdout, "\nresults: %s\n", results)
}

// writeResults writes dir/results.csv atomically.
func writeResults(ctx context.Context, store *batch.Store, id, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	f, err := os.CreateTemp(dir, ".results-*.csv")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	defer os.Remove(f.Name())
	if err := store.WriteResults(context.WithoutCancel(ctx), f, id, batch.FormatCSV); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return os.Rename(f.Name(), filepath.Join(dir, "results.csv"))
}

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/rundir"
	"github.com/seedbatch/seedbatch/tasks"
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
	if err := oneArg(fs, "CSV file"); err != nil {
		return err
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

	out := filepath.Join(cfg.OutDir, tasks.SafeFileName(plan.ID))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fail(exitUsage, "out_dir: %v", err)
	}
	rd, err := rundir.Open(out)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer rd.Close()
	journal := batch.JournalHeader{Batch: plan.ID, Hash: plan.Hash, Store: batch.StoreEmbedded}
	if cfg.Redis.URL == "" {
		if err := checkEarlierRuns(cfg.OutDir, rd, journal, pf.allowDuplicates); err != nil {
			return err
		}
	}
	simulated := cfg.Provider.APIKey == ""
	if p := cfg.Redis.SimulatedPrefix(); simulated && cfg.Redis.URL != "" && p != "" {
		// Never let simulated work mix with real jobs on a shared Redis.
		cfg.Redis.Prefix = p
	}
	store := storeOf(cfg, simulated)
	earlier, err := checkStore(rd, plan.ID, store, pf.allowDuplicates)
	if err != nil {
		return err
	}
	if simulated {
		sim, err := startSim(cfg, rd)
		if err != nil {
			return err
		}
		defer sim.Close()
		cfg.Provider.BaseURL = sim.url
		cfg.Provider.APIKey = config.Secret(sim.key)
		cfg.Worker.TimeScale = cfg.Sim.TimeScale
		fmt.Fprintf(m.Stderr, "No SEEDANCE_API_KEY set: using the built-in provider simulator at %s "+
			"(%gx compressed time, placeholder videos, nothing billed).\n", sim.url, cfg.Sim.TimeScale)
	}
	callback := cmp.Or(pf.requestType, cfg.Callback.RequestType) == queue.RequestCallback
	var ln net.Listener
	if callback {
		if ln, err = callbackReceiver(&cfg, rd, simulated); err != nil {
			return err
		}
		defer ln.Close()
	}
	s, err := m.open(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.mini != nil {
		fmt.Fprintln(m.Stderr, "No REDIS_URL set: using an embedded Redis for this run.")
	}
	s.warnDurability(ctx)
	prov, err := provider(cfg)
	if err != nil {
		return err
	}
	q := queue.New(s.rdb, s.queues)
	defer q.Close()
	res, err := m.enqueuePlan(ctx, s, q, plan, pf)
	if err != nil {
		return err
	}
	if earlier != nil {
		dir, err := rd.Retire(time.Now(), resultsFile)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		fmt.Fprintf(m.Stderr, "batch %s ran before on %s; this run starts it over on %s", plan.ID, earlier, store)
		if dir != "" {
			fmt.Fprintf(m.Stderr, " (the earlier run's journal and results are kept in %s, and never read again)", dir)
		}
		fmt.Fprintln(m.Stderr)
	}
	if b, err := json.Marshal(store); err == nil {
		if err := rd.SetStore(string(b)); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	// On a shared Redis the batch's rows are already known when it resumes;
	// on the embedded one, its journal says where it stood.
	resumed := res.Existing > 0
	if s.mini != nil {
		// The embedded Redis dies with this process: keep a journal on disk.
		if _, err := os.Stat(rd.Path(rundir.Journal)); err == nil {
			resumed = true
		}
		closeJournal, err := m.journal(ctx, s, rd.Path(rundir.Journal), journal)
		if err != nil {
			return err
		}
		defer closeJournal()
	}
	if err := m.announce(ctx, s, plan, res, resumed); err != nil {
		return err
	}
	if simulated && cfg.Redis.URL != "" {
		fmt.Fprintf(m.Stderr, "batch %s is simulated: it is kept apart from real batches, under the key prefix %s of the Redis at %s; "+
			"seedbatch status lists it under \"simulated batches\", and seedbatch results %s and the dashboard find it\n",
			plan.ID, cfg.Redis.Prefix, config.RedactURL(cfg.Redis.URL), plan.ID)
	}

	r, err := startWorker(ctx, s, prov, ln, simulated)
	if err != nil {
		return err
	}
	counts, waitErr := m.wait(ctx, s, plan.ID, plan.Rows)
	if waitErr == nil && callback && counts[tasks.StateAmbiguous] > 0 {
		// The provider retries a callback for about 3.5 minutes: one may
		// still come and bind an ambiguous row.
		hold := time.Duration(float64(4*time.Minute) / cfg.Worker.TimeScale)
		fmt.Fprintf(m.Stderr, "%d rows ambiguous: waiting %s for late callbacks that would resolve them\n",
			counts[tasks.StateAmbiguous], hold.Round(time.Second))
		counts, waitErr = m.waitAmbiguous(ctx, s, plan.ID, plan.Rows, hold)
	}
	r.Stop()

	rep, err := writeResults(ctx, s.store, plan.ID, out, cfg.OutDir)
	if err != nil {
		return fail(exitRows, "%v", err)
	}
	m.summary(plan.ID, counts, filepath.Join(out, resultsFile))
	if rep.Mismatched > 0 {
		fmt.Fprintf(m.Stderr, "%d of %d rows' files on disk are not the ones recorded (missing, or written over by another run): "+
			"their file_check column in the results says which\n", rep.Mismatched, rep.Checked)
	}
	if waitErr != nil {
		if s.mini != nil || cfg.Redis.URL != "" {
			fmt.Fprintf(m.Stderr, "%d of %d rows finished; run the same command again to resume the batch\n",
				counts.Terminal(), plan.Rows)
		}
		return waitErr
	}
	if n := counts[tasks.StateBudget]; n > 0 {
		return fail(exitRows, "%d rows are held by the budget: raise it with seedbatch retry %s --state budget --budget SECONDS", n, plan.ID)
	}
	if counts[tasks.StateDone] < plan.Rows {
		return fail(exitRows, "%d of %d rows did not succeed (see the results file)", plan.Rows-counts[tasks.StateDone], plan.Rows)
	}
	if rep.Mismatched > 0 {
		return fail(exitRows, "")
	}
	return nil
}

// announce says what the run starts from: a new batch's rows, or where a
// resumed batch stands after its journal was replayed.
func (m *Main) announce(ctx context.Context, s *stack, plan *batch.Plan, res batch.EnqueueResult, resumed bool) error {
	if !resumed {
		fmt.Fprintf(m.Stderr, "batch %s: %d rows (%d to submit, %d rejected)\n", plan.ID, plan.Rows, res.Queued, res.Rejected)
		return nil
	}
	_, c, err := s.store.Batch(ctx, plan.ID)
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	fmt.Fprintf(m.Stderr, "batch %s: %d rows (resumed: %d finished, %d in flight, %d still to submit",
		plan.ID, plan.Rows, c.Terminal(), c[tasks.StateSubmitting]+c[tasks.StateSubmitted], c[tasks.StateQueued])
	if n := c[tasks.StateSucceeded]; n > 0 {
		fmt.Fprintf(m.Stderr, ", %d downloading", n)
	}
	if n := c[tasks.StateBudget]; n > 0 {
		fmt.Fprintf(m.Stderr, ", %d held by the budget", n)
	}
	fmt.Fprintln(m.Stderr, ")")
	return nil
}

// waitAmbiguous follows a settled batch for up to hold while ambiguous rows
// may still be bound by a callback, until every row is settled again with
// none ambiguous.
func (m *Main) waitAmbiguous(ctx context.Context, s *stack, id string, rows int, hold time.Duration) (batch.Counts, error) {
	deadline := time.Now().Add(hold)
	for {
		_, c, err := s.store.Batch(context.WithoutCancel(ctx), id)
		if err != nil {
			return c, fail(exitUnreachable, "%v", err)
		}
		if (c.Settled() >= rows && c[tasks.StateAmbiguous] == 0) || time.Now().After(deadline) {
			if c.Settled() >= rows {
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return c, fail(exitRows, "interrupted")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkEarlierRuns refuses, for a run on an embedded Redis, a file whose
// content ran before under another batch id (unless allowDuplicates), and a
// journal in the batch's directory that another file or run wrote.
func checkEarlierRuns(outDir string, rd *rundir.Dir, want batch.JournalHeader, allowDuplicates bool) error {
	for _, path := range rundir.Journals(outDir) {
		h, err := batch.ReadJournalHeader(path)
		if err == nil && h.Hash == want.Hash && h.Batch != want.Batch && !allowDuplicates {
			return fail(exitUsage, "%v", &batch.SameFileError{Earlier: h.Batch})
		}
	}
	path := rd.Path(rundir.Journal)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	got, err := batch.ReadJournalHeader(path)
	if err != nil {
		return fail(exitUsage, "resume: %v", err)
	}
	if got != want {
		return fail(exitUsage, "resume: %v", &batch.JournalMismatchError{Path: path, Got: got, Want: want})
	}
	return nil
}

// callbackReceiver listens for the run's callbacks. A simulated run
// receives them on a loopback port of its own; a resumed run keeps the
// secret and the port of the run before it, so that callbacks for the tasks
// that run created still reach a receiver that accepts them.
func callbackReceiver(cfg *config.Config, rd *rundir.Dir, simulated bool) (net.Listener, error) {
	if cfg.Callback.Secret == "" {
		secret, err := rd.Secret(rundir.CallbackSecret, func() string { return randomHex(32) })
		if err != nil {
			return nil, fail(exitUsage, "callback secret: %v", err)
		}
		cfg.Callback.Secret = config.Secret(secret)
	}
	if cfg.Callback.PublicURL == "" && !simulated {
		return nil, fail(exitUsage, "callback mode needs callback.public_url: the address the provider can reach this receiver at")
	}
	addr := cfg.Callback.Listen
	if simulated && cfg.Callback.PublicURL == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := rd.Listen(rundir.CallbackAddr, addr)
	if err != nil {
		return nil, fail(exitUsage, "callback.listen: %v", err)
	}
	if cfg.Callback.PublicURL == "" {
		cfg.Callback.PublicURL = "http://" + ln.Addr().String()
		cfg.Callback.Listen = ln.Addr().String()
	}
	return ln, nil
}

// journal replays the journal at path, if there is one, restores the
// leases of the tasks it shows running, and keeps every later change in it.
// It returns a function that closes it.
func (m *Main) journal(ctx context.Context, s *stack, path string, h batch.JournalHeader) (func(), error) {
	if f, err := os.Open(path); err == nil {
		n, err := s.store.Replay(ctx, f, h)
		f.Close()
		if err != nil {
			return nil, fail(exitUsage, "resume from %s: %v", path, err)
		}
		// Tasks created before the stop may still run at the provider:
		// they hold slots until they end.
		holders, err := s.store.Running(ctx, h.Batch)
		if err == nil {
			err = s.limiter.Hold(ctx, holders...)
		}
		if err != nil {
			return nil, fail(exitUnreachable, "resume: %v", err)
		}
		fmt.Fprintf(m.Stderr, "resuming: %d changes replayed from %s, %d tasks may still be running\n", n, path, len(holders))
	}
	j, err := batch.OpenJournal(path, h)
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	s.store.SetJournal(j)
	return func() { _ = j.Close() }, nil
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
		if counts.Settled() >= rows {
			return counts, nil
		}
		if reason, paused, err := s.limiter.Paused(ctx); err == nil && paused {
			return counts, fail(exitUnreachable, "submitting paused: %s\nfix the cause, then run this command again (on a shared Redis, run seedbatch resume first)", reason)
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

// resultsFile is the name of a run's results in its batch's directory.
const resultsFile = "results.csv"

// writeResults writes dir/results.csv atomically, checking each recorded
// file under outDir (its size and sha256) as it goes.
func writeResults(ctx context.Context, store *batch.Store, id, dir, outDir string) (batch.ResultsReport, error) {
	var rep batch.ResultsReport
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return rep, fmt.Errorf("results: %w", err)
	}
	f, err := os.CreateTemp(dir, ".results-*.csv")
	if err != nil {
		return rep, fmt.Errorf("results: %w", err)
	}
	defer os.Remove(f.Name())
	rep, err = store.WriteResults(context.WithoutCancel(ctx), f, id, batch.ResultsOptions{Format: batch.FormatCSV, FilesDir: outDir})
	if err != nil {
		f.Close()
		return rep, err
	}
	if err := f.Close(); err != nil {
		return rep, fmt.Errorf("results: %w", err)
	}
	return rep, os.Rename(f.Name(), filepath.Join(dir, resultsFile))
}

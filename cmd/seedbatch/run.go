package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/rundir"
	"github.com/seedbatch/seedbatch/tasks"
)

// runCmd enqueues a batch and works it in this process until every row has
// ended, one step after another.
func (m *Main) runCmd(ctx context.Context, args []string) error {
	r, err := m.parseRun(args)
	if err != nil || r == nil {
		return err // a dry run ends with its plan
	}
	defer r.close()
	for _, step := range []func(context.Context) error{r.lock, r.provider, r.connect, r.enqueue} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	counts, waitErr := r.work(ctx)
	return r.finish(ctx, counts, waitErr)
}

// runner is one run of a batch: what each of runCmd's steps needs from the
// ones before it.
type runner struct {
	m         *Main
	cfg       config.Config
	pf        planFlags
	plan      *batch.Plan
	out       string              // the batch's output directory
	rd        *rundir.Dir         // its private state, locked
	journal   batch.JournalHeader // of an embedded-Redis run
	simulated bool                // no API key: the built-in simulator
	store     runStore            // where the batch's state is kept
	earlier   *runStore           // another store an earlier run used
	callback  bool                // the batch reports by callback
	ln        net.Listener        // the callback receiver's, if any
	s         *stack              // Redis, records, limiter
	q         *queue.Client       // enqueues the batch's tasks
	res       batch.EnqueueResult // what the enqueue did
	closers   []func()            // run last first by close
}

// parseRun reads run's flags, the configuration and the file; it returns a
// nil runner after a dry run.
func (m *Main) parseRun(args []string) (*runner, error) {
	var c common
	r := &runner{m: m}
	fs := m.flags("run", "FILE.csv", &c)
	r.pf.register(fs)
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return nil, err
	}
	if err := oneArg(fs, "CSV file"); err != nil {
		return nil, err
	}
	if c.logLevel == "" && cfg.Log.Level == config.Default().Log.Level {
		// The progress display is run's interface; logs only say what went wrong.
		cfg.Log.Level = "warn"
	}
	if r.plan, err = m.plan(cfg, fs.Arg(0), r.pf); err != nil {
		return nil, err
	}
	if r.pf.dryRun {
		printPlan(m.Stdout, r.plan, cfg.Prices)
		fmt.Fprintln(m.Stdout, "dry run: nothing submitted")
		return nil, nil
	}
	r.cfg = cfg
	r.simulated = cfg.Provider.APIKey == "" && len(cfg.Accounts) == 0
	if p := cfg.Redis.SimulatedPrefix(); r.simulated && cfg.Redis.Configured() && p != "" {
		// Never let simulated work mix with real jobs on a shared Redis.
		r.cfg.Redis.Prefix = p
	}
	r.callback = cmp.Or(r.pf.requestType, cfg.Callback.RequestType) == queue.RequestCallback
	r.journal = batch.JournalHeader{Batch: r.plan.ID, Hash: r.plan.Hash, Store: batch.StoreEmbedded}
	return r, nil
}

func (r *runner) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// lock takes the batch's output directory for this run, and refuses a run
// that would create rows an earlier run created (another file under this
// batch id, a renamed copy, a run on another store that had a key).
func (r *runner) lock(context.Context) error {
	r.out = filepath.Join(r.cfg.RunDir(), tasks.SafeFileName(r.plan.ID))
	if err := os.MkdirAll(r.out, 0o755); err != nil {
		return fail(exitUsage, "%s: %v", runDirField(r.cfg), err)
	}
	rd, err := rundir.Open(r.out)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	r.rd = rd
	r.closers = append(r.closers, func() { rd.Close() })
	if !r.cfg.Redis.Configured() {
		if err := checkEarlierRuns(r.cfg.RunDir(), rd, r.journal, r.pf.allowDuplicates); err != nil {
			return err
		}
	}
	r.store = storeOf(r.cfg, r.simulated)
	r.earlier, err = checkStore(rd, r.plan.ID, r.store, r.pf.allowDuplicates)
	return err
}

// provider starts the built-in simulator when there is no API key, and the
// callback receiver when the batch reports by callback.
func (r *runner) provider(context.Context) error {
	if r.simulated {
		sim, err := startSim(r.cfg, r.rd)
		if err != nil {
			return err
		}
		r.closers = append(r.closers, sim.Close)
		r.cfg.Provider.BaseURL = sim.url
		r.cfg.Provider.APIKey = config.Secret(sim.key)
		r.cfg.Worker.TimeScale = r.cfg.Sim.TimeScale
		fmt.Fprintf(r.m.Stderr, "No SEEDANCE_API_KEY set: using the built-in provider simulator at %s "+
			"(%gx compressed time, placeholder videos, nothing billed).\n", sim.url, r.cfg.Sim.TimeScale)
	}
	if !r.callback {
		return nil
	}
	ln, err := callbackReceiver(&r.cfg, r.rd, r.simulated)
	if err != nil {
		return err
	}
	r.ln = ln
	r.closers = append(r.closers, func() { ln.Close() })
	return nil
}

// connect opens Redis: the configured one, or an embedded one.
func (r *runner) connect(ctx context.Context) error {
	s, err := r.m.open(ctx, r.cfg, true)
	if err != nil {
		return err
	}
	r.s = s
	r.closers = append(r.closers, s.Close)
	if s.mini != nil {
		fmt.Fprintln(r.m.Stderr, "No REDIS_URL set: using an embedded Redis for this run.")
	}
	s.warnDurability(ctx)
	r.q = queue.New(s.rdb, s.queues)
	r.closers = append(r.closers, func() { r.q.Close() })
	return nil
}

// enqueue records the batch and its rows, retires an earlier run's state
// kept on another store, replays the journal of an embedded-Redis run, and
// says where the batch stands.
func (r *runner) enqueue(ctx context.Context) error {
	if r.s.mini == nil && r.earlier == nil {
		if err := r.checkLost(ctx); err != nil {
			return err
		}
	}
	res, err := r.m.enqueuePlan(ctx, r.s, r.q, r.plan, r.pf)
	if err != nil {
		return err
	}
	r.res = res
	if r.earlier != nil {
		dir, err := r.rd.Retire(time.Now(), resultsFile)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		fmt.Fprintf(r.m.Stderr, "batch %s ran before on %s; this run starts it over on %s", r.plan.ID, r.earlier, r.store)
		if dir != "" {
			fmt.Fprintf(r.m.Stderr, " (the earlier run's journal and results are kept in %s, and never read again)", dir)
		}
		fmt.Fprintln(r.m.Stderr)
	}
	if b, err := json.Marshal(r.store); err == nil {
		if err := r.rd.SetStore(string(b)); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	// On a shared Redis the batch's rows are already known when it resumes;
	// on the embedded one, its journal says where it stood.
	resumed := res.Existing > 0
	if r.s.mini != nil {
		// The embedded Redis dies with this process: keep a journal on disk.
		if _, err := os.Stat(r.rd.Path(rundir.Journal)); err == nil {
			resumed = true
		}
		closeJournal, err := r.m.journal(ctx, r.s, r.rd.Path(rundir.Journal), r.journal)
		if err != nil {
			return err
		}
		r.closers = append(r.closers, closeJournal)
	} else {
		// Redis keeps the state; the journal keeps a copy of this run's
		// creates, for seedbatch recover should Redis lose it.
		j, err := batch.OpenJournal(r.rd.Path(rundir.Journal), r.redisJournal())
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		j.Arm(r.s.crash)
		r.s.store.SetJournal(j)
		r.closers = append(r.closers, func() { _ = j.Close() })
	}
	if err := r.m.announce(ctx, r.s, r.plan, res, resumed); err != nil {
		return err
	}
	if r.simulated && r.cfg.Redis.Configured() {
		fmt.Fprintf(r.m.Stderr, "batch %s is simulated: it is kept apart from real batches, under the key prefix %s of the Redis at %s; "+
			"seedbatch status lists it under \"simulated batches\", and seedbatch results %s and the dashboard find it\n",
			r.plan.ID, r.cfg.Redis.Prefix, r.cfg.Redis.Describe(), r.plan.ID)
	}
	return nil
}

// redisJournal is the header of the journal of a run on a Redis server.
func (r *runner) redisJournal() batch.JournalHeader {
	return batch.JournalHeader{Batch: r.plan.ID, Hash: r.plan.Hash, Store: batch.StoreRedis}
}

// checkLost refuses to start over a batch that the Redis server no longer
// knows but whose journal shows an earlier run: the server lost its data,
// and enqueueing the batch anew would create, and bill, every row again.
func (r *runner) checkLost(ctx context.Context) error {
	path := r.rd.Path(rundir.Journal)
	if n, err := batch.JournalRecords(path); err != nil || n == 0 {
		return nil
	}
	switch _, err := r.s.store.Meta(ctx, r.plan.ID); {
	case err == nil:
		return nil
	case !errors.Is(err, batch.ErrNotFound):
		return fail(exitUnreachable, "%v", err)
	}
	return fail(exitUsage, "batch %s ran before on this Redis (its journal is %s), but Redis no longer knows it: "+
		"it lost its data, or the batch was purged. Running it again would create, and bill, every row again.\n"+
		"To rebuild it from its journal without creating any row twice: seedbatch recover %s (with the same flags); "+
		"to start it over on purpose, delete the journal", r.plan.ID, path, r.plan.Path)
}

// work runs a worker in this process until every row of the batch has
// settled (and, in callback mode, late callbacks had their chance to bind
// ambiguous rows), the context ends or submitting is paused.
func (r *runner) work(ctx context.Context) (batch.Counts, error) {
	prov, err := provider(r.cfg)
	if err != nil {
		return nil, err
	}
	w, err := startWorker(ctx, r.s, prov, r.ln, r.simulated)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	counts, waitErr := r.m.wait(ctx, r.s, r.plan.ID, r.plan.Rows)
	if waitErr == nil && r.callback && counts[tasks.StateAmbiguous] > 0 {
		// The provider retries a callback for about 3.5 minutes: one may
		// still come and bind an ambiguous row.
		hold := time.Duration(float64(4*time.Minute) / r.cfg.Worker.TimeScale)
		fmt.Fprintf(r.m.Stderr, "%d rows ambiguous: waiting %s for late callbacks that would resolve them\n",
			counts[tasks.StateAmbiguous], hold.Round(time.Second))
		counts, waitErr = r.m.waitAmbiguous(ctx, r.s, r.plan.ID, r.plan.Rows, hold)
	}
	return counts, waitErr
}

// finish writes the results, prints the summary and returns run's exit.
func (r *runner) finish(ctx context.Context, counts batch.Counts, waitErr error) error {
	m, plan := r.m, r.plan
	rep, where, err := writeResults(ctx, r.s.store, plan.ID, r.out, r.cfg)
	if err != nil {
		return fail(exitRows, "%v", err)
	}
	m.summary(plan.ID, counts, where)
	if rep.Mismatched > 0 {
		in := "on disk"
		if objstore.IsURL(r.cfg.OutDir) {
			in = "in the bucket"
		}
		fmt.Fprintf(m.Stderr, "%d of %d rows' files %s are not the ones recorded (missing, or written over by another run): "+
			"their file_check column in the results says which\n", rep.Mismatched, rep.Checked, in)
	}
	switch {
	case waitErr != nil:
		fmt.Fprintf(m.Stderr, "%d of %d rows finished; run the same command again to resume the batch\n",
			counts.Terminal(), plan.Rows)
		return waitErr
	case counts[tasks.StateBudget] > 0:
		return fail(exitRows, "%d rows are held by the budget: raise it with seedbatch retry %s --state budget --budget SECONDS",
			counts[tasks.StateBudget], plan.ID)
	case counts[tasks.StateDone] < plan.Rows:
		return fail(exitRows, "%d of %d rows did not succeed (see the results file)", plan.Rows-counts[tasks.StateDone], plan.Rows)
	case rep.Mismatched > 0:
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
	_, c, err := s.store.Get(ctx, plan.ID)
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
	c, err := s.store.Wait(ctx, id, waitEvery, func(c batch.Counts) (bool, error) {
		return c.Settled() >= rows && (c[tasks.StateAmbiguous] == 0 || time.Now().After(deadline)), nil
	})
	return c, waitError(err)
}

// runDirField names the setting of run's local directory.
func runDirField(cfg config.Config) string {
	if cfg.RunDir() == cfg.OutDir {
		return "out_dir"
	}
	return "state_dir"
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
	if errors.Is(err, io.EOF) {
		return nil // a journal cut short before its header was whole
	}
	if err != nil {
		return fail(exitUsage, "resume: %v", err)
	}
	if got.Store != want.Store {
		return nil // a run on another store: checkStore decides
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
	j.Arm(s.crash)
	s.store.SetJournal(j)
	return func() { _ = j.Close() }, nil
}

// wait follows a batch until every row is terminal, the context ends or
// submitting is paused, showing progress on stderr.
func (m *Main) wait(ctx context.Context, s *stack, id string, rows int) (batch.Counts, error) {
	prog := newProgress(m.Stderr, rows)
	defer prog.finish()
	counts, err := s.store.Wait(ctx, id, waitEvery, func(c batch.Counts) (bool, error) {
		prog.update(c)
		if c.Settled() >= rows {
			return true, nil
		}
		if reason, paused, err := batchLimiter(ctx, s, id).Paused(ctx); err == nil && paused {
			return true, fail(exitUnreachable, "submitting paused: %s\nfix the cause, then run this command again (on a shared Redis, run seedbatch resume first)", reason)
		}
		return false, nil
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(m.Stderr, "\nstopping: waiting for running requests to finish")
	}
	return counts, waitError(err)
}

// waitEvery is how often run reads where its batch stands.
const waitEvery = 200 * time.Millisecond

// waitError turns the end of a wait into run's exit: interrupted, Redis
// unreachable, or the error the watch returned.
func waitError(err error) error {
	var ee *exitError
	switch {
	case err == nil, errors.As(err, &ee):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fail(exitRows, "interrupted")
	default:
		return fail(exitUnreachable, "%v", err)
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

// batchLimiter returns the limiter of batch id's account, whose pause stops
// its submits (the first account's when the batch's is not configured).
func batchLimiter(ctx context.Context, s *stack, id string) *ratelimit.Limiter {
	if len(s.accounts) > 1 {
		if meta, err := s.store.Meta(ctx, id); err == nil {
			if a := s.account(meta.Account); a != nil {
				return a.limiter
			}
		}
	}
	return s.limiter
}

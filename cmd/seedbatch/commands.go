package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/internal/serve"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/tasks"
)

func (m *Main) enqueueCmd(ctx context.Context, args []string) error {
	var c common
	var pf planFlags
	fs := m.flags("enqueue", "FILE.csv", &c)
	pf.register(fs)
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	if err := oneArg(fs, "CSV file"); err != nil {
		return err
	}
	plan, err := m.plan(cfg, fs.Arg(0), pf)
	if err != nil {
		return err
	}
	if pf.dryRun {
		printPlan(m.Stdout, plan, cfg.Prices)
		fmt.Fprintln(m.Stdout, "dry run: nothing enqueued")
		return nil
	}
	s, err := m.open(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer s.Close()
	s.warnDurability(ctx)
	q := queue.New(s.rdb, s.queues)
	defer q.Close()
	res, err := m.enqueuePlan(ctx, s, q, plan, pf)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "%d rows: %d new jobs, %d already enqueued, %d rejected\n", plan.Rows, res.Added, res.Existing, res.Rejected)
	fmt.Fprintln(m.Stdout, plan.ID)
	return nil
}

func (m *Main) workerCmd(ctx context.Context, args []string) error {
	_, s, err := m.connect(ctx, "worker", "", args, listenFlag, func(_ *flag.FlagSet, cfg *config.Config) error {
		if cfg.AccountList()[0].APIKey == "" {
			return fail(exitUsage, "worker: no API key: set SEEDANCE_API_KEY (for the simulator, its key and SEEDANCE_BASE_URL)")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.cfg
	prov, err := provider(cfg)
	if err != nil {
		return err
	}
	var ln net.Listener
	if cfg.Callback.Listen != "" && cfg.Callback.Secret != "" && cfg.Callback.PublicURL != "" {
		if ln, err = net.Listen("tcp", cfg.Callback.Listen); err != nil {
			return fail(exitUsage, "callback.listen: %v", err)
		}
	}
	probeLn, err := listenProbe(cfg)
	if err != nil {
		closeListener(ln)
		return err
	}
	r, err := startWorker(ctx, s, prov, ln, false)
	if err != nil {
		closeListener(probeLn)
		return err
	}
	stopProbe, err := serveProbe(s, r, probeLn)
	if err != nil {
		r.Stop()
		return err
	}
	defer stopProbe()
	if cfg.Worker.TimeScale != 1 {
		s.log.Warn("compressed_time", "time_scale", cfg.Worker.TimeScale,
			"note", "provider timings and request limits are divided and multiplied by it: only for a simulator")
	}
	s.warnDurability(ctx)
	s.log.Info("worker_started", "queues", s.queues.All(), "provider", cfg.Provider.BaseURL,
		"callback_receiver", r.callbackURL)
	<-ctx.Done()
	s.log.Info("worker_stopping", "shutdown_timeout", cfg.Worker.ShutdownTimeout)
	r.Stop()
	return nil
}

// statusColumns are the columns of status's table, each adding up rows in
// some states; --wide gives every state its own.
var statusColumns = []struct {
	head   string
	states []tasks.State
}{
	{"WAITING", []tasks.State{tasks.StateQueued, tasks.StateBudget}},
	{"RUNNING", []tasks.State{tasks.StateSubmitting, tasks.StateSubmitted, tasks.StateSucceeded}},
	{"DONE", []tasks.State{tasks.StateDone}},
	{"NO VIDEO", []tasks.State{tasks.StateFailed, tasks.StateAmbiguous, tasks.StateRejected, tasks.StateCanceled}},
}

// statusDetails are the states whose rows status names under the table,
// since its columns add them up with others.
var statusDetails = []struct {
	state  tasks.State
	format string
}{
	{tasks.StateBudget, "%d held by the budget"},
	{tasks.StateSucceeded, "%d still downloading"},
	{tasks.StateFailed, "%d failed"},
	{tasks.StateAmbiguous, "%d ambiguous"},
	{tasks.StateRejected, "%d rejected"},
	{tasks.StateCanceled, "%d canceled"},
}

func (m *Main) statusCmd(ctx context.Context, args []string) error {
	var wide *bool
	fs, s, err := m.connect(ctx, "status", "[BATCH]", args, func(fs *flag.FlagSet) {
		wide = fs.Bool("wide", false, "give every state a column of its own, and the rows finished in any way one more")
	}, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	cfg := s.cfg
	sim := s.simulated()
	ids, simIDs, err := s.statusBatches(ctx, sim, fs.Args())
	if err != nil {
		return err
	}
	m.printAccount(ctx, s)
	switch {
	case len(ids) == 0 && len(simIDs) == 0:
		fmt.Fprintln(m.Stdout, "no batches")
		return nil
	case len(ids) > 0:
		if err := m.statusSection(ctx, s, &namespace{prefix: cfg.Redis.Prefix, store: s.store, queues: s.queues}, ids, *wide, false); err != nil {
			return err
		}
	case fs.NArg() == 0:
		fmt.Fprintln(m.Stdout, "no batches but simulated ones")
	}
	if len(simIDs) > 0 {
		if len(ids) > 0 || fs.NArg() == 0 {
			fmt.Fprintln(m.Stdout)
		}
		fmt.Fprintf(m.Stdout, "simulated batches (run without an API key: placeholder videos, nothing billed; key prefix %s):\n\n", sim.prefix)
		if err := m.statusSection(ctx, s, sim, simIDs, *wide, true); err != nil {
			return err
		}
	}
	if b, err := s.store.Budget(ctx, ""); err == nil && b.TotalLimit > 0 {
		fmt.Fprintf(m.Stdout, "all batches: %d video seconds created%s\n", b.TotalSpent, capOf(b.TotalLimit))
	}
	return nil
}

// statusBatches returns the batches status shows, real and simulated: the
// ones named, or every one when none is.
func (s *stack) statusBatches(ctx context.Context, sim *namespace, named []string) (ids, simIDs []string, err error) {
	if len(named) == 0 {
		if ids, err = s.store.Batches(ctx); err != nil {
			return nil, nil, fail(exitUnreachable, "%v", err)
		}
		if sim != nil {
			if simIDs, err = sim.store.Batches(ctx); err != nil {
				return nil, nil, fail(exitUnreachable, "%v", err)
			}
		}
		return ids, simIDs, nil
	}
	for _, id := range named {
		store, simulated, err := s.find(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if simulated {
			simIDs = append(simIDs, id)
		} else if store != nil {
			ids = append(ids, id)
		}
	}
	return ids, simIDs, nil
}

// printAccount says, for each account, whether its submitting is paused,
// and how many of its tasks are in flight. With one account, as before
// there were several, it names none.
func (m *Main) printAccount(ctx context.Context, s *stack) {
	several := len(s.accounts) > 1
	for _, a := range s.accounts {
		if reason, paused, err := a.limiter.Paused(ctx); err == nil && paused {
			if several {
				fmt.Fprintf(m.Stdout, "SUBMITTING PAUSED for account %s: %s\n  fix the cause, then run: seedbatch resume --account %s\n\n", a.Name, reason, a.Name)
			} else {
				fmt.Fprintf(m.Stdout, "SUBMITTING PAUSED: %s\n  fix the cause, then run: seedbatch resume\n\n", reason)
			}
		}
	}
	for _, a := range s.accounts {
		n, err := a.limiter.InFlight(ctx)
		if err != nil {
			continue
		}
		limit := a.Limits.MaxInFlight
		if stored, ok, err := a.limiter.Stored(ctx); err == nil && ok {
			limit = stored.MaxInFlight
		}
		if several {
			fmt.Fprintf(m.Stdout, "account %s: provider tasks in flight: %d of %d\n", a.Name, n, limit)
		} else {
			fmt.Fprintf(m.Stdout, "provider tasks in flight: %d of %d\n", n, limit)
		}
	}
	fmt.Fprintln(m.Stdout)
}

// batchStatus is one batch as status shows it.
type batchStatus struct {
	meta     batch.Meta
	counts   batch.Counts
	unserved bool // rows wait for a queue that no worker serves
}

// statusSection prints the table of the batches ids of namespace ns, and
// under it each batch's video seconds and the rows its columns add up with
// others. simulated says they are batches of runs with the built-in
// simulator, which only their run works.
func (m *Main) statusSection(ctx context.Context, s *stack, ns *namespace, ids []string, wide, simulated bool) error {
	batches := make([]batchStatus, 0, len(ids))
	for _, id := range ids {
		meta, counts, err := ns.store.Get(ctx, id)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		batches = append(batches, batchStatus{meta: meta, counts: counts})
	}
	m.markUnserved(s, ns, batches, simulated)
	if err := m.statusTable(ctx, ns.store, batches, wide, simulated); err != nil {
		return err
	}
	// Video seconds reserved (each create reserves its duration), caps,
	// and the rows the table's columns add up with others.
	for _, b := range batches {
		budget, err := ns.store.Budget(ctx, b.meta.ID)
		if err != nil {
			return fail(exitUnreachable, "%v", err)
		}
		account := ""
		if len(s.accounts) > 1 || b.meta.Account != batch.AccountDefault {
			account = fmt.Sprintf("; account %s: %d%s", b.meta.Account, budget.AccountSpent, capOf(budget.AccountLimit))
		}
		fmt.Fprintf(m.Stdout, "%s: %d video seconds created%s%s\n", b.meta.ID, budget.BatchSpent, capOf(budget.BatchLimit), account)
		var details []string
		for _, d := range statusDetails {
			if n := b.counts[d.state]; n > 0 {
				details = append(details, fmt.Sprintf(d.format, n))
			}
		}
		if len(details) > 0 {
			fmt.Fprintf(m.Stdout, "  %s\n", strings.Join(details, ", "))
		}
	}
	return nil
}

// markUnserved marks the batches with rows waiting for a queue that no
// worker serves, which never move, and says which worker to start, so that
// status shows that rather than a rate of 0 and no ETA.
func (m *Main) markUnserved(s *stack, ns *namespace, batches []batchStatus, simulated bool) {
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	defer insp.Close()
	servers, err := insp.Servers()
	if err != nil {
		return
	}
	var missing []string
	for i, b := range batches {
		for _, st := range tasks.States {
			q, moves := ns.queues.Mover(st)
			if !moves || b.counts[st] == 0 || queue.Served(servers, q) {
				continue
			}
			batches[i].unserved = true
			if !slices.Contains(missing, q) {
				missing = append(missing, q)
			}
		}
	}
	switch {
	case len(missing) == 0:
		return
	case simulated:
		fmt.Fprintf(m.Stdout, "a simulated batch's run stopped before it finished: run the same seedbatch run command again to finish it\n")
	default:
		for _, q := range missing {
			fmt.Fprintf(m.Stdout, "no worker is serving the %s queue: start seedbatch worker\n", strings.TrimPrefix(q, ns.prefix+"-"))
		}
	}
	fmt.Fprintln(m.Stdout)
}

// statusTable prints one line per batch: its rows by state (every state
// when wide), its rate and its ETA.
func (m *Main) statusTable(ctx context.Context, store *batch.Store, batches []batchStatus, wide, simulated bool) error {
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	header := []string{"BATCH", "ROWS"}
	if wide {
		header = append(header, "FINISHED")
		for _, st := range tasks.States {
			header = append(header, strings.ToUpper(string(st)))
		}
	} else {
		for _, c := range statusColumns {
			header = append(header, c.head)
		}
	}
	fmt.Fprintln(tw, strings.Join(append(header, "RATE/MIN", "ETA"), "\t"))
	for _, b := range batches {
		row := []string{b.meta.ID, fmt.Sprint(b.meta.Rows)}
		if b.meta.Canceled {
			row[0] += " (canceled)"
		}
		if wide {
			row = append(row, fmt.Sprint(b.counts.Terminal()))
			for _, st := range tasks.States {
				row = append(row, fmt.Sprint(b.counts[st]))
			}
		} else {
			for _, c := range statusColumns {
				row = append(row, fmt.Sprint(b.counts.Sum(c.states...)))
			}
		}
		pace, err := store.Pace(ctx, b.meta, b.counts, time.Now())
		if err != nil {
			return fail(exitUnreachable, "%v", err)
		}
		rate, eta := pace.Rate(), pace.ETA()
		if b.unserved {
			if rate == "0" {
				rate = "-"
			}
			eta = "no worker"
			if simulated {
				eta = "stopped"
			}
		}
		fmt.Fprintln(tw, strings.Join(append(row, rate, eta), "\t"))
	}
	return tw.Flush()
}

func capOf(limit int) string {
	if limit == 0 {
		return " (no budget)"
	}
	return fmt.Sprintf(" of a budget of %d", limit)
}

func (m *Main) resultsCmd(ctx context.Context, args []string) error {
	var format, out *string
	fs, s, err := m.connect(ctx, "results", "BATCH", args, func(fs *flag.FlagSet) {
		format = fs.String("format", batch.FormatCSV, "write `csv|jsonl`")
		out = fs.String("out", "", "write to `FILE` instead of standard output")
	}, func(fs *flag.FlagSet, _ *config.Config) error {
		if *format != batch.FormatCSV && *format != batch.FormatJSONL {
			return fail(exitUsage, "--format %q: want csv or jsonl", *format)
		}
		return oneArg(fs, "batch id")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	id := fs.Arg(0)
	store, simulated, err := s.find(ctx, id)
	if err != nil {
		return err
	}
	if simulated {
		fmt.Fprintf(m.Stderr, "batch %s is simulated (run without an API key: placeholder videos, nothing billed); "+
			"its records are kept apart, under the key prefix %s\n", id, s.simulated().prefix)
	}
	var w io.Writer = m.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return outputProblem(*out, err)
		}
		defer f.Close()
		w = f
	}
	opts := batch.ResultsOptions{Format: *format}
	objs, err := openObjects(ctx, s.cfg)
	if err != nil {
		return err
	}
	defer closeObjects(objs)
	if objs != nil {
		opts.Objects = objs // links to the objects; nothing is checked
	}
	if _, err := store.WriteResults(ctx, w, id, opts); err != nil {
		if errors.Is(err, batch.ErrNotFound) {
			return s.notFound(id)
		}
		return fail(exitUnreachable, "%v", err)
	}
	return nil
}

func (m *Main) resumeCmd(ctx context.Context, args []string) error {
	var only *string
	_, s, err := m.connect(ctx, "resume", "", args, func(fs *flag.FlagSet) {
		only = fs.String("account", "", "resume only the account `NAME` (default: every account, and the submit queue)")
	}, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if *only != "" {
		a := s.account(*only)
		if a == nil {
			_, err := s.cfg.AccountNamed(*only)
			return fail(exitUsage, "--account: %v", err)
		}
		if err := a.limiter.Resume(ctx); err != nil {
			return fail(exitUnreachable, "%v", err)
		}
		fmt.Fprintf(m.Stdout, "submitting resumed for account %s\n", a.Name)
		return nil
	}
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	if err := queue.ResumeSubmitting(ctx, s.limiter, insp, s.queues); err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	for _, a := range s.accounts[1:] {
		if err := a.limiter.Resume(ctx); err != nil {
			return fail(exitUnreachable, "%v", err)
		}
	}
	fmt.Fprintln(m.Stdout, "submitting resumed")
	return nil
}

func (m *Main) limitsCmd(ctx context.Context, args []string) error {
	var replace *bool
	_, s, err := m.connect(ctx, "limits", "", args, func(fs *flag.FlagSet) {
		replace = fs.Bool("replace", false, "store this configuration's limits as the account's; every worker uses them from its next request")
	}, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, a := range s.accounts {
		if len(s.accounts) > 1 {
			fmt.Fprintf(m.Stdout, "account %s:\n", a.Name)
		}
		if err := m.printLimits(ctx, a.limiter, *replace); err != nil {
			return err
		}
	}
	return nil
}

// printLimits prints an account's limits as stored in Redis, after storing
// this configuration's when replace is set.
func (m *Main) printLimits(ctx context.Context, lim *ratelimit.Limiter, replace bool) error {
	if replace {
		if err := lim.Replace(ctx); err != nil {
			return fail(exitUnreachable, "%v", err)
		}
	}
	stored, ok, err := lim.Stored(ctx)
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	if !ok {
		fmt.Fprintln(m.Stdout, "no limits stored for this API key yet: the first worker stores its own")
		return nil
	}
	inFlight, _ := lim.InFlight(ctx)
	readded, _ := lim.Readded(ctx)
	fmt.Fprintf(m.Stdout, "requests per minute: %d (burst %d, %d of it kept for creates)\n", stored.RequestsPerMinute, stored.Burst, stored.CreateReserve)
	fmt.Fprintf(m.Stdout, "tasks in flight: %d of %d (leases live %s without a status read; %d expired leases put back by a read)\n",
		inFlight, stored.MaxInFlight, stored.LeaseTTL, readded)
	return nil
}

func (m *Main) configCmd(ctx context.Context, args []string) error {
	var c common
	fs := m.flags("config", "", &c)
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	fmt.Fprint(m.Stdout, cfg.Dump())
	return nil
}

func (m *Main) simCmd(ctx context.Context, args []string) error {
	var c common
	fs := m.flags("sim", "", &c)
	def := config.Default().Sim
	c.configFlag(fs, "addr", "sim.listen", fmt.Sprintf("listen on `ADDRESS` (default: sim.listen, %s)", def.Listen))
	c.configFlag(fs, "time-scale", "sim.time_scale", fmt.Sprintf("divide every provider timing by `N` (default: sim.time_scale, %g)", def.TimeScale))
	c.configFlag(fs, "rpm", "sim.requests_per_minute", fmt.Sprintf("answer 429 past `N` requests per simulated minute (default: sim.requests_per_minute, %d)", def.RequestsPerMinute))
	c.configFlag(fs, "burst", "sim.burst", "let `N` requests through at once (default: sim.burst; 0 = one simulated second's worth)")
	c.configFlag(fs, "max-in-flight", "sim.max_in_flight", fmt.Sprintf("answer a create 429 past `N` tasks in flight (default: sim.max_in_flight, %d)", def.MaxInFlight))
	c.configFlag(fs, "fail-rate", "sim.fail_rate", fmt.Sprintf("fail this `FRACTION` of tasks with GENERATION_FAILED (default: sim.fail_rate, %g)", def.FailRate))
	key := fs.String("api-key", "", "accept only this API `KEY` (default: SEEDANCE_API_KEY, else sim-key)")
	var accounts []sim.Account
	fs.Func("account", "accept a further key, an account with limits of its own: `NAME:KEY:MAX_IN_FLIGHT` (repeatable)", func(v string) error {
		a, err := simAccount(v)
		accounts = append(accounts, a)
		return err
	})
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fail(exitUsage, "sim: unexpected arguments %v", fs.Args())
	}
	if *key == "" {
		*key = cfg.Provider.APIKey.Reveal()
	}
	if *key == "" {
		*key = "sim-key"
	}
	sc := cfg.Sim
	sm, err := sim.New(sim.Config{APIKey: *key, TimeScale: sc.TimeScale, RequestsPerMinute: sc.RequestsPerMinute, Burst: sc.Burst,
		MaxInFlight: sc.MaxInFlight, FailRate: sc.FailRate, Seed: time.Now().UnixNano(), Logger: m.logger(cfg), Accounts: accounts})
	if err != nil {
		return fail(exitUsage, "sim: %v", err)
	}
	ln, err := net.Listen("tcp", sc.Listen)
	if err != nil {
		return fail(exitUsage, "sim.listen: %v", err)
	}
	fmt.Fprintf(m.Stderr, "simulator listening on http://%s (time scale %g, %d requests per minute, %d tasks in flight, fail rate %g); stats at /sim/stats\n",
		ln.Addr(), sc.TimeScale, sc.RequestsPerMinute, sc.MaxInFlight, sc.FailRate)
	// Closing the simulator first ends held answers and callback deliveries.
	stop := context.AfterFunc(ctx, sm.Close)
	defer stop()
	if err := serve.Run(ctx, ln, sm); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

func (m *Main) retryCmd(ctx context.Context, args []string) error {
	var state *string
	var budget *int
	var rebill *bool
	fs, s, err := m.connect(ctx, "retry", "BATCH", args, func(fs *flag.FlagSet) {
		state = fs.String("state", "", "resubmit the rows in this state, `ambiguous|failed|budget` (each is created, and billed, again)")
		budget = fs.Int("budget", -1, "first set this batch's budget to `SECONDS` of video; 0 = no cap (default: leave it as it is)")
		rebill = fs.Bool("rebill", false, "also create again failed rows whose task may have been billed "+
			"(a success whose video was not stored, unreadable answers, a task that never ended)")
	}, func(fs *flag.FlagSet, _ *config.Config) error {
		switch tasks.State(*state) {
		case tasks.StateAmbiguous, tasks.StateFailed, tasks.StateBudget:
		case "":
			return fail(exitUsage, "retry: say which rows to create again with --state ambiguous, failed or budget")
		default:
			return fail(exitUsage, "--state %q: want ambiguous, failed or budget (the rows retry creates again)", *state)
		}
		return oneArg(fs, "batch id")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	cfg, from := s.cfg, tasks.State(*state)
	id := fs.Arg(0)
	if _, err := s.store.Meta(ctx, id); errors.Is(err, batch.ErrNotFound) {
		return s.notReal(ctx, id)
	} else if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	if err := s.store.SetBudgets(ctx, id, batch.Settings{BudgetSeconds: *budget, TotalBudgetSeconds: cfg.Budget.TotalSeconds}); err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	q := queue.New(s.rdb, s.queues)
	defer q.Close()
	res, err := s.store.Resubmit(ctx, q, id, batch.ResubmitOptions{From: from, Rebill: *rebill})
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	for i, sk := range res.Skipped {
		if i == maxSkippedShown {
			fmt.Fprintf(m.Stdout, "... and %d more (seedbatch results %s lists them)\n", len(res.Skipped)-i, id)
			break
		}
		fmt.Fprintf(m.Stdout, "skipped %s (line %d, task %s, %s): %s\n", sk.ID, sk.Line, sk.TaskID, sk.FailCode, sk.Reason)
	}
	fmt.Fprintf(m.Stdout, "batch %s: %d %s rows queued again\n", id, res.Queued, from)
	if n := len(res.Skipped); n > 0 {
		fmt.Fprintf(m.Stdout, "batch %s: %d %s rows skipped: their tasks may have been billed; check them with the provider, "+
			"then add --rebill to create (and pay for) them again\n", id, n, from)
	}
	return nil
}

// maxSkippedShown caps the rows retry lists as skipped.
const maxSkippedShown = 100

func (m *Main) cancelCmd(ctx context.Context, args []string) error {
	fs, s, err := m.connect(ctx, "cancel", "BATCH", args, nil, func(fs *flag.FlagSet, _ *config.Config) error {
		return oneArg(fs, "batch id")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	n, err := s.store.Cancel(ctx, fs.Arg(0))
	if errors.Is(err, batch.ErrNotFound) {
		return s.notReal(ctx, fs.Arg(0))
	}
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	fmt.Fprintf(m.Stdout, "batch %s: canceled %d rows not yet submitted; tasks in flight still finish and download\n", fs.Arg(0), n)
	return nil
}

func (m *Main) purgeCmd(ctx context.Context, args []string) error {
	var force *bool
	fs, s, err := m.connect(ctx, "purge", "BATCH", args, func(fs *flag.FlagSet) {
		force = fs.Bool("force", false, "purge a batch with rows still queued, submitting, submitted or succeeded too")
	}, func(fs *flag.FlagSet, _ *config.Config) error {
		return oneArg(fs, "batch id")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	id := fs.Arg(0)
	res, err := s.store.Purge(ctx, id, *force)
	switch {
	case errors.Is(err, batch.ErrNotFound):
		return s.notReal(ctx, id)
	case errors.Is(err, batch.ErrBatchActive):
		return fail(exitUsage, "%v", err)
	case err != nil:
		return fail(exitUnreachable, "%v", err)
	}
	claim := "no file claim"
	if res.FileClaim {
		claim = "the claim of its file's content (the same file may be enqueued again, and billed again)"
	}
	fmt.Fprintf(m.Stdout, "batch %s purged: %d job records, %d provider task index entries, %s, %d budget reservations "+
		"(%d video seconds never sent given back to the total), its budget, counts and meta; %d Redis keys in all\n",
		id, res.Jobs, res.TaskIndex, claim, res.Reservations, res.Refunded, res.Keys)
	if res.InProgress > 0 {
		fmt.Fprintf(m.Stdout, "batch %s: %d rows were still in progress; their queued tasks find no job and end\n", id, res.InProgress)
	}
	return nil
}

// simAccount reads sim --account's NAME:KEY:MAX_IN_FLIGHT; the account's
// request rate is sim.requests_per_minute's default.
func simAccount(v string) (sim.Account, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return sim.Account{}, fmt.Errorf("want NAME:KEY:MAX_IN_FLIGHT")
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n <= 0 {
		return sim.Account{}, fmt.Errorf("MAX_IN_FLIGHT %q: want a positive number", parts[2])
	}
	return sim.Account{Name: parts[0], APIKey: parts[1], MaxInFlight: n}, nil
}

package drill

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/seedbatch/seedbatch/internal/proc"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/sim"
)

// Batch ids of a drill.
const (
	batchMain     = "drill-main"
	batchCallback = "drill-callback"
	batchEmpty    = "drill-empty"
	batchStale    = "drill-stale"
)

// drill is one run.
type drill struct {
	cfg    Config
	ctx    context.Context
	c      *cluster
	mon    *monitor
	faults []Fault
	rep    *Report
}

// Run runs a drill and returns its report. The error says why it could
// not run to the end; the report then holds what was measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep := &Report{Config: cfg, Started: time.Now()}
	dir, err := os.MkdirTemp("", "seedbatch-drill-")
	if err != nil {
		return rep, fmt.Errorf("drill: %w", err)
	}
	defer os.RemoveAll(dir)
	c, err := startCluster(ctx, cfg, dir)
	if err != nil {
		return rep, err
	}
	defer c.Close()
	rep.RedisVersion = redisVersion(ctx, c)
	rep.MaxInFlight = cfg.maxInFlight()
	d := &drill{cfg: cfg, ctx: ctx, c: c, rep: rep}
	err = d.run()
	if err != nil {
		rep.Err = err.Error()
	}
	rep.Faults = d.faults
	rep.Wall = time.Since(rep.Started)
	return rep, err
}

// run is the drill's sequence.
func (d *drill) run() error {
	log, cfg := d.cfg.Logger, d.cfg
	cbRows := cfg.Rows / 5
	if err := d.c.enqueue(batchMain, cfg.Rows, queue.RequestAsync); err != nil {
		return err
	}
	if err := d.c.enqueue(batchCallback, cbRows, queue.RequestCallback); err != nil {
		return err
	}
	log.Info("drill_started", "rows", cfg.Rows+cbRows, "kills", cfg.kills())
	d.mon = newMonitor(d.c, []string{batchMain, batchCallback}, cfg.Rows+cbRows, cfg.kills(), cfg.Seed)
	mctx, stop := context.WithCancel(d.ctx)
	done := make(chan struct{})
	go func() { d.mon.run(mctx); close(done) }()
	defer func() { stop(); <-done }()

	d.waitTerminal(cfg.Rows/20, time.Minute) // a pace to compare recoveries with
	log.Info("drill_phase", "phase", "provider faults")
	d.injectProvider()
	d.forgeCallbacks(batchCallback)
	log.Info("drill_phase", "phase", "redis restarts")
	d.redisDowns(batchCallback)
	log.Info("drill_phase", "phase", "sigterm")
	d.sigterm()
	log.Info("drill_phase", "phase", "waiting for every row")
	if err := d.finish(cfg.Rows + cbRows); err != nil {
		return err
	}
	stop()
	<-done
	if err := d.verify(map[string]int{batchMain: cfg.Rows, batchCallback: cbRows}); err != nil {
		return err
	}
	if !cfg.Short {
		log.Info("drill_phase", "phase", "named crash points")
		d.rep.CrashPoints = d.crashPoints()
	}
	log.Info("drill_phase", "phase", "redis restarted empty")
	d.rep.Losses = append(d.rep.Losses, d.loseData(batchEmpty, false))
	log.Info("drill_phase", "phase", "failover to a stale copy")
	d.rep.Losses = append(d.rep.Losses, d.loseData(batchStale, true))
	d.rep.Fuzz = fuzz(d.ctx, d.cfg)
	return nil
}

// finished reports whether every row of the running batches is terminal.
func (d *drill) finished() bool {
	return d.mon.progress().terminal >= d.cfg.Rows+d.cfg.Rows/5
}

// waitTerminal waits until n rows are terminal, at most limit.
func (d *drill) waitTerminal(n int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for d.mon.progress().terminal < n {
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			return false
		}
		sleepUntil(d.ctx, time.Now().Add(sampleEvery))
	}
	return true
}

// finishTimeout bounds the wait for the last rows; stuck tasks are timed
// out by reconcile once they are all that is left.
const finishTimeout = 20 * time.Minute

// Stuck tasks: reconcile's schedule.give_up_after (its least), and how
// often reconcile runs while only stuck rows are left.
const (
	stuckGiveUp    = time.Minute
	reconcileEvery = 10 * time.Second
)

// finish waits until total rows are terminal. Once the only rows left are
// those whose tasks the simulator holds stuck, it runs seedbatch reconcile
// with the least give-up time, which times them out and releases their
// leases.
func (d *drill) finish(total int) error {
	deadline := time.Now().Add(finishTimeout)
	var reconciled time.Time
	for !d.finished() {
		if time.Now().After(deadline) {
			return fmt.Errorf("drill: not every row ended within %v: %d of %d", finishTimeout, d.mon.progress().terminal, total)
		}
		left := total - d.mon.progress().terminal
		if st := d.c.sim.Stats(); st.Stuck > 0 && left <= st.Stuck && time.Since(reconciled) > reconcileEvery {
			reconciled = time.Now()
			if err := d.reconcile(); err != nil {
				return err
			}
		}
		if err := sleepUntil(d.ctx, time.Now().Add(time.Second)); err != nil {
			return err
		}
	}
	return nil
}

// reconcile runs seedbatch reconcile with give_up_after at stuckGiveUp.
func (d *drill) reconcile() error {
	env := d.c.env("SEEDBATCH_SCHEDULE_GIVE_UP_AFTER=" + stuckGiveUp.String())
	ch, err := proc.Start(d.ctx, d.cfg.Executable, d.c.dir, env, "", "reconcile")
	if err != nil {
		return fmt.Errorf("drill: reconcile: %w", err)
	}
	<-ch.Done()
	if err := ch.ExitErr(); err != nil {
		return fmt.Errorf("drill: reconcile: %w", err)
	}
	d.rep.Reconciles++
	return nil
}

// verify checks every row of batches (id -> rows enqueued) against the
// simulator's ledger and the limiter's lease set.
func (d *drill) verify(batches map[string]int) error {
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Minute)
	defer cancel()
	var all []RowRecord
	expected := 0
	for _, id := range sortedKeys(batches) {
		rows, err := d.c.rows(ctx, id)
		if err != nil {
			return err
		}
		all = append(all, rows...)
		expected += batches[id]
	}
	leases, err := d.c.leases(ctx)
	if err != nil {
		return err
	}
	st := d.c.sim.Stats()
	d.rep.Verdict = Check(expected, all, st.CreatedPerPrompt, leases)
	state := map[string]string{}
	for _, r := range all {
		state[r.Prompt] = string(r.State)
	}
	outcomes(d.faults, st.FaultEvents, state)
	d.rep.Sim = st
	d.rep.Checked = true
	for _, k := range d.c.sim.Stats().FaultEvents {
		if k.Kind == sim.FaultStuck {
			d.rep.Stuck++
		}
	}
	samples, kills, killErrs := d.mon.snapshot()
	d.rep.Kills, d.rep.KillErrors = len(kills), killErrs
	for i := range d.faults {
		if f := &d.faults[i]; !f.Start.IsZero() {
			f.Recovery = recovery(samples, f.Start, f.End)
		}
	}
	for _, k := range kills {
		d.rep.KillRecovery = append(d.rep.KillRecovery, recovery(samples, k, k))
	}
	return nil
}

// redisVersion returns the version of the drill's Redis.
func redisVersion(ctx context.Context, c *cluster) string {
	info, err := c.rdb.Info(ctx, "server").Result()
	if err != nil {
		return "unknown"
	}
	for _, line := range bytes.Split([]byte(info), []byte("\n")) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("redis_version:")); ok {
			return string(v)
		}
	}
	return "unknown"
}

// emptyRedisDir removes the Redis's files, so that it restarts empty.
func emptyRedisDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

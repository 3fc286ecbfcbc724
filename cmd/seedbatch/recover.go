package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/rundir"
	"github.com/seedbatch/seedbatch/tasks"
)

// recovery is one run of the recover command.
type recovery struct {
	m       *Main
	pf      planFlags
	plan    *batch.Plan
	rd      *rundir.Dir
	s       *stack
	journal string              // its path
	header  batch.JournalHeader // the journal's
}

// recoverCmd rebuilds a batch that Redis lost, from its CSV file and the
// journal of the run that worked it, without creating any row twice.
func (m *Main) recoverCmd(ctx context.Context, args []string) error {
	r := &recovery{m: m}
	var journal *string
	fs, s, err := m.connect(ctx, "recover", "FILE.csv", args, func(fs *flag.FlagSet) {
		r.pf.register(fs)
		journal = fs.String("journal", "", "the batch's journal `FILE` (default: out_dir/<batch>/.run/journal.jsonl)")
	}, recoverConfig)
	if err != nil {
		return err
	}
	defer s.Close()
	r.s = s
	if err := oneArg(fs, "CSV file"); err != nil {
		return err
	}
	if r.plan, err = m.plan(s.cfg, fs.Arg(0), r.pf); err != nil || r.pf.dryRun {
		return err
	}
	for _, step := range []func(context.Context) error{
		func(context.Context) error { return r.open(*journal) }, r.check, r.rebuild,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// recoverConfig needs a Redis server, and finds a simulated batch where
// run put it.
func recoverConfig(_ *flag.FlagSet, cfg *config.Config) error {
	if !cfg.Redis.Configured() {
		return fail(exitUsage, "recover rebuilds a batch on a Redis server: set REDIS_URL or pass --redis "+
			"(a run on the embedded Redis resumes from its journal by itself: run the same command again)")
	}
	if p := cfg.Redis.SimulatedPrefix(); cfg.Provider.APIKey == "" && p != "" {
		cfg.Redis.Prefix = p
	}
	return nil
}

// open locks the batch's directory and reads its journal's header.
func (r *recovery) open(journal string) error {
	out := filepath.Join(r.s.cfg.OutDir, tasks.SafeFileName(r.plan.ID))
	rd, err := rundir.Open(out)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	r.rd = rd
	r.s.closers = append(r.s.closers, func() { rd.Close() })
	r.journal = journal
	if r.journal == "" {
		r.journal = rd.Path(rundir.Journal)
	}
	r.header, err = batch.ReadJournalHeader(r.journal)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail(exitUsage, "batch %s has no journal at %s: only a batch worked by seedbatch run keeps one. "+
			"Without it nothing shows which rows were created: enqueue the file again only if you accept that every "+
			"row is created, and billed, again", r.plan.ID, r.journal)
	case errors.Is(err, io.EOF):
		return fail(exitUsage, "the journal %s is empty: nothing to recover", r.journal)
	case err != nil:
		return fail(exitUsage, "%v", err)
	}
	want := batch.JournalHeader{Batch: r.plan.ID, Hash: r.plan.Hash, Store: r.header.Store}
	if r.header != want {
		return fail(exitUsage, "%v", &batch.JournalMismatchError{Path: r.journal, Got: r.header, Want: want})
	}
	if r.header.Store != batch.StoreRedis {
		return fail(exitUsage, "%s is the journal of a run on the embedded Redis: run the same command again, "+
			"it resumes from it by itself", r.journal)
	}
	return nil
}

// check refuses a batch that Redis still knows: there is nothing to rebuild,
// and enqueueing over it would mix two states.
func (r *recovery) check(ctx context.Context) error {
	_, err := r.s.store.Meta(ctx, r.plan.ID)
	switch {
	case err == nil:
		return fail(exitUsage, "Redis still knows batch %s: nothing to recover (if it holds an older copy of the batch, "+
			"after a failover to a stale replica, remove it with seedbatch purge %s --force first)", r.plan.ID, r.plan.ID)
	case !errors.Is(err, batch.ErrNotFound):
		return fail(exitUnreachable, "%v", err)
	}
	return nil
}

// rebuild pauses submitting, enqueues the batch again, replays its journal,
// marks the creates it cut off ambiguous, gives the tasks that may still
// run their slots back, starts a new epoch and resumes submitting.
func (r *recovery) rebuild(ctx context.Context) error {
	s, id := r.s, r.plan.ID
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	defer insp.Close()
	// No worker may create a row before the journal has said which were.
	if err := queue.PauseSubmitting(ctx, s.limiter, insp, s.queues, "seedbatch recover is rebuilding batch "+id); err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	q := queue.New(s.rdb, s.queues)
	defer q.Close()
	if _, err := r.m.enqueuePlan(ctx, s, q, r.plan, r.pf); err != nil {
		return err
	}
	f, err := os.Open(r.journal)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	n, err := s.store.Recover(ctx, f, r.header)
	f.Close()
	if err != nil {
		return fail(exitUsage, "recover from %s: %v", r.journal, err)
	}
	j, err := batch.OpenJournal(r.journal, r.header)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer j.Close()
	s.store.SetJournal(j)
	marked, err := s.store.Interrupted(ctx, id, batch.RecoveredCreateMsg, time.Now())
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	holders, err := s.store.Running(ctx, id)
	if err == nil {
		err = s.limiter.Hold(ctx, holders...)
	}
	if err == nil {
		_, err = s.store.RenewEpoch(ctx)
	}
	if err == nil {
		err = queue.ResumeSubmitting(ctx, s.limiter, insp, s.queues)
	}
	if err != nil {
		return fail(exitUnreachable, "recover: %v", err)
	}
	return r.report(ctx, n, marked)
}

// report says where the rebuilt batch stands.
func (r *recovery) report(ctx context.Context, applied, marked int) error {
	_, c, err := r.s.store.Get(ctx, r.plan.ID)
	if err != nil {
		return fail(exitUnreachable, "%v", err)
	}
	fmt.Fprintf(r.m.Stdout, "batch %s recovered from %s (%d changes): %d rows; %d finished, %d tasks followed again "+
		"(read, not created again), %d downloading, %d still to submit; %d ambiguous, %d of them because their create "+
		"may have been sent before Redis lost its data\n",
		r.plan.ID, r.journal, applied, r.plan.Rows, c.Terminal(), c[tasks.StateSubmitted], c[tasks.StateSucceeded],
		c[tasks.StateQueued], c[tasks.StateAmbiguous], marked)
	fmt.Fprintf(r.m.Stdout, "submitting resumed under a new epoch: restart the workers (or run the batch again with "+
		"the same command) to finish it\n")
	return nil
}

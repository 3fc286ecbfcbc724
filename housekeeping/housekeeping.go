// Package housekeeping keeps a seedbatch namespace in order, on a schedule
// (package scheduler) or once from the command line:
//
//	import     enqueue every settled CSV file in the inbox as a batch, then
//	           move it to done/ (with a report of its bad rows) or failed/
//	           (with the reason)
//	reconcile  re-arm jobs that wait for a task that no longer exists (a
//	           submit, poll or download lost to a crash or a restore), hand
//	           orphaned active tasks back to asynq, end jobs submitted longer
//	           ago than GiveUpAfter, and retire finished batches
//	expiry     download again the videos of done jobs whose files are
//	           missing, and retry failed downloads, while the provider's
//	           result URLs are still valid (24 hours)
//
// Every state change it makes is one of package batch's; it enqueues
// through package queue and never imports the worker.
package housekeeping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// Defaults of the housekeeping settings (config's schedule section).
const (
	// InboxDefault is import's directory.
	InboxDefault = "inbox"
	// ImportSettleDefault is how long a file must go unmodified before
	// import takes it.
	ImportSettleDefault = 10 * time.Second
	// GiveUpAfterDefault ends jobs submitted longer ago (the provider
	// documents at most 120 s of generation).
	GiveUpAfterDefault = 6 * time.Hour
)

// resultURLLife is how long a provider result URL lives, by its general
// documentation: downloads are only retried within it.
const resultURLLife = 24 * time.Hour

// Kinds of housekeeping, as schedule entries and commands name them.
const (
	KindImport    = "import"
	KindReconcile = "reconcile"
	KindExpiry    = "expiry"
)

// Objects is a bucket of downloaded videos (objstore.Bucket).
type Objects interface {
	// Exists reports whether the object key exists.
	Exists(ctx context.Context, key string) (bool, error)
}

// Runner does the housekeeping work, for the scheduler and for one-off
// commands alike.
type Runner struct {
	// Redis is the shared client; reconcile uses it to hand orphaned asynq
	// tasks back (none when nil).
	Redis  redis.UniversalClient
	Store  *batch.Store
	Queue  *queue.Client
	Insp   *asynq.Inspector
	Queues queue.Names
	// Release frees a job's in-flight lease (the limiter's Release).
	Release func(ctx context.Context, holder string) error
	// Inbox is import's directory; OutDir holds the downloaded videos.
	Inbox, OutDir string
	// Objects, when set, is the bucket holding the downloaded videos in
	// place of OutDir (out_dir is a bucket URL).
	Objects Objects
	// PlanOptions and Settings are how import reads and enqueues files.
	PlanOptions batch.PlanOptions
	Settings    batch.Settings
	// ImportSettle is how long a CSV file must have gone unmodified before
	// import takes it (schedule.import_settle); 0 takes every file at once,
	// for an inbox that only ever receives whole files by rename.
	ImportSettle time.Duration
	// GiveUpAfter ends jobs submitted longer ago than this.
	GiveUpAfter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
}

// Report says what one housekeeping run did.
type Report struct {
	Task string `json:"task"`
	// Imported and Failed name the files import moved, with their batch ids
	// or reasons; Waiting the files it left in the inbox because they were
	// modified less than ImportSettle ago or while it looked.
	Imported []string `json:"imported,omitempty"`
	Failed   []string `json:"failed,omitempty"`
	Waiting  []string `json:"waiting,omitempty"`
	// Rearmed counts jobs given back a lost task; Ended jobs given up;
	// Scanned the batches with rows still to move that reconcile read;
	// Orphans the tasks asynq showed active with no worker running them.
	Rearmed int `json:"rearmed,omitempty"`
	Ended   int `json:"ended,omitempty"`
	Scanned int `json:"scanned,omitempty"`
	Orphans int `json:"orphans,omitempty"`
	// Retired counts finished batches given their retention by reconcile.
	Retired int `json:"retired,omitempty"`
	// Redownloads counts downloads queued again; Lost files whose URLs
	// have expired.
	Redownloads int `json:"redownloads,omitempty"`
	Lost        int `json:"lost,omitempty"`
}

func (r Report) String() string {
	switch r.Task {
	case KindImport:
		return fmt.Sprintf("import: %d files enqueued %v, %d refused %v, %d waiting to settle %v",
			len(r.Imported), r.Imported, len(r.Failed), r.Failed, len(r.Waiting), r.Waiting)
	case KindReconcile:
		return fmt.Sprintf("reconcile: %d unfinished batches scanned, %d jobs re-armed, %d given up, %d orphaned tasks handed back, %d finished batches retired",
			r.Scanned, r.Rearmed, r.Ended, r.Orphans, r.Retired)
	default:
		return fmt.Sprintf("expiry: %d downloads queued again, %d files lost with their expired URLs", r.Redownloads, r.Lost)
	}
}

// Do runs the housekeeping of one kind, for the scheduler.
func (m *Runner) Do(ctx context.Context, kind string) error {
	_, err := m.Run(ctx, kind)
	return err
}

// Run runs the housekeeping task of one kind.
func (m *Runner) Run(ctx context.Context, kind string) (Report, error) {
	var (
		r   Report
		err error
	)
	switch kind {
	case KindImport:
		r, err = m.Import(ctx)
	case KindReconcile:
		r, err = m.Reconcile(ctx)
	case KindExpiry:
		r, err = m.Expiry(ctx)
	default:
		return Report{}, fmt.Errorf("unknown housekeeping task %q", kind)
	}
	m.log().Info("housekeeping", "task", kind, "report", r.String(), "err", err)
	return r, err
}

func (m *Runner) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

func (m *Runner) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

// Import enqueues every settled CSV file in the inbox as a batch. A file is
// settled once it was last modified at least ImportSettle ago and its size
// and modification time do not change while import takes it; a file
// modified more recently may still be being written, and is left for a
// later run. Only names ending in .csv are taken, so a file written as
// NAME.csv.part and then renamed to NAME.csv is never read half-written.
// A settled file is first moved to processing/ (so two importers never
// take the same file), then to done/ with a report of its rows, or to
// failed/ with the reason.
func (m *Runner) Import(ctx context.Context) (Report, error) {
	r := Report{Task: KindImport}
	entries, err := os.ReadDir(m.Inbox)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("import: %w", err)
	}
	for _, d := range []string{"processing", "done", "failed"} {
		if err := os.MkdirAll(filepath.Join(m.Inbox, d), 0o755); err != nil {
			return r, fmt.Errorf("import: %w", err)
		}
	}
	now := m.now()
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || !strings.EqualFold(filepath.Ext(name), ".csv") {
			continue
		}
		src := filepath.Join(m.Inbox, name)
		work := filepath.Join(m.Inbox, "processing", name)
		before, err := os.Stat(src)
		if err != nil {
			continue // taken by another importer
		}
		if m.ImportSettle > 0 && now.Sub(before.ModTime()) < m.ImportSettle {
			r.Waiting = append(r.Waiting, name)
			continue
		}
		if err := os.Rename(src, work); err != nil {
			continue // taken by another importer
		}
		// A writer that still holds the file open writes on after the rename:
		// if it wrote since the first look, hand the file back.
		if after, err := os.Stat(work); err != nil || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
			if err := os.Rename(work, src); err != nil {
				return r, fmt.Errorf("import %s: %w", name, err)
			}
			r.Waiting = append(r.Waiting, name)
			continue
		}
		id, report, ferr := m.importFile(ctx, work)
		if ferr != nil && !refused(ferr) {
			// Redis trouble: put the file back for the next run.
			_ = os.Rename(work, src)
			return r, ferr
		}
		dir, note := "done", report
		if ferr != nil {
			dir, note = "failed", ferr.Error()+"\n"
			r.Failed = append(r.Failed, name+": "+ferr.Error())
		} else {
			r.Imported = append(r.Imported, name+" -> "+id)
		}
		dst := uniqueName(filepath.Join(m.Inbox, dir, name))
		if err := os.Rename(work, dst); err != nil {
			return r, fmt.Errorf("import %s: %w", name, err)
		}
		if err := os.WriteFile(dst+".report.txt", []byte(note), 0o644); err != nil {
			return r, fmt.Errorf("import %s: %w", name, err)
		}
	}
	return r, nil
}

// refusedError marks a file that cannot be imported as it is.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

func refused(err error) bool {
	var re refusedError
	return errors.As(err, &re)
}

// importFile plans and enqueues one file and returns its batch id and a
// report of its rows.
func (m *Runner) importFile(ctx context.Context, path string) (string, string, error) {
	plan, err := batch.PlanFile(path, m.PlanOptions)
	if err != nil {
		return "", "", refusedError{err}
	}
	res, err := m.Store.EnqueueBatch(ctx, m.Queue, plan, m.PlanOptions, m.Settings)
	if errors.Is(err, batch.ErrBatchMismatch) {
		return "", "", refusedError{err}
	}
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "batch %s: %d rows, %d to submit (%d new jobs, %d already known), %d bad, %d duplicate\n",
		plan.ID, plan.Rows, plan.Valid, res.Added, res.Existing, plan.Invalid, len(plan.Duplicates))
	for _, e := range plan.Errors {
		fmt.Fprintf(&b, "%v\n", e)
	}
	for _, d := range plan.Duplicates {
		fmt.Fprintf(&b, "line %d: identical to line %d: not submitted\n", d.Line, d.FirstLine)
	}
	return plan.ID, b.String(), nil
}

// uniqueName returns path, or path with a time suffix if it exists.
func uniqueName(path string) string {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + time.Now().UTC().Format("20060102T150405.000") + ext
}

// eachJob calls fn for every job of every batch; with unsettled, only for
// the batches that still have rows to move.
func (m *Runner) eachJob(ctx context.Context, unsettled bool, fn func(meta batch.Meta, j batch.Job) error) (scanned int, err error) {
	ids, err := m.Store.Batches(ctx)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		meta, counts, err := m.Store.Get(ctx, id)
		if err != nil {
			return scanned, err
		}
		if unsettled && counts.Settled() >= meta.Rows {
			continue
		}
		scanned++
		for j, err := range m.Store.All(ctx, id) {
			if err != nil {
				return scanned, err
			}
			if err := fn(meta, j); err != nil {
				return scanned, err
			}
		}
	}
	return scanned, nil
}

// Reconcile finds jobs waiting for a task that no longer exists and queues
// it again, ends jobs submitted longer ago than GiveUpAfter, and gives
// finished batches their retention when the transition that finished them
// did not (see batch.Store.Retire).
func (m *Runner) Reconcile(ctx context.Context) (Report, error) {
	r := Report{Task: KindReconcile}
	now := m.now()
	var err error
	if r.Retired, err = m.retire(ctx); err != nil {
		return r, err
	}
	if r.Orphans, err = m.handBackOrphans(ctx); err != nil {
		return r, err
	}
	polled, err := m.liveRows(m.Queues.Poll)
	if err != nil {
		return r, err
	}
	r.Scanned, err = m.eachJob(ctx, true, func(meta batch.Meta, j batch.Job) error {
		switch j.State {
		case tasks.StateQueued, tasks.StateSubmitting:
			lost, err := m.lost(m.Queues.Submit, tasks.SubmitTaskID(j.Batch, j.Row, j.Attempt))
			if err != nil || !lost {
				return err
			}
			r.Rearmed++
			return m.Queue.Submit(ctx, j.Batch, j.Row, j.Attempt)
		case tasks.StateSubmitted:
			if m.GiveUpAfter > 0 && !j.Submitted.IsZero() && now.Sub(j.Submitted) > m.GiveUpAfter {
				ended, err := m.Store.TimeOut(ctx, j, m.GiveUpAfter, now)
				if !ended || err != nil {
					return err
				}
				if m.Release != nil {
					_ = m.Release(ctx, j.Holder())
				}
				r.Ended++
				return nil
			}
			// A row submitted since the listing began has its first poll.
			if polled[rowKey(j.Batch, j.Row, j.Attempt)] || !j.Submitted.Before(now) {
				return nil
			}
			r.Rearmed++
			return m.Queue.Poll(ctx, j.Batch, j.Row, j.Attempt, tasks.RearmPoll(now), now, meta.RequestType == queue.RequestCallback)
		case tasks.StateSucceeded:
			lost, err := m.lost(m.Queues.Download, tasks.DownloadTaskID(j.Batch, j.Row, j.Attempt))
			if err != nil || !lost {
				return err
			}
			r.Rearmed++
			return m.Queue.Download(ctx, j.Batch, j.Row, j.Attempt)
		}
		return nil
	})
	return r, err
}

// retire gives every finished batch without one its retention, and makes
// the records of a retired batch that is not finished permanent again.
func (m *Runner) retire(ctx context.Context) (int, error) {
	ids, err := m.Store.Batches(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		retired, err := m.Store.Retire(ctx, id)
		if err != nil {
			return n, err
		}
		if retired {
			n++
			continue
		}
		if _, err := m.Store.Reopen(ctx, id); err != nil {
			return n, err
		}
	}
	return n, nil
}

// handBackOrphans gives every task that asynq lists as active in one of
// seedbatch's queues, with no lease and no live worker running it, an
// expired lease, so that asynq's own recoverer runs it again within a
// minute. A Redis failover or restore can leave such tasks behind, and
// asynq keeps an active task without a lease forever. (asynq takes the
// lease in the same step as it makes a task active, so a task without one
// is never merely starting.) It returns how many it handed back.
func (m *Runner) handBackOrphans(ctx context.Context) (int, error) {
	if m.Redis == nil {
		return 0, nil
	}
	servers, err := m.Insp.Servers()
	if err != nil {
		return 0, fmt.Errorf("reconcile: list workers: %w", err)
	}
	running := map[string]bool{}
	for _, srv := range servers {
		for _, w := range srv.ActiveWorkers {
			running[w.TaskID] = true
		}
	}
	n := 0
	for _, q := range m.Queues.All() {
		infos, err := m.Insp.ListActiveTasks(q, asynq.PageSize(10000))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("reconcile: list %s: %w", q, err)
		}
		lease := asynqLeaseKey(q)
		for _, info := range infos {
			if running[info.ID] {
				continue
			}
			if err := m.Redis.ZScore(ctx, lease, info.ID).Err(); !errors.Is(err, redis.Nil) {
				if err != nil {
					return n, fmt.Errorf("reconcile: lease of %s: %w", info.ID, err)
				}
				continue // asynq's recoverer takes it back when its lease expires
			}
			if err := m.Redis.ZAddNX(ctx, lease, redis.Z{Score: 0, Member: info.ID}).Err(); err != nil {
				return n, fmt.Errorf("reconcile: hand back %s: %w", info.ID, err)
			}
			m.log().Warn("orphaned_task_handed_back", "queue", q, "task", info.ID)
			n++
		}
	}
	return n, nil
}

// asynqLeaseKey is asynq's sorted set of the leases of a queue's active
// tasks (asynq/internal/base.LeaseKey).
func asynqLeaseKey(queue string) string { return "asynq:{" + queue + "}:lease" }

// lost reports whether the task id is missing from queue or archived (an
// archived one is deleted, so that its id can be used again).
func (m *Runner) lost(queue, id string) (bool, error) {
	info, err := m.Insp.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reconcile: %w", err)
	}
	if info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted {
		if err := m.Insp.DeleteTask(queue, id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return false, fmt.Errorf("reconcile: %w", err)
		}
		return true, nil
	}
	return false, nil
}

// inspectPage is how many tasks one call to asynq's inspector lists.
const inspectPage = 1000

// liveRows lists the rows that have a pending, scheduled, retrying or
// active task in queue, as "batch:row:attempt".
func (m *Runner) liveRows(queue string) (map[string]bool, error) {
	live := map[string]bool{}
	lists := []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		m.Insp.ListPendingTasks, m.Insp.ListScheduledTasks, m.Insp.ListRetryTasks, m.Insp.ListActiveTasks,
	}
	for _, list := range lists {
		for page := 1; ; page++ {
			infos, err := list(queue, asynq.PageSize(inspectPage), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reconcile: list %s: %w", queue, err)
			}
			for _, info := range infos {
				if p, err := tasks.ParseJobPayload(info.Payload); err == nil {
					live[rowKey(p.Batch, p.Row, p.Attempt)] = true
				}
			}
			if len(infos) < inspectPage {
				break
			}
		}
	}
	return live, nil
}

func rowKey(b string, row, attempt int) string { return fmt.Sprintf("%s:%d:%d", b, row, attempt) }

// Expiry downloads again the videos of done jobs whose files are missing,
// and retries failed downloads, while the result URLs are still valid.
func (m *Runner) Expiry(ctx context.Context) (Report, error) {
	r := Report{Task: KindExpiry}
	now := m.now()
	_, err := m.eachJob(ctx, false, func(_ batch.Meta, j batch.Job) error {
		switch {
		case j.State == tasks.StateDone:
			missing, err := m.missingFile(ctx, j)
			if err != nil || !missing {
				return err
			}
		case j.State == tasks.StateFailed && tasks.Redownloadable(j.FailCode):
		default:
			return nil
		}
		if j.Completed.IsZero() || now.Sub(j.Completed) > resultURLLife || len(j.ResultURLs) == 0 {
			r.Lost++
			return nil
		}
		// An earlier download task of the row may linger, archived: free its id.
		if _, err := m.lost(m.Queues.Download, tasks.DownloadTaskID(j.Batch, j.Row, j.Attempt)); err != nil {
			return err
		}
		ok, err := m.Store.Redownload(ctx, m.Queue, j)
		if ok {
			r.Redownloads++
		}
		return err
	})
	return r, err
}

// missingFile reports whether a done job lacks one of its files: on disk
// under OutDir (any error counts as missing), or in Objects (an error
// checking it is returned).
func (m *Runner) missingFile(ctx context.Context, j batch.Job) (bool, error) {
	if len(j.Files) == 0 {
		return true, nil
	}
	for _, f := range j.Files {
		if m.Objects != nil {
			ok, err := m.Objects.Exists(ctx, f.Path)
			if err != nil {
				return false, fmt.Errorf("expiry: batch %s row %d: %w", j.Batch, j.Row, err)
			}
			if !ok {
				return true, nil
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(m.OutDir, filepath.FromSlash(f.Path))); err != nil {
			return true, nil
		}
	}
	return false, nil
}

// Kinds lists the housekeeping task kinds, sorted.
func Kinds() []string {
	k := []string{KindImport, KindReconcile, KindExpiry}
	sort.Strings(k)
	return k
}

package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/tasks"
)

// Retention: a batch is finished when every row is terminal. Its records
// (meta, counts, minute series, jobs, the index entries of its provider tasks, the claim of
// its file's content) then get the store's retention as their time to live,
// so Redis forgets finished batches by itself. The transition that makes
// the last row terminal retires the batch (Transition starts it, apart, in
// whichever process made it: a worker, cancel, reconcile); reconcile retires any
// finished batch that still has no time to live (a process that stopped
// in between, batches finished before this version), and Enqueue a batch
// whose rows are all rejected. A transition that takes a row of a retired
// batch out of a terminal state (retry, a download made again) makes its
// records permanent again. Batches and Batch skip a batch whose records are
// gone. Budget reservations are not retired: a row of a finished batch may
// still be refunded; Purge removes them.

// RetentionDefault is how long the records of a finished batch are kept:
// longer than the provider keeps a task's result (15 days).
const RetentionDefault = 30 * 24 * time.Hour

// SetRetention sets how long the records of a finished batch are kept
// (RetentionDefault unless set); 0 or less keeps them forever.
func (s *Store) SetRetention(d time.Duration) { s.retention = d }

// finished reports whether every row of a batch is terminal.
func finished(m Meta, c Counts) bool { return c.Terminal() >= m.Rows }

// Retire gives the records of batch id the store's retention as their time
// to live if the batch is finished and has none yet; it reports whether it
// did. It is safe to repeat, and to race with a transition that takes a row
// out of a terminal state: the meta gets its time to live last, only if the
// batch is still finished then (else every record is made permanent again),
// and a transition after that sees it and reopens the batch.
func (s *Store) Retire(ctx context.Context, id string) (bool, error) {
	if s.retention <= 0 {
		return false, nil
	}
	defer s.lockBatch(id)()
	meta, counts, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || !finished(meta, counts) {
		return false, err
	}
	if ttl, err := s.rdb.PTTL(ctx, s.metaKey(id)).Result(); err != nil || ttl > 0 {
		return false, err
	}
	done, err := s.expire(ctx, meta, s.retention)
	if err != nil {
		return false, fmt.Errorf("retire batch %s: %w", id, err)
	}
	return done, nil
}

// lockBatch serializes the retiring and reopening of one batch in this
// process, and returns the unlock.
func (s *Store) lockBatch(id string) func() {
	v, _ := s.batchLocks.LoadOrStore(id, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// retireMetaScript gives a batch's meta its time to live if the batch is
// finished.
//
//	KEYS[1] counts hash, KEYS[2] meta hash
//	ARGV[1] terminal states as ",a,b,", ARGV[2] time to live in ms
//
// Returns 1 if it did, 0 if a row is not terminal.
var retireMetaScript = redis.NewScript(`
local n, counts = 0, redis.call('HGETALL', KEYS[1])
for i = 1, #counts, 2 do
  if string.find(ARGV[1], ',' .. counts[i] .. ',', 1, true) then n = n + tonumber(counts[i+1]) end
end
if n < tonumber(redis.call('HGET', KEYS[2], 'rows') or '0') then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// Reopen makes the records of a retired batch that is no longer finished
// (a row was taken out of a terminal state) permanent again; it reports
// whether it did. It is safe to repeat.
func (s *Store) Reopen(ctx context.Context, id string) (bool, error) {
	defer s.lockBatch(id)()
	if ttl, err := s.rdb.PTTL(ctx, s.metaKey(id)).Result(); err != nil || ttl <= 0 {
		return false, err
	}
	meta, counts, err := s.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil || finished(meta, counts) {
		return false, err
	}
	if _, err := s.expire(ctx, meta, 0); err != nil {
		return false, fmt.Errorf("reopen batch %s: %w", id, err)
	}
	return true, nil
}

// expire gives every record of a batch the time to live d, or removes it
// when d is 0. The meta goes last when retiring, and only while the batch is
// finished (it reports whether it was; if not, every record is made
// permanent again); it goes first when reopening. So a batch whose meta has
// a time to live has it on all its records.
func (s *Store) expire(ctx context.Context, meta Meta, d time.Duration) (bool, error) {
	id := meta.ID
	set := func(pipe redis.Pipeliner, key string) {
		if d > 0 {
			pipe.PExpire(ctx, key, d)
		} else {
			pipe.Persist(ctx, key)
		}
	}
	if d == 0 {
		if err := s.rdb.Persist(ctx, s.metaKey(id)).Err(); err != nil {
			return false, err
		}
	}
	pipe := s.rdb.Pipeline()
	set(pipe, s.countsKey(id))
	set(pipe, s.seriesKey(id))
	set(pipe, s.batchTasksKey(id))
	if meta.Hash != "" {
		set(pipe, s.fileKey(meta.Hash))
	}
	it := s.rdb.SScan(ctx, s.batchTasksKey(id), 0, "", pageSize).Iterator()
	for it.Next(ctx) {
		set(pipe, s.taskKey(it.Val()))
		if pipe.Len() >= pageSize {
			if _, err := pipe.Exec(ctx); err != nil {
				return false, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return false, err
	}
	for row := range meta.Rows {
		set(pipe, s.jobKey(id, row))
		if pipe.Len() >= pageSize {
			if _, err := pipe.Exec(ctx); err != nil {
				return false, err
			}
		}
	}
	if d == 0 {
		_, err := pipe.Exec(ctx)
		return true, err
	}
	done := retireMetaScript.Eval(ctx, pipe, []string{s.countsKey(id), s.metaKey(id)}, terminalStates, d.Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil {
		return false, err
	}
	if n, _ := done.Int(); n == 1 {
		return true, nil
	}
	// A row left its terminal state meanwhile: the batch is not finished.
	_, err := s.expire(ctx, meta, 0)
	return false, err
}

// retireTimeout bounds the retirement of one batch after its last row's
// transition.
const retireTimeout = 10 * time.Minute

// afterTransition retires a batch its transition finished, or reopens a
// retired one it took a row of out of a terminal state, as transitionScript
// reported (change). Retiring touches every key of the batch, so it runs
// apart, and the caller goes on with its own work (freeing the row's
// in-flight slot, say); a retirement cut short by the process stopping is
// done again by reconcile, since the batch's meta gets its time to live
// last. Reopening is done before Transition returns.
func (s *Store) afterTransition(ctx context.Context, batch string, change any) error {
	switch change {
	case "finished":
		s.retiring.Go(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retireTimeout)
			defer cancel()
			if _, err := s.Retire(ctx, batch); err != nil {
				s.log.Warn("retire_failed", "batch", batch, "err", err, "note", "reconcile retires it later")
			}
		})
	case "reopened":
		_, err := s.Reopen(ctx, batch)
		return err
	}
	return nil
}

// WaitRetired waits until the batches being retired after their last
// row's transition are.
func (s *Store) WaitRetired() { s.retiring.Wait() }

// SetLogger sets where the store logs what it cannot return as an error
// (a retirement that failed).
func (s *Store) SetLogger(l *slog.Logger) { s.log = l }

// ErrBatchActive is returned by Purge for a batch with rows that may still
// be created or running at the provider, unless forced.
var ErrBatchActive = errors.New("batch has rows in progress")

// PurgeResult says what Purge deleted.
type PurgeResult struct {
	// Jobs counts the job records deleted; Keys every key deleted.
	Jobs, Keys int
	// TaskIndex counts the provider task index entries removed.
	TaskIndex int
	// FileClaim is set when the claim of the batch's file content was removed.
	FileClaim bool
	// Reservations counts the budget reservations removed; Refunded the
	// video seconds of those whose create was never sent, given back to the
	// total budget (the others were created and stay counted).
	Reservations, Refunded int
	// InProgress counts the rows that were queued, submitting, submitted
	// or succeeded (purged only when forced).
	InProgress int
}

// Purge deletes the records of batch id now: its meta, counts, minute
// series, jobs, the index entries of its provider tasks, the claim of its
// file's content, its budget and its reservations, and its place in the
// batch list. Other batches are not touched. A batch with rows queued,
// submitting, submitted or succeeded is refused with ErrBatchActive unless force is set (its
// queued tasks then find no job and end).
func (s *Store) Purge(ctx context.Context, id string, force bool) (PurgeResult, error) {
	var res PurgeResult
	meta, counts, err := s.Get(ctx, id)
	if err != nil {
		return res, err
	}
	res.InProgress = counts.Sum(tasks.StateQueued, tasks.StateSubmitting, tasks.StateSubmitted, tasks.StateSucceeded)
	if res.InProgress > 0 && !force {
		return res, fmt.Errorf("purge %s: %w: %d rows are queued, submitting, submitted or succeeded; "+
			"cancel it and wait, or purge with --force", id, ErrBatchActive, res.InProgress)
	}
	// Reservations of rows whose current attempt was never sent.
	unsent := map[string]int{}
	for j, err := range s.All(ctx, id) {
		if err != nil {
			return res, err
		}
		if j.State == tasks.StateQueued || j.State == tasks.StateBudget || j.State == tasks.StateCanceled {
			unsent[member(id, j.Row, j.Attempt)] = j.Spec.Seconds()
		}
	}
	if err := s.purgeBudget(ctx, id, unsent, &res); err != nil {
		return res, fmt.Errorf("purge %s: %w", id, err)
	}
	if err := s.purgeTaskIndex(ctx, id, &res); err != nil {
		return res, fmt.Errorf("purge %s: %w", id, err)
	}
	if meta.Hash != "" {
		pipe := s.rdb.Pipeline()
		owner := pipe.Get(ctx, s.fileKey(meta.Hash))
		legacy := pipe.HGet(ctx, s.legacyFilesKey(), meta.Hash)
		_, _ = pipe.Exec(ctx)
		if owner.Val() == id {
			res.FileClaim = true
			res.Keys++
			if err := s.rdb.Del(ctx, s.fileKey(meta.Hash)).Err(); err != nil {
				return res, fmt.Errorf("purge %s: %w", id, err)
			}
		}
		if legacy.Val() == id {
			res.FileClaim = true
			if err := s.rdb.HDel(ctx, s.legacyFilesKey(), meta.Hash).Err(); err != nil {
				return res, fmt.Errorf("purge %s: %w", id, err)
			}
		}
	}
	pipe := s.rdb.Pipeline()
	var dels []*redis.IntCmd
	for row := range meta.Rows {
		dels = append(dels, pipe.Unlink(ctx, s.jobKey(id, row)))
		if pipe.Len() >= pageSize {
			if _, err := pipe.Exec(ctx); err != nil {
				return res, fmt.Errorf("purge %s: %w", id, err)
			}
		}
	}
	n := pipe.Unlink(ctx, s.countsKey(id), s.seriesKey(id), s.batchTasksKey(id), s.syncKey(id), s.metaKey(id))
	pipe.ZRem(ctx, s.batchesKey(), id)
	if _, err := pipe.Exec(ctx); err != nil {
		return res, fmt.Errorf("purge %s: %w", id, err)
	}
	for _, d := range dels {
		res.Jobs += int(d.Val())
	}
	res.Keys += res.Jobs + int(n.Val())
	return res, nil
}

// purgeTaskIndex removes the index entries of a batch's provider tasks,
// including those an earlier version kept in one hash.
func (s *Store) purgeTaskIndex(ctx context.Context, id string, res *PurgeResult) error {
	ids, err := s.rdb.SMembers(ctx, s.batchTasksKey(id)).Result()
	if err != nil {
		return err
	}
	for _, t := range ids {
		// Only an entry that still names this batch.
		owner, err := s.rdb.Get(ctx, s.taskKey(t)).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return err
		}
		if b, _, _ := strings.Cut(owner, ":"); b == id {
			if err := s.rdb.Del(ctx, s.taskKey(t)).Err(); err != nil {
				return err
			}
			res.TaskIndex++
			res.Keys++
		}
	}
	it := s.rdb.HScan(ctx, s.legacyTasksKey(), 0, "", 1000).Iterator()
	var field string
	for i := 0; it.Next(ctx); i++ {
		if i%2 == 0 {
			field = it.Val()
			continue
		}
		if b, _, _ := strings.Cut(it.Val(), ":"); b == id {
			if err := s.rdb.HDel(ctx, s.legacyTasksKey(), field).Err(); err != nil {
				return err
			}
			res.TaskIndex++
		}
	}
	return it.Err()
}

// purgeBudget removes a batch's budget and reservations; the seconds of
// those in unsent (member -> seconds) go back to the total.
func (s *Store) purgeBudget(ctx context.Context, id string, unsent map[string]int, res *PurgeResult) error {
	k := s.budgetKeys()
	it := s.rdb.SScan(ctx, k[2], 0, s.budgetHeldPattern(id), 1000).Iterator()
	var members []string
	for it.Next(ctx) {
		// The pattern also matches a batch whose id starts with this one's and a colon: none can.
		if b, rest, _ := strings.Cut(it.Val(), ":"); b == id && strings.Count(rest, ":") == 1 {
			members = append(members, it.Val())
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	refund := 0
	for _, m := range members {
		refund += unsent[m]
	}
	acct, err := s.rdb.HGet(ctx, k[0], batchAccountField(id)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	pipe := s.rdb.TxPipeline()
	if len(members) > 0 {
		pipe.SRem(ctx, k[2], toAny(members)...)
	}
	if refund > 0 {
		pipe.HIncrBy(ctx, k[1], BudgetTotal, -int64(refund))
		if acct != "" {
			pipe.HIncrBy(ctx, k[1], accountField(acct), -int64(refund))
		}
	}
	pipe.HDel(ctx, k[0], budgetField(id), batchAccountField(id))
	pipe.HDel(ctx, k[1], budgetField(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	res.Reservations, res.Refunded = len(members), refund
	return nil
}

func toAny(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

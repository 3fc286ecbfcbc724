package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/tasks"
)

// ErrNotFound is returned for a batch or job that does not exist.
var ErrNotFound = errors.New("not found")

// Store reads and writes batch and job records.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	now     func() time.Time
	journal Journal
	redact  func(string) string
	// chunk is how many rows Enqueue writes per round trip.
	chunk int
	// retention is how long a finished batch's records are kept (0: forever).
	retention time.Duration
	// retiring tracks the retirements running apart (see afterTransition).
	retiring *sync.WaitGroup
	// batchLocks holds a *sync.Mutex per batch being retired or reopened.
	batchLocks *sync.Map
	log        *slog.Logger
}

// SetRedactor makes the store pass every failure message and last error
// through redact before it is written, to Redis and to the journal alike,
// so that no secret an error carried is ever stored.
func (s *Store) SetRedactor(redact func(string) string) { s.redact = redact }

// clean redacts a message the store is about to write.
func (s *Store) clean(msg string) string {
	if s.redact == nil || msg == "" {
		return msg
	}
	return s.redact(msg)
}

// NewStore returns a Store whose keys start with prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now, chunk: enqueueChunk, retention: RetentionDefault,
		retiring: &sync.WaitGroup{}, batchLocks: &sync.Map{}, log: slog.New(slog.DiscardHandler)}
}

func (s *Store) batchesKey() string        { return s.prefix + ":batches" }
func (s *Store) metaKey(b string) string   { return s.prefix + ":b:{" + b + "}:meta" }
func (s *Store) countsKey(b string) string { return s.prefix + ":b:{" + b + "}:counts" }
func (s *Store) seriesKey(b string) string { return s.prefix + ":b:{" + b + "}:series" }
func (s *Store) jobKey(b string, row int) string {
	return s.prefix + ":b:{" + b + "}:job:" + strconv.Itoa(row)
}

// Meta describes a batch.
type Meta struct {
	// ID is the batch id.
	ID string `json:"id"`
	// Source is the name of the CSV file the batch came from.
	Source string `json:"source"`
	// Rows is the number of data rows in the file, valid or not.
	Rows int `json:"rows"`
	// Created is when the batch was first enqueued.
	Created time.Time `json:"created"`
	// Canceled is set when an operator stopped submitting the batch.
	Canceled bool `json:"canceled"`
	// RequestType is how the provider reports results for this batch:
	// "async" (seedbatch polls) or "callback" (the provider posts them).
	RequestType string `json:"request_type"`
	// Hash is the sha256 of the file the batch came from.
	Hash string `json:"hash"`
	// Epoch is the id of the Redis epoch the batch was created in (empty
	// for a batch created by an earlier version).
	Epoch string `json:"epoch"`
	// Finished is when the transition that made its last row terminal ran
	// (zero while a row is not, and for a batch finished by an earlier
	// version or with no transition: every row rejected).
	Finished time.Time `json:"finished"`
}

// Counts is the number of a batch's jobs in each state.
type Counts map[tasks.State]int

// Total is the number of jobs counted.
func (c Counts) Total() int { return c.count(func(tasks.State) bool { return true }) }

// Terminal is the number of jobs in a terminal state.
func (c Counts) Terminal() int { return c.count(tasks.State.Terminal) }

// Settled is the number of jobs that need an operator to move again:
// terminal, or held by a budget.
func (c Counts) Settled() int { return c.count(tasks.State.Settled) }

func (c Counts) count(in func(tasks.State) bool) int {
	n := 0
	for s, v := range c {
		if in(s) {
			n += v
		}
	}
	return n
}

// CreateBatch records a batch unless it exists; it reports whether it did.
func (s *Store) CreateBatch(ctx context.Context, m Meta) (bool, error) {
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	ok, err := s.rdb.HSetNX(ctx, s.metaKey(m.ID), "id", m.ID).Result()
	if err != nil {
		return false, fmt.Errorf("create batch %s: %w", m.ID, err)
	}
	if !ok {
		return false, nil
	}
	epoch, err := s.EnsureEpoch(ctx)
	if err != nil {
		return false, fmt.Errorf("create batch %s: %w", m.ID, err)
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.metaKey(m.ID), "source", m.Source, "rows", m.Rows, "created_ms", m.Created.UnixMilli(),
		"request_type", m.RequestType, "hash", m.Hash, "epoch", epoch)
	pipe.ZAdd(ctx, s.batchesKey(), redis.Z{Score: float64(m.Created.UnixMilli()), Member: m.ID})
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("create batch %s: %w", m.ID, err)
	}
	return true, nil
}

// Batch returns a batch's record and counts.
func (s *Store) Batch(ctx context.Context, id string) (Meta, Counts, error) {
	pipe := s.rdb.Pipeline()
	mc := pipe.HGetAll(ctx, s.metaKey(id))
	cc := pipe.HGetAll(ctx, s.countsKey(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return Meta{}, nil, fmt.Errorf("read batch %s: %w", id, err)
	}
	m, err := decodeMeta(id, mc.Val())
	if err != nil {
		return m, nil, err
	}
	counts := Counts{}
	for k, v := range cc.Val() {
		if n, _ := strconv.Atoi(v); n != 0 {
			counts[tasks.State(k)] = n
		}
	}
	return m, counts, nil
}

// Meta returns a batch's record without its counts.
func (s *Store) Meta(ctx context.Context, id string) (Meta, error) {
	v, err := s.rdb.HGetAll(ctx, s.metaKey(id)).Result()
	if err != nil {
		return Meta{}, fmt.Errorf("read batch %s: %w", id, err)
	}
	return decodeMeta(id, v)
}

func decodeMeta(id string, mv map[string]string) (Meta, error) {
	if len(mv) == 0 {
		return Meta{}, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	rows, _ := strconv.Atoi(mv["rows"])
	ms, _ := strconv.ParseInt(mv["created_ms"], 10, 64)
	return Meta{ID: id, Source: mv["source"], Rows: rows, Created: time.UnixMilli(ms), Canceled: mv["canceled"] == "1",
		RequestType: mv["request_type"], Hash: mv["hash"], Epoch: mv["epoch"], Finished: msTime(mv["finished_ms"])}, nil
}

// Batches lists batch ids, oldest first. A batch whose records expired
// (see Retire) is left out, and taken off the list.
func (s *Store) Batches(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, s.batchesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		exists[i] = pipe.Exists(ctx, s.metaKey(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
	}
	live := ids[:0]
	for i, id := range ids {
		if exists[i].Val() == 1 {
			live = append(live, id)
		} else if err := s.rdb.ZRem(ctx, s.batchesKey(), id).Err(); err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
	}
	return live, nil
}

// SetCanceled marks a batch canceled: its queued rows are not submitted.
func (s *Store) SetCanceled(ctx context.Context, id string) error {
	if _, _, err := s.Batch(ctx, id); err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.metaKey(id), "canceled", "1").Err(); err != nil {
		return fmt.Errorf("cancel batch %s: %w", id, err)
	}
	return s.record(Record{Kind: RecordCancel, Batch: id})
}

// Job is the record of one row.
type Job struct {
	Batch string
	Row   int
	// Line is the row's line number in the CSV file.
	Line int
	// Spec is what the row asks for; a rejected row's holds what could be
	// read of it.
	Spec tasks.Spec
	// Input holds a rejected row's cells as written (nil for others), so
	// that its results show what to correct.
	Input tasks.Input
	State tasks.State
	// Attempt counts deliberate resubmissions (0 for the first).
	Attempt int
	// TaskID is the provider's task id, once known.
	TaskID string
	// FailCode and FailMsg explain a failed, rejected or ambiguous row.
	FailCode, FailMsg string
	// ResultURLs are the provider's video URLs of a succeeded row.
	ResultURLs []string
	// Enqueued, Submitted and Completed are when the row reached those steps.
	Enqueued, Submitted, Completed time.Time
	// CostTime is the provider's generation time.
	CostTime time.Duration
	// LastError is the most recent transient error, for operators.
	LastError string
	// Files are the stored videos of a done row, one per result URL.
	Files []File
	// Downloaded is when the files were stored.
	Downloaded time.Time
}

// File is one stored video.
type File struct {
	// Path is relative to the output directory, slash-separated.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Holder names the job's current submit attempt: its in-flight lease
// holder and the owner recorded for its provider task. Each attempt has its
// own, so a resubmitted row never reuses or frees the lease of an earlier
// attempt whose task may still run.
func (j Job) Holder() string {
	return j.Batch + ":" + strconv.Itoa(j.Row) + ":" + strconv.Itoa(j.Attempt)
}

// Job field names in the Redis hash. The spec is stored in pieces named
// fSpecPiece and a number (see appendSpecFields), a rejected row's cells in
// pieces named fInputPiece and a number; fSpec holds the spec whole in jobs
// recorded by earlier versions.
const (
	fSpec       = "spec"
	fSpecPiece  = "s"
	fInputPiece = "c"
	fLine       = "line"
	fState      = "state"
	fAttempt    = "attempt"
	fTaskID     = "task_id"
	fFailCode   = "fail_code"
	fFailMsg    = "fail_msg"
	fURLs       = "urls"
	fEnqueued   = "enq_ms"
	fSubmitted  = "sub_ms"
	fCompleted  = "done_ms"
	fCost       = "cost_ms"
	fLastErr    = "last_err"
	fFiles      = "files"
	fDownload   = "dl_ms"
)

// addJobsScript creates the jobs that do not exist yet and counts them.
//
//	KEYS[1] batch counts hash, KEYS[2..] job hashes
//	ARGV, for each job hash in turn: its state, the number n of its other
//	fields, then n field/value pairs
//
// Returns, for each job, 1 if it was added and 0 if it existed.
var addJobsScript = redis.NewScript(`
local added, counts, a = {}, {}, 1
for i = 2, #KEYS do
  local state, n = ARGV[a], tonumber(ARGV[a+1])
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('HSET', KEYS[i], 'state', state, unpack(ARGV, a+2, a+1+2*n))
    counts[state] = (counts[state] or 0) + 1
    added[i-1] = 1
  else
    added[i-1] = 0
  end
  a = a + 2 + 2*n
end
for state, n in pairs(counts) do redis.call('HINCRBY', KEYS[1], state, n) end
return added
`)

// AddJobs records new jobs, skipping any that exist already, and returns
// which ones were added. The jobs must belong to one batch.
func (s *Store) AddJobs(ctx context.Context, jobs []Job) ([]bool, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmd := s.addJobs(ctx, pipe, jobs)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("add jobs: %w", err)
	}
	return addedJobs(cmd, len(jobs))
}

// addJobs adds to pipe the creation of the jobs (of one batch) that do not
// exist yet; addedJobs reads its answer.
func (s *Store) addJobs(ctx context.Context, pipe redis.Pipeliner, jobs []Job) *redis.Cmd {
	keys := make([]string, 1, len(jobs)+1)
	keys[0] = s.countsKey(jobs[0].Batch)
	args := make([]any, 0, len(jobs)*16)
	for _, j := range jobs {
		if j.Enqueued.IsZero() {
			j.Enqueued = s.now()
		}
		keys = append(keys, s.jobKey(j.Batch, j.Row))
		fields := s.newJobFields(j)
		args = append(args, string(j.State), len(fields)/2)
		args = append(args, fields...)
	}
	return addJobsScript.Eval(ctx, pipe, keys, args...)
}

// addedJobs reads which of n jobs addJobs added.
func addedJobs(cmd *redis.Cmd, n int) ([]bool, error) {
	v, err := cmd.Slice()
	if err != nil {
		return nil, fmt.Errorf("add jobs: %w", err)
	}
	if len(v) != n {
		return nil, fmt.Errorf("add jobs: %d answers for %d jobs", len(v), n)
	}
	added := make([]bool, n)
	for i, x := range v {
		added[i] = x == int64(1)
	}
	return added, nil
}

// newJobFields are the fields of a new job's hash but its state: only
// those that are not empty, and its spec compacted and cut into pieces
// (see specFields).
func (s *Store) newJobFields(j Job) []any {
	f := make([]any, 0, 16)
	if j.Line != 0 {
		f = append(f, fLine, j.Line)
	}
	if j.Attempt != 0 {
		f = append(f, fAttempt, j.Attempt)
	}
	f = append(f, fEnqueued, j.Enqueued.UnixMilli())
	if j.FailCode != "" {
		f = append(f, fFailCode, j.FailCode)
	}
	if msg := s.clean(j.FailMsg); msg != "" {
		f = append(f, fFailMsg, msg)
	}
	return appendInputFields(appendSpecFields(f, j.Spec, j.Line), j.Input)
}

// Job reads one job.
func (s *Store) Job(ctx context.Context, batch string, row int) (Job, error) {
	v, err := s.rdb.HGetAll(ctx, s.jobKey(batch, row)).Result()
	if err != nil {
		return Job{}, fmt.Errorf("read job %s:%d: %w", batch, row, err)
	}
	if len(v) == 0 {
		return Job{}, fmt.Errorf("job %s:%d: %w", batch, row, ErrNotFound)
	}
	return decodeJob(batch, row, v)
}

func decodeJob(batch string, row int, v map[string]string) (Job, error) {
	j := Job{Batch: batch, Row: row, State: tasks.State(v[fState]), TaskID: v[fTaskID],
		FailCode: v[fFailCode], FailMsg: v[fFailMsg], LastError: v[fLastErr]}
	j.Line, _ = strconv.Atoi(v[fLine])
	j.Attempt, _ = strconv.Atoi(v[fAttempt])
	spec, err := decodeSpec(v, j.Line)
	if err != nil {
		return j, fmt.Errorf("job %s:%d: spec: %w", batch, row, err)
	}
	j.Spec = spec
	if j.Input, err = decodeInput(v); err != nil {
		return j, fmt.Errorf("job %s:%d: cells: %w", batch, row, err)
	}
	if u := v[fURLs]; u != "" {
		if err := json.Unmarshal([]byte(u), &j.ResultURLs); err != nil {
			return j, fmt.Errorf("job %s:%d: urls: %w", batch, row, err)
		}
	}
	if f := v[fFiles]; f != "" {
		if err := json.Unmarshal([]byte(f), &j.Files); err != nil {
			return j, fmt.Errorf("job %s:%d: files: %w", batch, row, err)
		}
	}
	j.Downloaded = msTime(v[fDownload])
	j.Enqueued = msTime(v[fEnqueued])
	j.Submitted = msTime(v[fSubmitted])
	j.Completed = msTime(v[fCompleted])
	if ms, err := strconv.ParseInt(v[fCost], 10, 64); err == nil {
		j.CostTime = time.Duration(ms) * time.Millisecond
	}
	return j, nil
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Jobs reads rows [from, from+n) of a batch; missing rows are skipped.
func (s *Store) Jobs(ctx context.Context, batch string, from, n int) ([]Job, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, n)
	for i := range n {
		cmds[i] = pipe.HGetAll(ctx, s.jobKey(batch, from+i))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read jobs of %s: %w", batch, err)
	}
	jobs := make([]Job, 0, n)
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		j, err := decodeJob(batch, from+i, c.Val())
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// JobsInState reads up to n jobs of a batch in state st, in row order,
// from row from on, looking at the states of at most scan rows (so a page
// of a large batch costs a bounded number of reads). It returns them and
// the row to go on from, or -1 when it looked up to the batch's last row.
func (s *Store) JobsInState(ctx context.Context, batch string, st tasks.State, from, n, scan int) ([]Job, int, error) {
	meta, err := s.Meta(ctx, batch)
	if err != nil {
		return nil, -1, err
	}
	var rows []int
	next := max(from, 0)
	for next < meta.Rows && len(rows) < n && scan > 0 {
		chunk := min(resultPage, meta.Rows-next, scan)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, chunk)
		for i := range chunk {
			cmds[i] = pipe.HGet(ctx, s.jobKey(batch, next+i), fState)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, -1, fmt.Errorf("read jobs of %s: %w", batch, err)
		}
		scan -= chunk
		for i, c := range cmds {
			if c.Val() != string(st) {
				continue
			}
			rows = append(rows, next+i)
			if len(rows) == n {
				chunk = i + 1
				break
			}
		}
		next += chunk
	}
	jobs := make([]Job, 0, len(rows))
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(rows))
	for i, row := range rows {
		cmds[i] = pipe.HGetAll(ctx, s.jobKey(batch, row))
	}
	if len(rows) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, -1, fmt.Errorf("read jobs of %s: %w", batch, err)
		}
	}
	for i, c := range cmds {
		if len(c.Val()) == 0 {
			continue
		}
		j, err := decodeJob(batch, rows[i], c.Val())
		if err != nil {
			return nil, -1, err
		}
		jobs = append(jobs, j)
	}
	if next >= meta.Rows {
		next = -1
	}
	return jobs, next, nil
}

// All yields every job of a batch in row order, reading a page per round
// trip; it stops at the first error, which it yields.
func (s *Store) All(ctx context.Context, batch string) iter.Seq2[Job, error] {
	return func(yield func(Job, error) bool) {
		meta, _, err := s.Batch(ctx, batch)
		if err != nil {
			yield(Job{}, err)
			return
		}
		for from := 0; from < meta.Rows; from += resultPage {
			jobs, err := s.Jobs(ctx, batch, from, min(resultPage, meta.Rows-from))
			if err != nil {
				yield(Job{}, err)
				return
			}
			for _, j := range jobs {
				if !yield(j, nil) {
					return
				}
			}
		}
	}
}

// Running returns the lease holders of a batch's rows whose provider task
// may be running: submitting, submitted, or ambiguous.
func (s *Store) Running(ctx context.Context, batch string) ([]string, error) {
	var holders []string
	for j, err := range s.All(ctx, batch) {
		if err != nil {
			return nil, err
		}
		switch j.State {
		case tasks.StateSubmitting, tasks.StateSubmitted, tasks.StateAmbiguous:
			holders = append(holders, j.Holder())
		}
	}
	return holders, nil
}

// transitionScript moves a job to a new state if it is in one of the
// allowed states (and, when given, at the expected attempt), setting fields
// and moving the batch counters in the same step. It also says what the
// move means for the batch's retention: whether it made the last row
// terminal, or took a row of a retired batch out of a terminal state. A
// move that finishes the batch stamps its meta with the time (finished_ms,
// removed again when a row leaves its terminal state), and, when asked, the
// move is counted in the batch's minute series (see Series): a row that
// became terminal, and the rows in flight after the move.
//
//	KEYS[1] job hash, KEYS[2] batch counts hash, KEYS[3] batch meta hash,
//	KEYS[4] batch series hash
//	ARGV[1] new state, ARGV[2] allowed states as ",a,b,", ARGV[3] attempt or "",
//	ARGV[4] terminal states as ",a,b,", ARGV[5] in-flight states as "a,b",
//	ARGV[6] "1" to count the move in the series, ARGV[7..] field/value pairs
//
// Returns {1, previous state, batch} when moved, where batch is "finished",
// "reopened" or "", {0, current state} when not, and {-1, ""} when the job
// does not exist.
var transitionScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {-1, ''} end
if not string.find(ARGV[2], ',' .. cur .. ',', 1, true) then return {0, cur} end
if ARGV[3] ~= '' and (redis.call('HGET', KEYS[1], 'attempt') or '0') ~= ARGV[3] then return {0, cur} end
if #ARGV > 6 then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], unpack(ARGV, 7))
else
  redis.call('HSET', KEYS[1], 'state', ARGV[1])
end
local batch = ''
if cur ~= ARGV[1] then
  redis.call('HINCRBY', KEYS[2], cur, -1)
  redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  local was = string.find(ARGV[4], ',' .. cur .. ',', 1, true)
  local is = string.find(ARGV[4], ',' .. ARGV[1] .. ',', 1, true)
  local t, live = redis.call('TIME'), redis.call('EXISTS', KEYS[3]) == 1
  if is and not was then
    local n, counts = 0, redis.call('HGETALL', KEYS[2])
    for i = 1, #counts, 2 do
      if string.find(ARGV[4], ',' .. counts[i] .. ',', 1, true) then n = n + tonumber(counts[i+1]) end
    end
    if n >= tonumber(redis.call('HGET', KEYS[3], 'rows') or '0') then
      batch = 'finished'
      if live then
        redis.call('HSET', KEYS[3], 'finished_ms', string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
      end
    end
  elseif was and not is then
    redis.call('HDEL', KEYS[3], 'finished_ms')
    if redis.call('PTTL', KEYS[3]) > 0 then batch = 'reopened' end
  end
  if ARGV[6] == '1' and live then
    local level = 0
    for st in string.gmatch(ARGV[5], '[^,]+') do
      level = level + tonumber(redis.call('HGET', KEYS[2], st) or '0')
    end
    local minute = tostring(math.floor(tonumber(t[1]) / 60))
    local f, p = 0, 0
    local old = redis.call('HGET', KEYS[4], minute)
    if old then
      local a, b = string.match(old, '^(%d+) (%d+)')
      f, p = tonumber(a), tonumber(b)
    end
    if is and not was then f = f + 1 end
    if level > p then p = level end
    redis.call('HSET', KEYS[4], minute, f .. ' ' .. p .. ' ' .. level)
    if not old and redis.call('PTTL', KEYS[4]) == -1 then
      local ttl = redis.call('PTTL', KEYS[3])
      if ttl > 0 then redis.call('PEXPIRE', KEYS[4], ttl) end
    end
  end
end
return {1, cur, batch}
`)

// terminalStates lists the terminal states as transitionScript reads them.
var terminalStates = func() string {
	var b strings.Builder
	b.WriteString(",")
	for _, st := range tasks.States {
		if st.Terminal() {
			b.WriteString(string(st) + ",")
		}
	}
	return b.String()
}()

// inFlightStates lists the states of rows whose provider task is running,
// as transitionScript reads them: the rows counted as in flight in a
// batch's series.
var inFlightStates = string(tasks.StateSubmitting) + "," + string(tasks.StateSubmitted)

// Change is one requested state transition.
type Change struct {
	// From lists the states the job may be in; otherwise nothing changes.
	From []tasks.State
	// To is the new state.
	To tasks.State
	// Attempt, when not nil, must equal the job's attempt.
	Attempt *int
	// The fields below are written when set.
	TaskID     string        `json:",omitempty"`
	FailCode   string        `json:",omitempty"`
	FailMsg    string        `json:",omitempty"`
	ResultURLs []string      `json:",omitempty"`
	Submitted  time.Time     `json:",omitzero"`
	Completed  time.Time     `json:",omitzero"`
	CostTime   time.Duration `json:",omitempty"`
	LastError  *string       `json:",omitempty"`
	Files      []File        `json:",omitempty"`
	Downloaded time.Time     `json:",omitzero"`
	// NewAttempt, when not nil, replaces the job's attempt number.
	NewAttempt *int `json:",omitempty"`
	// ClearOutcome empties task id, fail code and message, result URLs,
	// times and files.
	ClearOutcome bool `json:",omitempty"`
	// ClearFailure empties fail code and message (an ambiguous row whose
	// task turned up).
	ClearFailure bool `json:",omitempty"`
	// Sync asks the journal, if any, to reach the disk before Transition
	// returns: set it on the steps that decide whether money is spent.
	Sync bool `json:"-"`
	// replayed marks a change a journal replay applies again: it happened
	// earlier, so it is left out of the batch's minute series.
	replayed bool
}

// ErrConflict is returned (wrapped in *ConflictError) when a job was not in
// any of the states a transition allows.
var ErrConflict = errors.New("job state conflict")

// ConflictError says which state a job was really in.
type ConflictError struct {
	Batch string
	Row   int
	State tasks.State
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("job %s:%d is %s", e.Batch, e.Row, e.State)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Transition applies c atomically and returns the state the job was in.
// A job in a state c does not allow gives a *ConflictError.
func (s *Store) Transition(ctx context.Context, batch string, row int, c Change) (tasks.State, error) {
	if !c.To.Valid() {
		return "", fmt.Errorf("transition %s:%d: %q is not a job state", batch, row, c.To)
	}
	c.FailMsg = s.clean(c.FailMsg)
	if c.LastError != nil {
		msg := s.clean(*c.LastError)
		c.LastError = &msg
	}
	var from strings.Builder
	from.WriteString(",")
	for _, st := range c.From {
		from.WriteString(string(st) + ",")
	}
	attempt := ""
	if c.Attempt != nil {
		attempt = strconv.Itoa(*c.Attempt)
	}
	series := "1"
	if c.replayed {
		series = ""
	}
	args := []any{string(c.To), from.String(), attempt, terminalStates, inFlightStates, series}
	if c.ClearOutcome {
		args = append(args, fTaskID, "", fFailCode, "", fFailMsg, "", fURLs, "", fSubmitted, "", fCompleted, "", fCost, "",
			fFiles, "", fDownload, "")
	}
	if c.ClearFailure {
		args = append(args, fFailCode, "", fFailMsg, "")
	}
	if c.TaskID != "" {
		args = append(args, fTaskID, c.TaskID)
	}
	if c.FailCode != "" || c.FailMsg != "" {
		args = append(args, fFailCode, c.FailCode, fFailMsg, c.FailMsg)
	}
	if c.ResultURLs != nil {
		b, _ := json.Marshal(c.ResultURLs)
		args = append(args, fURLs, string(b))
	}
	if !c.Submitted.IsZero() {
		args = append(args, fSubmitted, c.Submitted.UnixMilli())
	}
	if !c.Completed.IsZero() {
		args = append(args, fCompleted, c.Completed.UnixMilli())
	}
	if c.CostTime != 0 {
		args = append(args, fCost, c.CostTime.Milliseconds())
	}
	if c.LastError != nil {
		args = append(args, fLastErr, *c.LastError)
	}
	if c.NewAttempt != nil {
		args = append(args, fAttempt, *c.NewAttempt)
	}
	if c.Files != nil {
		b, _ := json.Marshal(c.Files)
		args = append(args, fFiles, string(b))
	}
	if !c.Downloaded.IsZero() {
		args = append(args, fDownload, c.Downloaded.UnixMilli())
	}
	res, err := transitionScript.Run(ctx, s.rdb,
		[]string{s.jobKey(batch, row), s.countsKey(batch), s.metaKey(batch), s.seriesKey(batch)}, args...).Slice()
	if err != nil {
		return "", fmt.Errorf("transition %s:%d to %s: %w", batch, row, c.To, err)
	}
	code, _ := res[0].(int64)
	prev, _ := res[1].(string)
	switch code {
	case 1:
		if err := s.record(Record{Kind: RecordTransition, Batch: batch, Row: row, Change: &c, Sync: c.Sync}); err != nil {
			return tasks.State(prev), err
		}
		return tasks.State(prev), s.afterTransition(ctx, batch, res[2])
	case -1:
		return "", fmt.Errorf("transition %s:%d: %w", batch, row, ErrNotFound)
	}
	return tasks.State(prev), &ConflictError{Batch: batch, Row: row, State: tasks.State(prev)}
}

// SetLastError records a transient error on a job without changing its state.
func (s *Store) SetLastError(ctx context.Context, batch string, row int, msg string) error {
	return s.rdb.HSet(ctx, s.jobKey(batch, row), fLastErr, s.clean(msg)).Err()
}

// Downloader queues the download of a succeeded row (worker.Queue).
type Downloader interface {
	Download(ctx context.Context, batch string, row, attempt int) error
}

// ResubmitOptions says which rows Resubmit takes.
type ResubmitOptions struct {
	// From is the state of the rows to resubmit (ambiguous, failed or budget).
	From tasks.State
	// Rebill also creates again the rows whose task may have been billed
	// (tasks.PossiblyBilled: a success whose video was not stored, answers
	// that could not be read, a task that never ended). Without it they are
	// left as they are and listed in ResubmitResult.Skipped.
	Rebill bool
}

// Skipped is a row Resubmit left alone, and why.
type Skipped struct {
	// Row is the row's index; Line its line in the CSV file; ID its id.
	Row, Line int
	ID        string
	// TaskID is the provider task that may have been billed.
	TaskID string
	// FailCode is the row's fail code.
	FailCode string
	// Reason says why the row was not created again.
	Reason string
}

// ResubmitResult says what Resubmit did.
type ResubmitResult struct {
	// Queued counts the rows queued again: to be created (and billed)
	// again, or, for a failed download, to be downloaded again.
	Queued int
	// Skipped lists the rows whose task may have been billed, left alone
	// because ResubmitOptions.Rebill was not set.
	Skipped []Skipped
}

// Resubmit moves every job of a batch in state opts.From back to queued
// under a new attempt number and queues its submit task. Each one is
// created again at the provider (and billed): callers use it only when an
// operator asks. A failed row whose video exists but could not be stored
// is downloaded again instead, when sub is also a Downloader. A row whose
// task may have been billed (tasks.PossiblyBilled) is created again only
// with opts.Rebill; otherwise it is listed in the result's Skipped.
func (s *Store) Resubmit(ctx context.Context, sub Submitter, id string, opts ResubmitOptions) (ResubmitResult, error) {
	var res ResubmitResult
	from := opts.From
	meta, _, err := s.Batch(ctx, id)
	if err != nil {
		return res, err
	}
	for start := 0; start < meta.Rows; start += resultPage {
		jobs, err := s.Jobs(ctx, id, start, min(resultPage, meta.Rows-start))
		if err != nil {
			return res, err
		}
		for _, j := range jobs {
			if j.State != from {
				continue
			}
			if d, ok := sub.(Downloader); ok && j.State == tasks.StateFailed && j.FailCode == tasks.CodeDownloadFailed && len(j.ResultURLs) > 0 {
				if _, err := s.Transition(ctx, id, j.Row, Change{From: []tasks.State{tasks.StateFailed}, To: tasks.StateSucceeded,
					Attempt: &j.Attempt, ClearFailure: true}); err != nil {
					if errors.Is(err, ErrConflict) {
						continue
					}
					return res, err
				}
				if err := d.Download(ctx, id, j.Row, j.Attempt); err != nil {
					return res, err
				}
				res.Queued++
				continue
			}
			if !opts.Rebill && tasks.PossiblyBilled(j.FailCode, j.TaskID != "") {
				res.Skipped = append(res.Skipped, Skipped{Row: j.Row, Line: j.Line, ID: j.Spec.ID, TaskID: j.TaskID,
					FailCode: j.FailCode, Reason: billedReason(j.FailCode)})
				continue
			}
			next := j.Attempt + 1
			if _, err := s.Transition(ctx, id, j.Row, Change{From: []tasks.State{from}, To: tasks.StateQueued,
				Attempt: &j.Attempt, NewAttempt: &next, ClearOutcome: true, Sync: true}); err != nil {
				if errors.Is(err, ErrConflict) {
					continue
				}
				return res, err
			}
			if err := sub.Submit(ctx, id, j.Row, next); err != nil {
				return res, err
			}
			res.Queued++
		}
	}
	return res, nil
}

// billedReason says, for a fail code tasks.PossiblyBilled accepts, why a
// row's task may have been billed.
func billedReason(code string) string {
	switch code {
	case tasks.CodeNoResult:
		return "the provider reported a success (billed) without a video URL"
	case tasks.CodeResultExpired:
		return "the video was created (billed) but its URL expired before it was stored"
	case tasks.CodeDownloadTooLarge:
		return "the video was created (billed) but is larger than download.max_bytes"
	case tasks.CodeDownloadFailed:
		return "the video was created (billed) but could not be stored, and cannot be downloaded again"
	case tasks.CodeAnswerUnreadable:
		return "the provider's answers about the task could not be read: it may have succeeded (billed)"
	case tasks.CodeTimedOut:
		return "the task never reported an end: it may have succeeded (billed)"
	case tasks.CodeTaskNotFound:
		return "the provider does not know the task it created: it may have been billed"
	}
	return "its task may have been billed"
}

// Cancel stops submitting a batch: it is marked canceled, so submits still
// queued end canceled, and rows queued or held by a budget are canceled at
// once. Tasks already created still finish and download. It returns how
// many rows it canceled.
func (s *Store) Cancel(ctx context.Context, id string) (int, error) {
	if err := s.SetCanceled(ctx, id); err != nil {
		return 0, err
	}
	meta, _, err := s.Batch(ctx, id)
	if err != nil {
		return 0, err
	}
	n := 0
	for start := 0; start < meta.Rows; start += resultPage {
		jobs, err := s.Jobs(ctx, id, start, min(resultPage, meta.Rows-start))
		if err != nil {
			return n, err
		}
		for _, j := range jobs {
			if j.State != tasks.StateQueued && j.State != tasks.StateBudget {
				continue
			}
			_, err := s.Transition(ctx, id, j.Row, Change{From: []tasks.State{tasks.StateQueued, tasks.StateBudget},
				To: tasks.StateCanceled, FailCode: tasks.CodeCanceled, FailMsg: "the batch was canceled before this row was submitted"})
			if err == nil {
				n++
				// A queued row may hold a budget reservation from a try that waited.
				err = s.Refund(ctx, id, j.Row, j.Attempt, j.Spec.Seconds())
			}
			if err != nil && !errors.Is(err, ErrConflict) {
				return n, err
			}
		}
	}
	return n, nil
}

package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/tasks"
)

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
		chunk := min(pageSize, meta.Rows-next, scan)
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

// pageSize is how many jobs All reads per round trip.
const pageSize = 500

// All yields every job of a batch in row order, reading a page per round
// trip; it stops at the first error, which it yields.
func (s *Store) All(ctx context.Context, batch string) iter.Seq2[Job, error] {
	return func(yield func(Job, error) bool) {
		meta, _, err := s.Get(ctx, batch)
		if err != nil {
			yield(Job{}, err)
			return
		}
		for from := 0; from < meta.Rows; from += pageSize {
			jobs, err := s.Jobs(ctx, batch, from, min(pageSize, meta.Rows-from))
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

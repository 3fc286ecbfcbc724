package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/tasks"
)

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

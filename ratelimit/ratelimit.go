// Package ratelimit holds the provider's account limits across every
// seedbatch process that shares one Redis: a request token bucket (GCRA) for
// creates and status reads together, and an in-flight semaphore of leases,
// one per provider task that has been created and has not yet ended.
//
// Every decision is one Lua script run on Redis's own clock, so processes on
// machines with skewed clocks agree, and a submit takes its request token
// and its lease together or not at all. All keys of one account share a hash
// tag, so the same scripts run on Redis Cluster:
//
//	<prefix>:{<scope>}:rate      GCRA theoretical arrival time (µs)
//	<prefix>:{<scope>}:leases    ZSET holder -> lease expiry (ms)
//	<prefix>:{<scope>}:cooldown  set for a while after the provider answers 429
//	<prefix>:{<scope>}:paused    the reason submitting is paused, if it is
//
// A lease outlives any one asynq task execution: it is taken before the
// create, renewed by each status read and released when the provider task
// ends. If its holder is lost, it expires after LeaseTTL.
//
// A part of the bucket's burst (PollReserve) is kept for status reads, which
// free the slots that submits wait for; a burst of submits can never starve
// them.
package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	// RequestsPerMinuteDefault stays under the provider's 10 000/min so that
	// a full burst on top of a full minute still fits.
	RequestsPerMinuteDefault = 9500
	BurstDefault             = 50
	PollReserveDefault       = 10
	MaxInFlightDefault       = 1000
	LeaseTTLDefault          = 10 * time.Minute
)

// Config describes one account's limits.
type Config struct {
	// Prefix namespaces the keys (required).
	Prefix string
	// Scope names the account (one API key) whose limits are shared
	// (required; never the key itself).
	Scope string
	// RequestsPerMinute is the sustained rate of creates and status reads.
	RequestsPerMinute int
	// Burst is how many requests may go at once after a quiet spell.
	Burst int
	// PollReserve is the part of Burst that only status reads may use.
	PollReserve int
	// MaxInFlight is the number of leases.
	MaxInFlight int
	// LeaseTTL is how long a lease lives without being renewed.
	LeaseTTL time.Duration
}

// WithDefaults returns c with zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	c.RequestsPerMinute = cmp.Or(c.RequestsPerMinute, RequestsPerMinuteDefault)
	c.Burst = cmp.Or(c.Burst, BurstDefault)
	c.PollReserve = cmp.Or(c.PollReserve, min(PollReserveDefault, c.Burst/2))
	c.MaxInFlight = cmp.Or(c.MaxInFlight, MaxInFlightDefault)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, LeaseTTLDefault)
	return c
}

func (c Config) validate() error {
	switch {
	case c.Prefix == "" || c.Scope == "":
		return errors.New("ratelimit: Prefix and Scope are required")
	case c.RequestsPerMinute <= 0:
		return errors.New("ratelimit: RequestsPerMinute must be positive")
	case c.Burst <= 0:
		return errors.New("ratelimit: Burst must be positive")
	case c.PollReserve < 0 || c.PollReserve >= c.Burst:
		return errors.New("ratelimit: PollReserve must be at least 0 and less than Burst")
	case c.MaxInFlight <= 0:
		return errors.New("ratelimit: MaxInFlight must be positive")
	case c.LeaseTTL < time.Second:
		return errors.New("ratelimit: LeaseTTL must be at least 1s")
	}
	return nil
}

// Reason says why a request was not admitted.
type Reason string

// Reasons for refusal.
const (
	ReasonRate     Reason = "rate"
	ReasonInFlight Reason = "in_flight"
	ReasonCooldown Reason = "cooldown"
	ReasonPaused   Reason = "paused"
)

// Result is the answer to an admission request.
type Result struct {
	// Allowed means the caller may send its request now.
	Allowed bool
	// RetryAfter is when asking again may succeed (zero when Allowed).
	RetryAfter time.Duration
	// Reason says which limit refused.
	Reason Reason
	// PauseReason is the operator-facing reason when Reason is ReasonPaused.
	PauseReason string
	// Held reports an allowed submit whose holder had a lease already (a
	// submit run again): its caller must not release a lease it did not take.
	Held bool
}

// Limiter enforces one account's limits. It is safe for concurrent use.
type Limiter struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys []string
}

// New returns a Limiter for cfg on rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s:{%s}:", cfg.Prefix, cfg.Scope)
	return &Limiter{rdb: rdb, cfg: cfg, keys: []string{
		base + "rate", base + "leases", base + "cooldown", base + "paused",
	}}, nil
}

// Config returns the limits in force.
func (l *Limiter) Config() Config { return l.cfg }

// inFlightRetry is how soon a submit refused for want of a lease asks again;
// leases come back whenever a task ends, at no predictable time.
const inFlightRetry = 500 * time.Millisecond

// interval is the GCRA emission interval in microseconds.
func (l *Limiter) interval() int64 {
	return max(1, int64(60e6/float64(l.cfg.RequestsPerMinute)))
}

// admit is shared by both admissions. KEYS: rate, leases, cooldown, paused.
// ARGV: interval µs, tolerance µs, holder, lease ttl ms, max in flight,
// mode (1 = submit: check pause and leases and take a lease; 0 = request:
// renew the holder's lease if holder is set).
var admit = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local holder = ARGV[3]
local ttl = tonumber(ARGV[4])
local maxn = tonumber(ARGV[5])
local submit = ARGV[6] == '1'
if submit then
  local reason = redis.call('GET', KEYS[4])
  if reason then return {0, 0, 'paused', reason} end
end
local cool = redis.call('PTTL', KEYS[3])
if cool > 0 then return {0, cool * 1000, 'cooldown', ''} end
local held = false
if submit then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowms)
  held = redis.call('ZSCORE', KEYS[2], holder) ~= false
  if not held and redis.call('ZCARD', KEYS[2]) >= maxn then
    return {0, -1, 'in_flight', ''}
  end
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local newtat = tat + interval
local over = newtat - now - tolerance
if over > 0 then return {0, over, 'rate', ''} end
redis.call('SET', KEYS[1], newtat, 'PX', math.floor((newtat - now) / 1000) + 1000)
if holder ~= '' then
  redis.call('ZADD', KEYS[2], nowms + ttl, holder)
end
if held then return {1, 1, '', ''} end
return {1, 0, '', ''}
`)

// AdmitSubmit asks to send one create for holder: it takes a request token
// (never from the poll reserve) and an in-flight lease together, or
// neither. Pauses and cool-downs refuse it.
func (l *Limiter) AdmitSubmit(ctx context.Context, holder string) (Result, error) {
	if holder == "" {
		return Result{}, errors.New("ratelimit: AdmitSubmit needs a holder")
	}
	tol := l.interval() * int64(l.cfg.Burst-l.cfg.PollReserve)
	return l.run(ctx, "submit", tol, holder, true)
}

// AdmitRequest asks to send one status read: it takes a request token (the
// poll reserve included) and, when holder is set, renews holder's lease.
// Only a cool-down refuses it, never a pause: polls must go on.
func (l *Limiter) AdmitRequest(ctx context.Context, holder string) (Result, error) {
	tol := l.interval() * int64(l.cfg.Burst)
	return l.run(ctx, "request", tol, holder, false)
}

func (l *Limiter) run(ctx context.Context, op string, tolerance int64, holder string, submit bool) (Result, error) {
	mode := "0"
	if submit {
		mode = "1"
	}
	v, err := admit.Run(ctx, l.rdb, l.keys, l.interval(), tolerance, holder,
		l.cfg.LeaseTTL.Milliseconds(), l.cfg.MaxInFlight, mode).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit %s: %w", op, err)
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("ratelimit %s: unexpected answer %v", op, v)
	}
	if ok, _ := v[0].(int64); ok == 1 {
		held, _ := v[1].(int64)
		return Result{Allowed: true, Held: held == 1}, nil
	}
	us, _ := v[1].(int64)
	reason, _ := v[2].(string)
	pause, _ := v[3].(string)
	res := Result{Reason: Reason(reason), PauseReason: pause, RetryAfter: time.Duration(us) * time.Microsecond}
	if us < 0 {
		res.RetryAfter = inFlightRetry
	}
	return res, nil
}

// Release frees holder's lease, if it has one.
func (l *Limiter) Release(ctx context.Context, holder string) error {
	if err := l.rdb.ZRem(ctx, l.keys[1], holder).Err(); err != nil {
		return fmt.Errorf("ratelimit release: %w", err)
	}
	return nil
}

var cooldown = redis.NewScript(`
local want = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < want then
  redis.call('SET', KEYS[1], '1', 'PX', want)
end
return 1
`)

// Cooldown makes every process refuse requests for d (or longer, if a
// longer cool-down is already running). Call it when the provider answers
// 429. d is capped at half the lease TTL: polls renew leases, and a longer
// silence would let every lease expire while its task still runs.
func (l *Limiter) Cooldown(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	d = min(d, l.cfg.LeaseTTL/2)
	if err := cooldown.Run(ctx, l.rdb, l.keys[2:3], max(d.Milliseconds(), 1)).Err(); err != nil {
		return fmt.Errorf("ratelimit cooldown: %w", err)
	}
	return nil
}

// Pause stops every process from submitting until Resume; reason is shown
// to operators. Status reads go on.
func (l *Limiter) Pause(ctx context.Context, reason string) error {
	if reason == "" {
		reason = "paused by an operator"
	}
	if err := l.rdb.Set(ctx, l.keys[3], reason, 0).Err(); err != nil {
		return fmt.Errorf("ratelimit pause: %w", err)
	}
	return nil
}

// Resume undoes Pause.
func (l *Limiter) Resume(ctx context.Context) error {
	if err := l.rdb.Del(ctx, l.keys[3]).Err(); err != nil {
		return fmt.Errorf("ratelimit resume: %w", err)
	}
	return nil
}

// Paused reports whether submitting is paused, and why.
func (l *Limiter) Paused(ctx context.Context) (string, bool, error) {
	reason, err := l.rdb.Get(ctx, l.keys[3]).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("ratelimit paused: %w", err)
	}
	return reason, true, nil
}

// InFlight counts the leases that have not expired.
func (l *Limiter) InFlight(ctx context.Context) (int, error) {
	t, err := l.rdb.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("ratelimit in flight: %w", err)
	}
	n, err := l.rdb.ZCount(ctx, l.keys[1], strconv.FormatInt(t.UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("ratelimit in flight: %w", err)
	}
	return int(n), nil
}

// Wait calls admit until it allows, refuses for longer than maxWait from
// now, or refuses because submitting is paused; it returns the last result.
// A handler uses it to absorb short waits in place and hand longer ones back
// to asynq.
func Wait(ctx context.Context, maxWait time.Duration, admit func(context.Context) (Result, error)) (Result, error) {
	deadline := time.Now().Add(maxWait)
	for {
		res, err := admit(ctx)
		if err != nil || res.Allowed || res.Reason == ReasonPaused {
			return res, err
		}
		if time.Now().Add(res.RetryAfter).After(deadline) {
			return res, nil
		}
		t := time.NewTimer(max(res.RetryAfter, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		case <-t.C:
		}
	}
}

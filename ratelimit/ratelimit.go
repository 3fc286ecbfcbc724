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
//	<prefix>:{<scope>}:limits    the account's limits, written once (Register)
//	<prefix>:{<scope>}:rate      GCRA theoretical arrival time (µs)
//	<prefix>:{<scope>}:leases    ZSET holder -> lease expiry (ms)
//	<prefix>:{<scope>}:cooldown  set for a while after the provider answers 429
//	<prefix>:{<scope>}:paused    the reason submitting is paused, if it is
//	<prefix>:{<scope>}:readded   count of expired leases a status read put back
//	<prefix>:{<scope>}:free      free-slot tokens: one pushed per lease released
//	<prefix>:{<scope>}:started   ZSET holder -> when its lease was taken (ms)
//
// The limits are the account's, not a process's: the first process to
// Register stores them, every script reads them from Redis, and a process
// configured otherwise refuses to start (see [MismatchError]) until an
// operator replaces them. So a worker started with another time scale or
// limit can never drain or overfill the shared bucket.
//
// A lease outlives any one asynq task execution: it is taken before the
// create, renewed by each status read and released when the provider task
// ends. If its holder is lost, it expires after LeaseTTL. Holders name one
// submit attempt of one row, so a resubmitted row never reuses the lease of
// an earlier attempt whose task may still run.
//
// A freed slot is refilled at once, whatever process frees it: releasing a
// lease (or finding one expired) pushes a token on the free list, and a
// submit waiting for a slot blocks on that list (BLPOP), so it wakes within
// a round trip of the release instead of on a timer. The lease set stays
// the truth: a token only says "look again", a woken submit that loses the
// race waits again, and a lost token costs at most SlotPoll.
//
// A part of the bucket's burst (CreateReserve) is kept for creates: a slot
// freed is refilled before the status reads of other tasks, which can only
// wait. Creates can never crowd out reads for long, since each needs a
// slot that a read freed.
package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	// RequestsPerMinuteDefault stays under the provider's 10 000/min so that
	// a full burst on top of a full minute still fits.
	RequestsPerMinuteDefault = 9500
	BurstDefault             = 50
	CreateReserveDefault     = 20
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
	// CreateReserve is the part of Burst that only creates may use.
	CreateReserve int
	// MaxInFlight is the number of leases.
	MaxInFlight int
	// LeaseTTL is how long a lease lives without being renewed.
	LeaseTTL time.Duration
}

// WithDefaults returns c with zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	c.RequestsPerMinute = cmp.Or(c.RequestsPerMinute, RequestsPerMinuteDefault)
	c.Burst = cmp.Or(c.Burst, BurstDefault)
	c.CreateReserve = cmp.Or(c.CreateReserve, min(CreateReserveDefault, c.Burst/2))
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
	case c.CreateReserve < 0 || c.CreateReserve >= c.Burst:
		return errors.New("ratelimit: CreateReserve must be at least 0 and less than Burst")
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
	// Readded reports an allowed status read whose holder's lease had
	// expired and was put back, possibly above the limit.
	Readded bool
	// Delay is how long after the admission the request may be sent: the
	// token it took comes due then (only WaitSubmit and WaitRequest take
	// tokens ahead, and they wait it out before returning).
	Delay time.Duration
	// Waited is how long WaitSubmit or WaitRequest waited in place, and
	// WaitedFor the limit it last waited for ("" if it did not wait).
	Waited    time.Duration
	WaitedFor Reason
}

// Limiter enforces one account's limits. It is safe for concurrent use.
type Limiter struct {
	rdb  redis.UniversalClient
	cfg  Config
	keys []string
}

// Indexes into Limiter.keys; every script takes the keys it needs in this
// order.
const (
	keyLimits = iota
	keyRate
	keyLeases
	keyCooldown
	keyPaused
	keyReadded
	keyFree
	keyStarted
)

// New returns a Limiter for cfg on rdb.
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s:{%s}:", cfg.Prefix, cfg.Scope)
	return &Limiter{rdb: rdb, cfg: cfg, keys: []string{
		base + "limits", base + "rate", base + "leases", base + "cooldown", base + "paused", base + "readded",
		base + "free", base + "started",
	}}, nil
}

// Config returns the limits in force.
func (l *Limiter) Config() Config { return l.cfg }

// inFlightRetry is how soon a submit refused for want of a lease asks again;
// leases come back whenever a task ends, at no predictable time.
const inFlightRetry = 500 * time.Millisecond

// Fields of the limits hash.
const (
	fieldRPM           = "requests_per_minute"
	fieldBurst         = "burst"
	fieldCreateReserve = "create_reserve"
	fieldMaxInFlight   = "max_in_flight"
	fieldLeaseTTL      = "lease_ttl_ms"
)

// registerScript stores the limits unless some are stored (or replace is
// set) and returns the stored ones.
//
//	KEYS[1] limits. ARGV: rpm, burst, poll reserve, max in flight,
//	lease ttl ms, replace ("1" or "0").
var registerScript = redis.NewScript(`
if ARGV[6] == '1' or redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], '` + fieldRPM + `', ARGV[1], '` + fieldBurst + `', ARGV[2],
    '` + fieldCreateReserve + `', ARGV[3], '` + fieldMaxInFlight + `', ARGV[4], '` + fieldLeaseTTL + `', ARGV[5])
end
return redis.call('HMGET', KEYS[1], '` + fieldRPM + `', '` + fieldBurst + `', '` + fieldCreateReserve + `',
  '` + fieldMaxInFlight + `', '` + fieldLeaseTTL + `')
`)

// MismatchError is returned by Register when the account's limits stored in
// Redis differ from this process's configuration.
type MismatchError struct {
	// Stored are the limits in Redis; Wanted this process's.
	Stored, Wanted Config
}

func (e *MismatchError) Error() string {
	var diffs []string
	add := func(name string, stored, wanted any) {
		if stored != wanted {
			diffs = append(diffs, fmt.Sprintf("%s %v stored, %v here", name, stored, wanted))
		}
	}
	add("requests per minute", e.Stored.RequestsPerMinute, e.Wanted.RequestsPerMinute)
	add("burst", e.Stored.Burst, e.Wanted.Burst)
	add("create reserve", e.Stored.CreateReserve, e.Wanted.CreateReserve)
	add("max in flight", e.Stored.MaxInFlight, e.Wanted.MaxInFlight)
	add("lease ttl", e.Stored.LeaseTTL, e.Wanted.LeaseTTL)
	return "the account's limits in Redis differ from this process's configuration (" + strings.Join(diffs, "; ") +
		"): every process using one API key must hold the same limits"
}

// Register stores this process's limits as the account's, unless limits are
// stored already; then it checks that they are the same and returns a
// *MismatchError if not. Every process that admits requests registers once
// at start.
func (l *Limiter) Register(ctx context.Context) error {
	stored, err := l.register(ctx, false)
	if err != nil {
		return err
	}
	if stored != l.limits() {
		return &MismatchError{Stored: stored, Wanted: l.limits()}
	}
	return nil
}

// Replace stores this process's limits as the account's, whatever is stored:
// every process sharing the account uses them from its next request on.
func (l *Limiter) Replace(ctx context.Context) error {
	_, err := l.register(ctx, true)
	return err
}

// Stored returns the account's limits as stored in Redis, and false when
// none are stored yet.
func (l *Limiter) Stored(ctx context.Context) (Config, bool, error) {
	v, err := l.rdb.HMGet(ctx, l.keys[keyLimits], fieldRPM, fieldBurst, fieldCreateReserve, fieldMaxInFlight, fieldLeaseTTL).Result()
	if err != nil {
		return Config{}, false, fmt.Errorf("ratelimit limits: %w", err)
	}
	if v[0] == nil {
		return Config{}, false, nil
	}
	c, err := l.parseLimits(v)
	return c, err == nil, err
}

func (l *Limiter) register(ctx context.Context, replace bool) (Config, error) {
	c := l.cfg
	v, err := registerScript.Run(ctx, l.rdb, l.keys[keyLimits:keyLimits+1], c.RequestsPerMinute, c.Burst, c.CreateReserve,
		c.MaxInFlight, c.LeaseTTL.Milliseconds(), boolArg(replace)).Slice()
	if err != nil {
		return Config{}, fmt.Errorf("ratelimit register: %w", err)
	}
	return l.parseLimits(v)
}

// limits is the part of the config that Register stores.
func (l *Limiter) limits() Config {
	return Config{RequestsPerMinute: l.cfg.RequestsPerMinute, Burst: l.cfg.Burst, CreateReserve: l.cfg.CreateReserve,
		MaxInFlight: l.cfg.MaxInFlight, LeaseTTL: l.cfg.LeaseTTL}
}

func (l *Limiter) parseLimits(v []any) (Config, error) {
	n := make([]int64, len(v))
	for i, x := range v {
		s, _ := x.(string)
		var err error
		if n[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return Config{}, fmt.Errorf("ratelimit limits: field %d: %q is not a number", i, s)
		}
	}
	return Config{RequestsPerMinute: int(n[0]), Burst: int(n[1]), CreateReserve: int(n[2]), MaxInFlight: int(n[3]),
		LeaseTTL: time.Duration(n[4]) * time.Millisecond}, nil
}

// errNoLimits is the error the scripts raise when the account has no
// limits stored, as after Redis lost its data.
const errNoLimits = "NOLIMITS"

// admit is shared by both admissions; the limits come from the limits hash.
//
//	KEYS: limits, rate, leases, cooldown, paused, readded, free, started.
//	ARGV: holder, mode ("1" = submit: check pause and leases and take a
//	lease; "0" = request: renew the holder's lease if holder is set),
//	reserve (µs: a token that comes due within it is taken now, to be
//	used that much later; 0 takes only a token due now; a read takes one
//	at most create_reserve-1 tokens ahead, so that it never delays a
//	create). A refusal for the rate says when asking again may succeed.
//
// Returns {allowed, µs or flag, reason, pause reason[, delay µs]}. For an
// allowed submit the second value is 1 when the holder had a lease
// already; for an allowed request it is 1 when the holder's lease had
// expired and was put back (counted in readded). A token taken ahead of
// time (GCRA's reservation) says how long to wait before sending, so that
// many waiters each get a time of their own instead of all asking again
// at once.
var admit = redis.NewScript(`
local lim = redis.call('HMGET', KEYS[1], '` + fieldRPM + `', '` + fieldBurst + `', '` + fieldCreateReserve + `',
  '` + fieldMaxInFlight + `', '` + fieldLeaseTTL + `')
if not lim[1] then return redis.error_reply('` + errNoLimits + ` account limits are not stored') end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)
local interval = math.max(1, math.floor(60000000 / tonumber(lim[1])))
local burst = tonumber(lim[2])
local maxn = tonumber(lim[4])
local ttl = tonumber(lim[5])
local holder = ARGV[1]
local submit = ARGV[2] == '1'
local tolerance = interval * (burst - tonumber(lim[3]))
if submit then
  tolerance = interval * burst
  local reason = redis.call('GET', KEYS[5])
  if reason then return {0, 0, 'paused', reason} end
end
local cool = redis.call('PTTL', KEYS[4])
if cool > 0 then return {0, cool * 1000, 'cooldown', ''} end
local flag = 0
if submit then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', nowms)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', nowms)
    for i = 1, #expired, 1000 do
      redis.call('ZREM', KEYS[8], unpack(expired, i, math.min(i + 999, #expired)))
    end
    for i = 1, math.min(#expired, maxn) do redis.call('LPUSH', KEYS[7], '1') end
    redis.call('LTRIM', KEYS[7], 0, maxn - 1)
  end
  if redis.call('ZSCORE', KEYS[3], holder) then
    flag = 1
  elseif redis.call('ZCARD', KEYS[3]) >= maxn then
    return {0, -1, 'in_flight', ''}
  end
end
local tat = tonumber(redis.call('GET', KEYS[2]) or '0')
if tat < now then tat = now end
local newtat = tat + interval
local over = newtat - now - tolerance
local reserve = tonumber(ARGV[3])
if not submit then
  -- A read may take a token ahead only as far as leaves the create
  -- reserve whole: a create right after it is still let in at once.
  reserve = math.min(reserve, math.max(0, (tonumber(lim[3]) - 1) * interval))
end
if over > reserve then return {0, over - reserve, 'rate', ''} end
redis.call('SET', KEYS[2], newtat, 'PX', math.floor((newtat - now) / 1000) + 1000)
if holder ~= '' then
  if not submit then
    local exp = redis.call('ZSCORE', KEYS[3], holder)
    if not exp or tonumber(exp) <= nowms then
      flag = 1
      redis.call('INCR', KEYS[6])
    end
  end
  redis.call('ZADD', KEYS[3], nowms + ttl, holder)
  redis.call('ZADD', KEYS[8], 'NX', nowms, holder)
end
return {1, flag, '', '', math.max(over, 0)}
`)

// AdmitSubmit asks to send one create for holder: it takes a request token
// (the create reserve included) and an in-flight lease together, or
// neither. Pauses and cool-downs refuse it.
func (l *Limiter) AdmitSubmit(ctx context.Context, holder string) (Result, error) {
	if holder == "" {
		return Result{}, errors.New("ratelimit: AdmitSubmit needs a holder")
	}
	return l.run(ctx, "submit", holder, true, 0)
}

// AdmitRequest asks to send one status read: it takes a request token
// (never from the create reserve) and, when holder is set, renews holder's
// lease.
// Only a cool-down refuses it, never a pause: polls must go on.
//
// A holder whose lease had expired gets it back, since its task still runs
// at the provider: Result.Readded says so, the readded counter counts it,
// and submits wait until the leases are under the limit again.
func (l *Limiter) AdmitRequest(ctx context.Context, holder string) (Result, error) {
	return l.run(ctx, "request", holder, false, 0)
}

func (l *Limiter) run(ctx context.Context, op string, holder string, submit bool, reserve time.Duration) (Result, error) {
	args := []any{holder, boolArg(submit), reserve.Microseconds()}
	v, err := admit.Run(ctx, l.rdb, l.keys, args...).Slice()
	if err != nil && strings.Contains(err.Error(), errNoLimits) {
		// Redis lost the account's limits (a restart without persistence):
		// store this process's, which Register checked, and ask again.
		if _, rerr := l.register(ctx, false); rerr != nil {
			return Result{}, fmt.Errorf("ratelimit %s: %w", op, rerr)
		}
		v, err = admit.Run(ctx, l.rdb, l.keys, args...).Slice()
	}
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit %s: %w", op, err)
	}
	if len(v) < 4 {
		return Result{}, fmt.Errorf("ratelimit %s: unexpected answer %v", op, v)
	}
	if ok, _ := v[0].(int64); ok == 1 {
		flag, _ := v[1].(int64)
		res := Result{Allowed: true, Held: submit && flag == 1, Readded: !submit && flag == 1}
		if len(v) > 4 {
			us, _ := v[4].(int64)
			res.Delay = time.Duration(us) * time.Microsecond
		}
		return res, nil
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

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// releaseScript frees a lease and, if there was one, pushes a free-slot
// token for a waiting submit.
//
//	KEYS: limits, leases, free, started. ARGV: holder.
var releaseScript = redis.NewScript(`
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local maxn = tonumber(redis.call('HGET', KEYS[1], '` + fieldMaxInFlight + `') or '1000')
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, maxn - 1)
return 1
`)

// Release frees holder's lease, if it has one, and wakes a submit waiting
// for a slot in any process.
func (l *Limiter) Release(ctx context.Context, holder string) error {
	keys := []string{l.keys[keyLimits], l.keys[keyLeases], l.keys[keyFree], l.keys[keyStarted]}
	if err := releaseScript.Run(ctx, l.rdb, keys, holder).Err(); err != nil {
		return fmt.Errorf("ratelimit release: %w", err)
	}
	return nil
}

// holdScript gives each holder a lease that expires one lease TTL from
// now, whatever the limit: the tasks they hold run at the provider.
//
//	KEYS: limits, leases, started. ARGV: holders.
var holdScript = redis.NewScript(`
local ttl = tonumber(redis.call('HGET', KEYS[1], '` + fieldLeaseTTL + `') or '0')
if ttl == 0 then return redis.error_reply('` + errNoLimits + ` account limits are not stored') end
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[2], nowms + ttl, ARGV[i])
  redis.call('ZADD', KEYS[3], 'NX', nowms, ARGV[i])
end
return #ARGV
`)

// Hold gives each holder a lease for one lease TTL, above the limit if it
// must be: a process that rebuilds its state (a resumed run on an embedded
// Redis) restores the leases of the tasks that still run at the provider,
// so that it does not create more than the provider allows in flight.
func (l *Limiter) Hold(ctx context.Context, holders ...string) error {
	if len(holders) == 0 {
		return nil
	}
	args := make([]any, len(holders))
	for i, h := range holders {
		args[i] = h
	}
	keys := []string{l.keys[keyLimits], l.keys[keyLeases], l.keys[keyStarted]}
	err := holdScript.Run(ctx, l.rdb, keys, args...).Err()
	if err != nil && strings.Contains(err.Error(), errNoLimits) {
		if _, err = l.register(ctx, false); err == nil {
			err = holdScript.Run(ctx, l.rdb, keys, args...).Err()
		}
	}
	if err != nil {
		return fmt.Errorf("ratelimit hold: %w", err)
	}
	return nil
}

// startedScript counts the leases taken more than ARGV[1] ms ago that are
// still held, and those taken within the last ARGV[2] ms.
//
//	KEYS: started.
var startedScript = redis.NewScript(`
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {redis.call('ZCOUNT', KEYS[1], '-inf', nowms - tonumber(ARGV[1])),
  redis.call('ZCOUNT', KEYS[1], '(' .. (nowms - tonumber(ARGV[2])), '+inf')}
`)

// Started counts the leases still held that were taken more than age ago,
// the tasks in flight that have run at least that long, and those taken
// within the last recent, the pace of creates. Poll planning uses them to
// count the tasks read now and the rate their reads can have.
func (l *Limiter) Started(ctx context.Context, age, recent time.Duration) (old, new int, err error) {
	v, err := startedScript.Run(ctx, l.rdb, l.keys[keyStarted:keyStarted+1], age.Milliseconds(), recent.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("ratelimit started: %w", err)
	}
	return int(v[0]), int(v[1]), nil
}

// Readded counts the expired leases that status reads have put back since
// the account's keys were created.
func (l *Limiter) Readded(ctx context.Context) (int, error) {
	n, err := l.rdb.Get(ctx, l.keys[keyReadded]).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ratelimit readded: %w", err)
	}
	return n, nil
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
	if err := cooldown.Run(ctx, l.rdb, l.keys[keyCooldown:keyCooldown+1], max(d.Milliseconds(), 1)).Err(); err != nil {
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
	if err := l.rdb.Set(ctx, l.keys[keyPaused], reason, 0).Err(); err != nil {
		return fmt.Errorf("ratelimit pause: %w", err)
	}
	return nil
}

// Resume undoes Pause.
func (l *Limiter) Resume(ctx context.Context) error {
	if err := l.rdb.Del(ctx, l.keys[keyPaused]).Err(); err != nil {
		return fmt.Errorf("ratelimit resume: %w", err)
	}
	return nil
}

// Paused reports whether submitting is paused, and why.
func (l *Limiter) Paused(ctx context.Context) (string, bool, error) {
	reason, err := l.rdb.Get(ctx, l.keys[keyPaused]).Result()
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
	n, err := l.rdb.ZCount(ctx, l.keys[keyLeases], strconv.FormatInt(t.UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("ratelimit in flight: %w", err)
	}
	return int(n), nil
}

// SlotPoll is how long a submit waiting for a slot blocks on the free
// list before it asks again anyway: the bound on a lost wake-up (a token
// pushed while nobody waited, a lease that expired unnoticed). Redis blocks
// in whole seconds.
const SlotPoll = time.Second

// WaitSubmit asks to send one create for holder, as AdmitSubmit does, and
// waits in place up to maxWait: for a slot, by blocking on the free list so
// that the release of a lease anywhere wakes it at once; for a token or a
// cool-down, for as long as the limiter says. It returns when admitted,
// when submitting is paused, or when the next chance is past maxWait; the
// result then says why and records how long it waited.
func (l *Limiter) WaitSubmit(ctx context.Context, holder string, maxWait time.Duration) (Result, error) {
	return l.wait(ctx, maxWait, holder, true)
}

// WaitRequest asks to send one status read, as AdmitRequest does, waiting
// in place up to maxWait for a token or a cool-down.
func (l *Limiter) WaitRequest(ctx context.Context, holder string, maxWait time.Duration) (Result, error) {
	return l.wait(ctx, maxWait, holder, false)
}

// wait admits a submit or a request as WaitSubmit and WaitRequest say. A
// token that comes due within the time left (for a read: within the
// create reserve) is taken at once and waited for, so that waiters queue
// in order; a read refused for the rate asks again after a jittered wait.
func (l *Limiter) wait(ctx context.Context, maxWait time.Duration, holder string, submit bool) (Result, error) {
	start := time.Now()
	deadline := start.Add(maxWait)
	var waitedFor Reason
	refusals := 0
	done := func(res Result, err error) (Result, error) {
		res.Waited, res.WaitedFor = time.Since(start), waitedFor
		return res, err
	}
	op := "request"
	if submit {
		op = "submit"
	}
	for {
		// Take a token ahead of time and wait for it (a read only as far as
		// the create reserve allows: see the admit script).
		res, err := l.run(ctx, op, holder, submit, max(time.Until(deadline), 0))
		if err != nil || res.Reason == ReasonPaused {
			return done(res, err)
		}
		if res.Allowed {
			if res.Delay <= 0 {
				return done(res, nil)
			}
			waitedFor = ReasonRate
			if err := sleep(ctx, res.Delay); err != nil {
				if submit && !res.Held {
					// The create will not be sent: give the slot back.
					_ = l.Release(context.WithoutCancel(ctx), holder)
				}
				return done(Result{Reason: ReasonRate}, err)
			}
			return done(res, nil)
		}
		waitedFor = res.Reason
		left := time.Until(deadline)
		if res.Reason == ReasonInFlight {
			if left < SlotPoll/2 {
				return done(res, nil)
			}
			// Block until a lease is released anywhere, or SlotPoll passes.
			err := l.rdb.BLPop(ctx, min(SlotPoll, left), l.keys[keyFree]).Err()
			if err != nil && !errors.Is(err, redis.Nil) {
				if ctx.Err() != nil {
					return done(res, ctx.Err())
				}
				return done(res, fmt.Errorf("ratelimit wait for a slot: %w", err))
			}
			continue
		}
		if res.RetryAfter > left {
			return done(res, nil)
		}
		// Waiters refused together spread out, and further each time they
		// are refused again: many reads waiting for a busy bucket must not
		// all ask again whenever a token comes due.
		refusals++
		backoff := min(time.Millisecond<<min(refusals, 8), maxBackoff)
		if err := sleep(ctx, res.RetryAfter+rand.N(backoff)); err != nil {
			return done(res, err)
		}
	}
}

// maxBackoff caps the random part of the wait of a read refused for the
// rate again and again.
const maxBackoff = 250 * time.Millisecond

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(max(d, time.Microsecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

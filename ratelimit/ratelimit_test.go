package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/internal/redistest"
)

func newLimiter(t *testing.T, cfg Config) (*Limiter, *redistest.Server) {
	t.Helper()
	rs := redistest.New(t)
	cfg.Prefix, cfg.Scope = rs.Prefix, "acct-test"
	l, err := New(rs.Client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, rs
}

func mustAdmit(t *testing.T, res Result, err error, want bool, reason Reason) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed != want || (!want && res.Reason != reason) {
		t.Fatalf("result = %+v, want allowed=%v reason=%q", res, want, reason)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []Config{
		{Scope: "a"},
		{Prefix: "p", Scope: "a", Burst: 5, CreateReserve: 5},
		{Prefix: "p", Scope: "a", RequestsPerMinute: -1},
		{Prefix: "p", Scope: "a", LeaseTTL: time.Millisecond},
	}
	for i, c := range tests {
		if _, err := New(nil, c); err == nil {
			t.Errorf("config %d: %+v accepted", i, c)
		}
	}
}

func TestBurstAndCreateReserve(t *testing.T) {
	ctx := context.Background()
	// 60/min is one token a second: nothing refills during the test.
	l, _ := newLimiter(t, Config{RequestsPerMinute: 60, Burst: 5, CreateReserve: 2, MaxInFlight: 100})
	for range 3 {
		res, err := l.AdmitRequest(ctx, "")
		mustAdmit(t, res, err, true, "")
	}
	res, err := l.AdmitRequest(ctx, "")
	mustAdmit(t, res, err, false, ReasonRate)
	if res.RetryAfter <= 0 || res.RetryAfter > time.Second {
		t.Errorf("retry after %v, want (0, 1s]", res.RetryAfter)
	}
	// The reserve is still there for creates, which refill freed slots.
	for i := range 2 {
		res, err := l.AdmitSubmit(ctx, fmt.Sprintf("job-%d", i))
		mustAdmit(t, res, err, true, "")
	}
	res, err = l.AdmitSubmit(ctx, "job-2")
	mustAdmit(t, res, err, false, ReasonRate)
	if n, _ := l.InFlight(ctx); n != 2 {
		t.Errorf("in flight = %d after a refused submit, want 2 (all or nothing)", n)
	}
}

func TestInFlightLeases(t *testing.T) {
	ctx := context.Background()
	l, _ := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 2})
	for _, h := range []string{"a", "b"} {
		res, err := l.AdmitSubmit(ctx, h)
		mustAdmit(t, res, err, true, "")
	}
	res, err := l.AdmitSubmit(ctx, "c")
	mustAdmit(t, res, err, false, ReasonInFlight)
	// A holder that already has a lease (a submit run again) is not refused.
	res, err = l.AdmitSubmit(ctx, "a")
	mustAdmit(t, res, err, true, "")
	if err := l.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	res, err = l.AdmitSubmit(ctx, "c")
	mustAdmit(t, res, err, true, "")
	if n, err := l.InFlight(ctx); err != nil || n != 2 {
		t.Errorf("in flight = %d, %v; want 2", n, err)
	}
}

func TestLeaseExpiresAndPollsRenew(t *testing.T) {
	ctx := context.Background()
	l, _ := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 2, LeaseTTL: time.Second})
	for _, h := range []string{"lost", "alive"} {
		res, err := l.AdmitSubmit(ctx, h)
		mustAdmit(t, res, err, true, "")
	}
	// "alive" is polled; "lost" is not.
	for range 4 {
		time.Sleep(300 * time.Millisecond)
		res, err := l.AdmitRequest(ctx, "alive")
		mustAdmit(t, res, err, true, "")
	}
	res, err := l.AdmitSubmit(ctx, "new")
	mustAdmit(t, res, err, true, "")
	res, err = l.AdmitSubmit(ctx, "another")
	mustAdmit(t, res, err, false, ReasonInFlight)
}

func TestCooldownAndPause(t *testing.T) {
	ctx := context.Background()
	l, _ := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100})
	if err := l.Cooldown(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// A shorter cool-down does not shorten a running one.
	if err := l.Cooldown(ctx, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	res, err := l.AdmitRequest(ctx, "")
	mustAdmit(t, res, err, false, ReasonCooldown)
	if res.RetryAfter < time.Second || res.RetryAfter > 2*time.Second {
		t.Errorf("retry after %v, want about 2s", res.RetryAfter)
	}
	res, err = l.AdmitSubmit(ctx, "x")
	mustAdmit(t, res, err, false, ReasonCooldown)

	l2, _ := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100})
	if err := l2.Pause(ctx, "the provider refused the API key"); err != nil {
		t.Fatal(err)
	}
	res, err = l2.AdmitSubmit(ctx, "x")
	mustAdmit(t, res, err, false, ReasonPaused)
	if res.PauseReason != "the provider refused the API key" {
		t.Errorf("pause reason = %q", res.PauseReason)
	}
	res, err = l2.AdmitRequest(ctx, "y")
	mustAdmit(t, res, err, true, "") // polls go on while paused
	if reason, paused, err := l2.Paused(ctx); err != nil || !paused || reason == "" {
		t.Errorf("Paused = %q, %v, %v", reason, paused, err)
	}
	if err := l2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = l2.AdmitSubmit(ctx, "x")
	mustAdmit(t, res, err, true, "")
}

// TestConcurrentClients races many connections, as many processes would,
// and checks that neither limit is ever exceeded.
func TestConcurrentClients(t *testing.T) {
	ctx := context.Background()
	const (
		rpm   = 6000 // 100 per second
		burst = 10
		slots = 7
	)
	l, rs := newLimiter(t, Config{RequestsPerMinute: rpm, Burst: burst, CreateReserve: 1, MaxInFlight: slots})
	var admitted, maxHeld, held atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		opt, _ := redis.ParseURL(rs.URL)
		c := redis.NewClient(opt)
		defer c.Close()
		lg, _ := New(c, l.Config())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(start) < 700*time.Millisecond; i++ {
				h := fmt.Sprintf("g%d-%d", g, i)
				res, err := lg.AdmitSubmit(ctx, h)
				if err != nil {
					t.Error(err)
					return
				}
				if !res.Allowed {
					i--
					time.Sleep(time.Millisecond)
					continue
				}
				admitted.Add(1)
				n := held.Add(1)
				for {
					m := maxHeld.Load()
					if n <= m || maxHeld.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				held.Add(-1)
				if err := lg.Release(ctx, h); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	limit := int64(burst) + int64(float64(rpm)/60*elapsed.Seconds()) + 1
	if got := admitted.Load(); got > limit {
		t.Errorf("admitted %d requests in %v, limit %d", got, elapsed, limit)
	}
	if admitted.Load() == 0 {
		t.Error("nothing admitted")
	}
	if maxHeld.Load() > slots {
		t.Errorf("%d leases held at once, limit %d", maxHeld.Load(), slots)
	}
}

func TestWaitGivesUpOnALongRefusal(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, _ := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100})
	if err := l.Cooldown(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := l.WaitRequest(ctx, "", time.Second)
	if err != nil || res.Allowed || res.Reason != ReasonCooldown || time.Since(start) > 500*time.Millisecond {
		t.Errorf("WaitRequest during a long cool-down = %+v, %v after %v; want an immediate refusal", res, err, time.Since(start))
	}
	// A short wait for a token is waited out in place.
	l2, _ := newLimiter(t, Config{RequestsPerMinute: 600, Burst: 1, CreateReserve: 0, MaxInFlight: 10})
	mustAdmit(t, l2.admitSubmit(t, "a"), nil, true, "")
	res, err = l2.WaitSubmit(ctx, "b", 2*time.Second)
	if err != nil || !res.Allowed || res.WaitedFor != ReasonRate || res.Waited < 50*time.Millisecond {
		t.Errorf("WaitSubmit for a token = %+v, %v; want admitted after waiting for the rate", res, err)
	}
}

// releaserEnv makes the test binary, run again as a child process, release
// one lease and print when it did: TestReleaserProcess.
const releaserEnv = "SEEDBATCH_RATELIMIT_RELEASER"

// TestReleaserProcess is the other process of TestReleaseWakesAWaitingSubmit.
func TestReleaserProcess(t *testing.T) {
	v := os.Getenv(releaserEnv)
	if v == "" {
		t.Skip("only run as a child process")
	}
	var url, prefix, holder string
	if _, err := fmt.Sscan(v, &url, &prefix, &holder); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	l, err := New(c, Config{Prefix: prefix, Scope: "acct-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(t.Context(), holder); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("released-at %d\n", time.Now().UnixNano())
}

// TestReleaseWakesAWaitingSubmit holds the only slot, makes a submit wait
// for it, and releases it from another process: the submit must be let in
// at once, well before the 500 ms retry it once slept on.
func TestReleaseWakesAWaitingSubmit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, rs := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 1})
	mustAdmit(t, l.admitSubmit(t, "b:0:0"), nil, true, "")
	admitted := make(chan time.Time, 1)
	go func() {
		res, err := l.WaitSubmit(ctx, "b:1:0", 10*time.Second)
		if err != nil || !res.Allowed {
			t.Errorf("WaitSubmit = %+v, %v", res, err)
		}
		admitted <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond) // the submit is refused and blocks
	cmd := exec.Command(os.Args[0], "-test.run=^TestReleaserProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), releaserEnv+"="+rs.URL+" "+rs.Prefix+" b:0:0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("releaser: %v\n%s", err, out)
	}
	var ns int64
	if i := strings.Index(string(out), "released-at "); i < 0 {
		t.Fatalf("releaser said %q", out)
	} else if _, err := fmt.Sscan(string(out[i+len("released-at "):]), &ns); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-admitted:
		if lag := at.Sub(time.Unix(0, ns)); lag > 250*time.Millisecond {
			t.Errorf("the waiting submit was let in %v after the release in another process, want well under 500 ms", lag)
		} else {
			t.Logf("woken %v after the release", lag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting submit was never let in")
	}
}

// TestLostWakeUpStillRefills frees the only slot without a token (a lease
// that expired, or a token lost): the waiting submit must still get the
// slot within about SlotPoll.
func TestLostWakeUpStillRefills(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, rs := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 1})
	mustAdmit(t, l.admitSubmit(t, "b:0:0"), nil, true, "")
	admitted := make(chan time.Time, 1)
	go func() {
		res, err := l.WaitSubmit(ctx, "b:1:0", 10*time.Second)
		if err != nil || !res.Allowed {
			t.Errorf("WaitSubmit = %+v, %v", res, err)
		}
		admitted <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond)
	freed := time.Now()
	if err := rs.Client.ZRem(ctx, l.keys[keyLeases], "b:0:0").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-admitted:
		if lag := at.Sub(freed); lag > SlotPoll+time.Second {
			t.Errorf("slot refilled %v after it was freed without a token, want within about %v", lag, SlotPoll)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a slot freed without a token was never refilled")
	}
}

func BenchmarkAdmitSubmitRelease(b *testing.B) {
	ctx := context.Background()
	rs := redistest.New(b)
	l, err := New(rs.Client, Config{Prefix: rs.Prefix, Scope: "bench", RequestsPerMinute: 1 << 30, Burst: 1 << 20, MaxInFlight: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h := fmt.Sprintf("%p-%d", pb, i)
			i++
			if _, err := l.AdmitSubmit(ctx, h); err != nil {
				b.Error(err)
				return
			}
			_ = l.Release(ctx, h)
		}
	})
}

// TestLimitsAreTheAccounts checks that the first process's limits are the
// account's: a process configured otherwise is refused, and replacing the
// stored limits changes what every process enforces.
func TestLimitsAreTheAccounts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	first, rs := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 1})
	if err := first.Register(ctx); err != nil {
		t.Fatal(err)
	}
	// A second process with another time scale multiplies its rate and
	// raises the in-flight limit: it must not start.
	other, err := New(rs.Client, Config{Prefix: rs.Prefix, Scope: "acct-test", RequestsPerMinute: 1200000, Burst: 100, MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	var me *MismatchError
	if err := other.Register(ctx); !errors.As(err, &me) {
		t.Fatalf("Register with other limits = %v, want a *MismatchError", err)
	} else if !strings.Contains(err.Error(), "max in flight 1 stored, 2 here") {
		t.Errorf("mismatch message = %q", err)
	}
	// Even without registering, its scripts use the stored limits.
	mustAdmit(t, first.admitSubmit(t, "a"), nil, true, "")
	res, err := other.AdmitSubmit(ctx, "b")
	mustAdmit(t, res, err, false, ReasonInFlight)

	if err := other.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	stored, ok, err := first.Stored(ctx)
	if err != nil || !ok || stored.MaxInFlight != 2 {
		t.Fatalf("Stored = %+v, %v, %v; want max in flight 2", stored, ok, err)
	}
	res, err = first.AdmitSubmit(ctx, "b")
	mustAdmit(t, res, err, true, "") // the first process enforces the replaced limit at once
	if err := first.Register(ctx); !errors.As(err, &me) {
		t.Errorf("the first process now disagrees with the stored limits, Register = %v", err)
	}
}

func (l *Limiter) admitSubmit(t *testing.T, holder string) Result {
	t.Helper()
	res, err := l.AdmitSubmit(t.Context(), holder)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestLostLimitsAreStoredAgain checks that a limiter whose limits vanished
// (Redis restarted empty) stores its own again instead of failing.
func TestLostLimitsAreStoredAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, rs := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 5})
	if err := l.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rs.Client.Del(ctx, l.keys[keyLimits]).Err(); err != nil {
		t.Fatal(err)
	}
	mustAdmit(t, l.admitSubmit(t, "a"), nil, true, "")
	if stored, ok, err := l.Stored(ctx); err != nil || !ok || stored != l.limits() {
		t.Errorf("Stored = %+v, %v, %v; want this process's limits", stored, ok, err)
	}
}

// TestExpiredLeasePutBackByAPollIsCounted checks that a status read of a
// task whose lease expired puts the lease back, says so and counts it, and
// that submits then wait while the leases are over the limit.
func TestExpiredLeasePutBackByAPollIsCounted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, rs := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 1, LeaseTTL: time.Second})
	mustAdmit(t, l.admitSubmit(t, "slow:0:0"), nil, true, "")
	// The lease expires (a worker stalled past the TTL) and another task
	// takes the slot.
	if err := rs.Client.ZAdd(ctx, l.keys[keyLeases], redis.Z{Score: 1, Member: "slow:0:0"}).Err(); err != nil {
		t.Fatal(err)
	}
	mustAdmit(t, l.admitSubmit(t, "fast:0:0"), nil, true, "")
	res, err := l.AdmitRequest(ctx, "slow:0:0")
	mustAdmit(t, res, err, true, "")
	if !res.Readded {
		t.Error("a poll that put back an expired lease did not say so")
	}
	if n, _ := l.Readded(ctx); n != 1 {
		t.Errorf("readded = %d, want 1", n)
	}
	if n, _ := l.InFlight(ctx); n != 2 {
		t.Errorf("in flight = %d, want 2 (over the limit of 1, and known)", n)
	}
	res, err = l.AdmitSubmit(ctx, "next:0:0")
	mustAdmit(t, res, err, false, ReasonInFlight)
	// A poll of a live lease renews it without counting.
	res, err = l.AdmitRequest(ctx, "fast:0:0")
	mustAdmit(t, res, err, true, "")
	if res.Readded {
		t.Error("renewing a live lease was counted as putting it back")
	}
	if n, _ := l.Readded(ctx); n != 1 {
		t.Errorf("readded = %d after a renewal, want 1", n)
	}
}

// TestHoldRestoresLeases checks that Hold gives leases above the limit and
// that submits then wait for them.
func TestHoldRestoresLeases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, _ := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 2})
	if err := l.Hold(ctx, "b:0:0", "b:1:0", "b:2:0"); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.InFlight(ctx); n != 3 {
		t.Errorf("in flight = %d after holding 3, want 3", n)
	}
	mustAdmit(t, l.admitSubmit(t, "b:3:0"), nil, false, ReasonInFlight)
	for _, h := range []string{"b:0:0", "b:1:0"} {
		if err := l.Release(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	mustAdmit(t, l.admitSubmit(t, "b:3:0"), nil, true, "")
}

// TestWaitersTakeTokensInTurn makes many creates wait for a slow bucket at
// once: each must take a token of its own ahead of time and wait for it,
// so the rate holds and the waiters do not all ask again whenever a token
// comes due.
func TestWaitersTakeTokensInTurn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, rs := newLimiter(t, Config{})
	opt, err := redis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	var calls atomic.Int64
	c.AddHook(countHook{&calls})
	l, err := New(c, Config{Prefix: rs.Prefix, Scope: "acct-turn", RequestsPerMinute: 1200, Burst: 1, CreateReserve: 0, MaxInFlight: 100}) // 20 a second
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Register(ctx); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	const waiters = 30
	start := time.Now()
	times := make(chan time.Duration, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.WaitSubmit(ctx, fmt.Sprintf("b:%d:0", i), 10*time.Second)
			if err != nil || !res.Allowed {
				t.Errorf("WaitSubmit = %+v, %v", res, err)
			}
			times <- time.Since(start)
		}()
	}
	wg.Wait()
	close(times)
	var last time.Duration
	for d := range times {
		last = max(last, d)
	}
	// 30 tokens at 20 a second, the first one at once: about 1.45 s.
	if last < 1300*time.Millisecond || last > 4*time.Second {
		t.Errorf("the last of %d waiters was let in after %v, want about 1.45 s", waiters, last)
	}
	if n := calls.Load(); n > waiters+5 {
		t.Errorf("%d admissions for %d waiters: they asked again together", n, waiters)
	}
}

// countHook counts the scripts a client runs.
type countHook struct{ n *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestStartedCountsLongRunningLeases checks that Started counts the leases
// held longer than an age, and forgets released and expired ones.
func TestStartedCountsLongRunningLeases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	l, rs := newLimiter(t, Config{RequestsPerMinute: 600000, Burst: 100, MaxInFlight: 10, LeaseTTL: time.Second})
	mustAdmit(t, l.admitSubmit(t, "old:0:0"), nil, true, "")
	mustAdmit(t, l.admitSubmit(t, "lost:0:0"), nil, true, "")
	time.Sleep(300 * time.Millisecond)
	mustAdmit(t, l.admitSubmit(t, "new:0:0"), nil, true, "")
	if n, recent, err := l.Started(ctx, 200*time.Millisecond, 200*time.Millisecond); err != nil || n != 2 || recent != 1 {
		t.Errorf("Started(200ms, 200ms) = %d, %d, %v; want 2 older and 1 recent", n, recent, err)
	}
	if err := l.Release(ctx, "old:0:0"); err != nil {
		t.Fatal(err)
	}
	// "lost" expires; the next submit's admission clears it.
	rs.Client.ZAdd(ctx, l.keys[keyLeases], redis.Z{Score: 1, Member: "lost:0:0"})
	mustAdmit(t, l.admitSubmit(t, "next:0:0"), nil, true, "")
	if n, _, err := l.Started(ctx, 200*time.Millisecond, 0); err != nil || n != 0 {
		t.Errorf("Started(200ms) after a release and an expiry = %d, %v; want 0", n, err)
	}
	if n, _, _ := l.Started(ctx, 0, 0); n != 2 {
		t.Errorf("Started(0) = %d, want 2 (new and next)", n)
	}
}

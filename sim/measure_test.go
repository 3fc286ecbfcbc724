package sim

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// fixedGeneration makes every task of b's simulator take exactly gen (at
// TimeScale 1), so that the statistics can be computed by hand.
func fixedGeneration(b *bundle, gen time.Duration) {
	b.sim.mu.Lock() // read under the lock by every create
	b.sim.generation = func([2]time.Duration) time.Duration { return gen }
	b.sim.mu.Unlock()
}

// step is one moment of a scripted client: the clock moves by advance, then
// the client reads every task it has not yet seen end (when read is set),
// then creates create tasks.
type step struct {
	advance time.Duration
	read    bool
	create  int
}

// play runs steps against b and returns the ids created.
func play(t *testing.T, b *bundle, steps []step) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	for _, st := range steps {
		b.clock.Advance(st.advance)
		if st.read {
			for _, id := range ids {
				if seen[id] {
					continue
				}
				if v := b.status(t, id); v.State == stateSuccess || v.State == stateFailed {
					seen[id] = true
				}
			}
		}
		for range st.create {
			ids = append(ids, b.create(t, promptBody(t, "scene "+strconv.Itoa(len(ids)), 4)))
		}
	}
	return ids
}

func TestBusyUtilization(t *testing.T) {
	t.Parallel()
	const gen = 40 * time.Second
	tests := []struct {
		name     string
		scale    float64
		steps    []step
		busy     float64
		window   float64 // provider seconds
		lag      LagStats
		requests float64
	}{
		{
			// 2 slots, 40 s tasks, every freed slot refilled the moment it
			// frees: window [0, 120 s], 6 tasks of 40 s inside it.
			name:  "instant refill",
			steps: []step{{0, false, 2}, {gen, true, 2}, {gen, true, 2}, {gen, true, 1}},
			busy:  1, window: 120,
			lag:      LagStats{Noticed: 6},
			requests: (7 + 6) / 7.0,
		},
		{
			// Each pair is noticed 10 s after it ends: window [0, 100 s],
			// busy 4 × 40 s of 2 × 100 s.
			name:  "a 10 s lag",
			steps: []step{{0, false, 2}, {50 * time.Second, true, 2}, {50 * time.Second, true, 1}},
			busy:  0.8, window: 100,
			lag:      LagStats{P50: 10, P99: 10, Noticed: 4},
			requests: (5 + 4) / 5.0,
		},
		{
			// Only one of the two freed slots refilled: window [0, 80 s],
			// busy 3 × 40 s of 2 × 80 s.
			name:  "a slot left idle",
			steps: []step{{0, false, 2}, {gen, true, 1}, {gen, true, 1}},
			busy:  0.75, window: 80,
			lag:      LagStats{Noticed: 3},
			requests: (4 + 3) / 4.0,
		},
		{
			// The second task comes 10 s after the first (the ramp: window
			// from 10 s), each freed slot is refilled at once, and the
			// last create is at 50 s; A's first 10 s and the tail after
			// 50 s do not count. Window [10, 50 s]: A 30 s, B 40 s, C 10 s.
			// C and D end at 80 and 90 s, read at 150 s.
			name: "start-up ramp and tail excluded",
			steps: []step{{0, false, 1}, {10 * time.Second, false, 1}, {30 * time.Second, true, 1},
				{10 * time.Second, true, 1}, {100 * time.Second, true, 0}},
			busy: 1, window: 40,
			lag:      LagStats{P50: 0, P99: 70, Noticed: 4},
			requests: (4 + 6) / 4.0, // B and C were also read before their end
		},
		{
			// Fewer creates than slots: no window; the task is never read.
			name:     "no steady state",
			steps:    []step{{0, false, 1}, {100 * time.Second, false, 0}},
			lag:      LagStats{NeverNoticed: 1},
			requests: 1,
		},
		{
			// At 10x, 40 s tasks take 4 s: windows and lags are reported in
			// provider seconds.
			name:  "compressed time",
			scale: 10,
			steps: []step{{0, false, 2}, {4 * time.Second, true, 2}, {5 * time.Second, true, 1}},
			// Window [0, 9 s] simulated; busy 4 × 4 s of 2 × 9 s.
			busy: 16.0 / 18, window: 90,
			lag:      LagStats{P50: 0, P99: 10, Noticed: 4},
			requests: (5 + 4) / 5.0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{MaxInFlight: 2, TimeScale: tt.scale})
			fixedGeneration(b, gen)
			play(t, b, tt.steps)
			st := b.sim.Stats()
			if !near(st.BusyUtilization, tt.busy) || !near(st.BusyWindow, tt.window) {
				t.Errorf("busy %.4f over %.2f s, want %.4f over %.2f s", st.BusyUtilization, st.BusyWindow, tt.busy, tt.window)
			}
			if !near(st.DetectionLag.P50, tt.lag.P50) || !near(st.DetectionLag.P99, tt.lag.P99) ||
				st.DetectionLag.Noticed != tt.lag.Noticed || st.DetectionLag.NeverNoticed != tt.lag.NeverNoticed {
				t.Errorf("lag %+v, want %+v", st.DetectionLag, tt.lag)
			}
			if !near(st.RequestsPerJob, tt.requests) || st.DuplicateCreates != 0 {
				t.Errorf("requests per job %.3f, duplicates %d; want %.3f, 0", st.RequestsPerJob, st.DuplicateCreates, tt.requests)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestDetectionLag checks what counts as noticing: only a status read
// answered 200 that shows the end, the first one only.
func TestDetectionLag(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 10, Burst: 100})
	fixedGeneration(b, 40*time.Second)
	early := b.create(t, promptBody(t, "read before its end", 4))
	errs := b.create(t, promptBody(t, "first reads fail "+MarkerStatus500, 4))
	unknown := b.create(t, promptBody(t, "never shows an end "+MarkerStatusUnknownState, 4))
	b.clock.Advance(30 * time.Second)
	b.status(t, early) // processing: not noticed
	b.clock.Advance(15 * time.Second)
	b.status(t, early) // 5 s after the end
	for range 2 {
		if a := b.do(t, "GET", statusPath(errs), testKey, ""); a.status != 500 {
			t.Fatalf("marked read: %d", a.status)
		}
	}
	b.clock.Advance(3 * time.Second)
	b.status(t, errs) // 8 s after the end: the 500s did not count
	b.status(t, unknown)
	b.clock.Advance(time.Minute)
	b.status(t, early) // a later read changes nothing
	st := b.sim.Stats()
	want := LagStats{P50: 5, P99: 8, Noticed: 2, NeverNoticed: 1}
	if st.DetectionLag != want {
		t.Fatalf("lag %+v, want %+v", st.DetectionLag, want)
	}
}

// TestDetectionLagCallback checks that a callback answered 200 counts as
// noticing, and a status read after it changes nothing.
func TestDetectionLagCallback(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int) int { return http.StatusOK })
	b := setup(t, Config{TimeScale: 2})
	fixedGeneration(b, 40*time.Second)
	id := b.create(t, cbBody(t, rc.url(), "a callback task"))
	b.clock.Advance(23 * time.Second) // 3 s simulated after the 20 s end
	b.sim.Stats()                     // finds the task ended: starts the delivery
	rc.waitHits(t, 1)
	waitDelivered(t, b, 1)
	b.clock.Advance(10 * time.Second)
	b.status(t, id)
	st := b.sim.Stats()
	if want := (LagStats{P50: 6, P99: 6, Noticed: 1}); st.DetectionLag != want {
		t.Fatalf("lag %+v, want %+v (provider seconds at 2x)", st.DetectionLag, want)
	}
}

// waitDelivered waits until the simulator has counted n delivered callbacks.
func waitDelivered(t *testing.T, b *bundle, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for b.sim.Stats().Callbacks.Delivered < n {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d, want %d", b.sim.Stats().Callbacks.Delivered, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRequestsAndDuplicates counts every create and status answer per task
// created, and the tasks created beyond the first for each prompt.
func TestRequestsAndDuplicates(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 3, Burst: 100})
	b.create(t, promptBody(t, "twice", 4))
	b.create(t, promptBody(t, "twice", 4))
	b.create(t, promptBody(t, "thrice", 4))
	if a := b.do(t, "POST", createPath, testKey, promptBody(t, "thrice", 4)); a.status != 429 {
		t.Fatalf("create over the in-flight limit: %d", a.status)
	}
	b.clock.Advance(2 * time.Minute)
	b.create(t, promptBody(t, "thrice", 4))
	b.create(t, promptBody(t, "thrice", 4))
	if a := b.do(t, "POST", createPath, testKey, promptBody(t, "x", 4)); a.status != 400 {
		t.Fatalf("invalid create: %d", a.status)
	}
	b.do(t, "GET", statusPath("task_unknown"), testKey, "")
	st := b.sim.Stats()
	// 7 creates (5 created, a 429, a 400) and a 404 read, for 5 tasks.
	if st.DuplicateCreates != 3 || !near(st.RequestsPerJob, 8.0/5) || st.PeakInFlight != 3 || st.RateLimited != 1 {
		t.Fatalf("duplicates %d, requests per job %.3f, peak %d, 429s %d; want 3, 1.6, 3, 1",
			st.DuplicateCreates, st.RequestsPerJob, st.PeakInFlight, st.RateLimited)
	}
}

// TestStatsManyTasks keeps 100 000 tasks: 100 waves of 1 000 slots, each
// refilled the moment it frees.
func TestStatsManyTasks(t *testing.T) {
	t.Parallel()
	s, _ := manyTasks(t, 100_000)
	start := time.Now()
	st := s.Stats()
	t.Logf("Stats of %d tasks in %v", st.Created, time.Since(start))
	if st.Created != 100_000 || !near(st.BusyUtilization, 1) || st.DetectionLag.Noticed != 0 || st.DetectionLag.NeverNoticed != 99_000 {
		t.Fatalf("created %d, busy %.4f, lag %+v", st.Created, st.BusyUtilization, st.DetectionLag)
	}
}

func BenchmarkStats(b *testing.B) {
	s, _ := manyTasks(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		s.Stats()
	}
}

// manyTasks returns a simulator (1 000 slots, 40 s tasks) in which n tasks
// were created in waves that refill every slot the moment it frees.
func manyTasks(t testing.TB, n int) (*Sim, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s, err := New(Config{APIKey: testKey, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.generation = func([2]time.Duration) time.Duration { return 40 * time.Second }
	req := createRequest{Input: createInput{Mode: "text-to-video", Prompt: "", Resolution: "720p", Duration: 4}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		if i > 0 && i%MaxInFlightDefault == 0 {
			clock.Advance(40 * time.Second)
			s.advance(clock.Now())
		}
		req.Input.Prompt = "prompt " + strconv.Itoa(i)
		s.createLocked(clock.Now(), s.accounts[0], &req, "http://sim.invalid")
	}
	return s, clock
}

func TestGenerationTime(t *testing.T) {
	t.Parallel()
	for d, want := range map[int][2]time.Duration{4: {40 * time.Second, 60 * time.Second},
		8: {60 * time.Second, 90 * time.Second}, 12: {90 * time.Second, 120 * time.Second}} {
		if lo, hi, ok := GenerationTime(d); !ok || lo != want[0] || hi != want[1] {
			t.Errorf("GenerationTime(%d) = %v, %v, %v", d, lo, hi, ok)
		}
	}
	if _, _, ok := GenerationTime(5); ok {
		t.Error("GenerationTime(5) is ok")
	}
}

// TestRefillLags pairs the k-th create after the ramp with the k-th task
// noticed ended.
func TestRefillLags(t *testing.T) {
	t.Parallel()
	s := int64(time.Second)
	spans := []span{
		{created: 0, complete: 10 * s, noticed: 11 * s},
		{created: 0, complete: 12 * s, noticed: 12 * s},
		// The creates that refill: 1 s after the first notice, at once after the second.
		{created: 12 * s, complete: 30 * s, noticed: 30 * s},
		{created: 12 * s, complete: 31 * s},
	}
	got := refillLags(spans, 2, 1)
	if got.Noticed != 2 || got.P50 != 0 || got.P99 != 1 {
		t.Errorf("refill lags %+v, want 2 pairs, p50 0 s, p99 1 s", got)
	}
	if got := refillLags(spans[:2], 2, 1); got.Noticed != 0 {
		t.Errorf("no create after the ramp: %+v", got)
	}
}

package bench

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
)

// naiveSetup serves a simulator built from cfg (key and real clock added)
// and returns a client of it.
func naiveSetup(t *testing.T, cfg sim.Config) (*sim.Sim, *seedance.Client) {
	t.Helper()
	cfg.APIKey = "naive-key"
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	c, err := seedance.New(seedance.Config{BaseURL: srv.URL, APIKey: cfg.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// naiveJobs returns n create requests of 4 s videos with distinct prompts.
func naiveJobs(n int) []seedance.CreateRequest {
	jobs := make([]seedance.CreateRequest, n)
	for i := range jobs {
		jobs[i] = createRequest(i, 4)
	}
	return jobs
}

func TestNaive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		simInFlight int // the provider's limit
		inFlight    int // the client's local slots
		limited     bool
	}{
		// The local slots match the provider's: nothing is refused.
		{name: "within the limits", simInFlight: 5, inFlight: 5},
		// More local slots than the provider allows: the extra creates are
		// refused with 429, backed off and sent again, never twice.
		{name: "429s back off", simInFlight: 2, inFlight: 5, limited: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// At 1000x a 4 s video takes 40–60 ms, the first read comes
			// after 50 ms, the next every 5 ms, a 429 waits 2 ms.
			const scale, jobs = 1000, 30
			s, c := naiveSetup(t, sim.Config{TimeScale: scale, MaxInFlight: tt.simInFlight})
			res, err := runNaive(t.Context(), c, naiveConfig{maxInFlight: tt.inFlight, timeScale: scale}, naiveJobs(jobs))
			if err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if res.succeeded != jobs || res.failed != 0 || res.errors != 0 {
				t.Errorf("result %+v, want %d succeeded", res, jobs)
			}
			if st.Created != jobs || st.DuplicateCreates != 0 || st.PeakInFlight != tt.simInFlight {
				t.Errorf("created %d, duplicates %d, peak %d; want %d, 0, %d",
					st.Created, st.DuplicateCreates, st.PeakInFlight, jobs, tt.simInFlight)
			}
			if (st.RateLimited > 0) != tt.limited {
				t.Errorf("%d answers 429, want some: %v", st.RateLimited, tt.limited)
			}
			if st.DetectionLag.Noticed != jobs || st.DetectionLag.NeverNoticed != 0 {
				t.Errorf("lag %+v: every task must be noticed", st.DetectionLag)
			}
		})
	}
}

// TestNaivePacing checks the local request bucket: 100 requests a second
// with a burst of 1 spread 10 creates and at least 10 reads over 190 ms.
func TestNaivePacing(t *testing.T) {
	t.Parallel()
	s, c := naiveSetup(t, sim.Config{TimeScale: 1000})
	start := time.Now()
	res, err := runNaive(t.Context(), c, naiveConfig{requestsPerMinute: 6000, firstPoll: 60 * time.Millisecond,
		pollInterval: 10 * time.Millisecond}, naiveJobs(10))
	elapsed := time.Since(start)
	if err != nil || res.succeeded != 10 {
		t.Fatalf("result %+v, %v", res, err)
	}
	st := s.Stats()
	requests := st.Count(sim.KindCreate, 200) + st.Count(sim.KindStatus, 200)
	if min := time.Duration(requests-1) * 10 * time.Millisecond; elapsed < min || st.RateLimited != 0 {
		t.Fatalf("%d requests in %v (at least %v at 100/s), %d answers 429", requests, elapsed, min, st.RateLimited)
	}
}

// TestNaiveCanceled checks that a canceled run returns, with the error.
func TestNaiveCanceled(t *testing.T) {
	t.Parallel()
	_, c := naiveSetup(t, sim.Config{TimeScale: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := runNaive(ctx, c, naiveConfig{}, naiveJobs(3)); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v, want the context's error at once", err, time.Since(start))
	}
}

package worker

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func uniform(lo, hi time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range n {
		out[i] = lo + time.Duration(float64(hi-lo)*float64(i)/float64(n-1))
	}
	return out
}

func TestPlanReads(t *testing.T) {
	t.Parallel()
	four := uniform(40*time.Second, 60*time.Second, 201)
	tests := []struct {
		name    string
		samples []time.Duration
		budget  float64
		maxLag  float64 // mean seconds between an end and its read
		check   func(t *testing.T, p readPlan)
	}{
		{"plenty of budget reads from the fastest finish at the least spacing", four, 50, 0.6, func(t *testing.T, p readPlan) {
			if p.first != 40*time.Second || p.every != time.Second {
				t.Errorf("plan %+v, want first 40s every 1s", p)
			}
		}},
		// 1 000 4 s tasks at 9 500/min: about 6 reads a task after creates.
		{"a full account", four, 6.1, 1.9, nil},
		{"scarce budget reads late, where most tasks are done", four, 1.6, 12, func(t *testing.T, p readPlan) {
			if p.first < 50*time.Second {
				t.Errorf("plan %+v: with 1.6 reads a task the first read should come after the median finish", p)
			}
		}},
		{"one read a task waits for the slowest", four, 1, 21, func(t *testing.T, p readPlan) {
			if p.first != 60*time.Second {
				t.Errorf("plan %+v, want the first read at the slowest finish", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := planReads(tt.samples, tt.budget, time.Second)
			reads, lag := planCost(tt.samples, p.first, p.every)
			if reads > tt.budget+1e-9 {
				t.Errorf("plan %+v uses %.2f reads a task, budget %.2f", p, reads, tt.budget)
			}
			if lag > tt.maxLag {
				t.Errorf("plan %+v: mean lag %.2fs, want at most %.2fs", p, lag, tt.maxLag)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

// TestPlanReadsNeverOverspends checks the budget on random distributions.
func TestPlanReadsNeverOverspends(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		n := 20 + rng.IntN(300)
		samples := make([]time.Duration, n)
		for i := range samples {
			samples[i] = time.Duration(20+rng.ExpFloat64()*30) * time.Second
		}
		slices.Sort(samples)
		budget := 1 + rng.Float64()*10
		p := planReads(samples, budget, 500*time.Millisecond)
		if reads, _ := planCost(samples, p.first, p.every); reads > budget+1e-9 {
			t.Fatalf("plan %+v uses %.3f reads, budget %.3f", p, reads, budget)
		}
		if p.every < 500*time.Millisecond {
			t.Fatalf("plan %+v reads closer than the least spacing", p)
		}
	}
}

func TestReadPlanAt(t *testing.T) {
	t.Parallel()
	created := time.Unix(1000, 0)
	p := readPlan{first: 40 * time.Second, every: 2 * time.Second}
	for _, tt := range []struct{ now, want int }{
		{1000, 1040}, {1039, 1040}, {1040, 1042}, {1041, 1042}, {1045, 1046}, {1200, 1202},
	} {
		if got := p.at(created, time.Unix(int64(tt.now), 0), 0); !got.Equal(time.Unix(int64(tt.want), 0)) {
			t.Errorf("at(%d) = %d, want %d", tt.now, got.Unix(), tt.want)
		}
	}
	// A phase shifts the whole grid by that part of the spacing.
	if got := p.at(created, time.Unix(1000, 0), 0.5); !got.Equal(time.Unix(1041, 0)) {
		t.Errorf("at with phase 0.5 = %d, want 1041", got.Unix())
	}
	if got := p.at(created, time.Unix(1041, 0), 0.5); !got.Equal(time.Unix(1043, 0)) {
		t.Errorf("at with phase 0.5 = %d, want 1043", got.Unix())
	}
}

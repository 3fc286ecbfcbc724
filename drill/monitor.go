package drill

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"time"
)

// sampleEvery is how often the monitor reads the batches' progress.
const sampleEvery = 500 * time.Millisecond

// sample is the terminal rows of the running batches at one moment.
type sample struct {
	at       time.Time
	terminal int
}

// monitor samples progress and kills a random worker each time progress
// passes one of the kill thresholds.
type monitor struct {
	c       *cluster
	batches []string
	rng     *rand.Rand

	mu         sync.Mutex
	samples    []sample
	kills      []time.Time
	killErrs   []error
	thresholds []int // terminal rows at which a kill is due, ascending
}

// newMonitor draws n kill thresholds between 2 % and 92 % of total rows.
func newMonitor(c *cluster, batches []string, total, n int, seed int64) *monitor {
	m := &monitor{c: c, batches: batches, rng: rand.New(rand.NewPCG(uint64(seed), 7))}
	for range n {
		m.thresholds = append(m.thresholds, total*2/100+m.rng.IntN(total*90/100))
	}
	slices.Sort(m.thresholds)
	return m
}

// run samples until ctx ends.
func (m *monitor) run(ctx context.Context) {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := 0
		for _, id := range m.batches {
			t := m.c.terminal(id)
			if t < 0 {
				n = -1
				break
			}
			n += t
		}
		if n < 0 {
			continue // Redis is down: no sample
		}
		m.mu.Lock()
		m.samples = append(m.samples, sample{time.Now(), n})
		due := len(m.thresholds) > 0 && n >= m.thresholds[0]
		if due {
			m.thresholds = m.thresholds[1:]
		}
		m.mu.Unlock()
		if due {
			m.kill()
		}
	}
}

// kill kills a random worker with SIGKILL and starts its replacement;
// it waits while another phase holds the workers.
func (m *monitor) kill() {
	c := m.c
	c.procMu.Lock()
	defer c.procMu.Unlock()
	s := c.slots[m.rng.IntN(len(c.slots))]
	s.child.Signal(syscall.SIGKILL)
	<-s.child.Done()
	at := time.Now()
	err := c.startWorker(s)
	m.mu.Lock()
	m.kills = append(m.kills, at)
	if err != nil {
		m.killErrs = append(m.killErrs, err)
	}
	m.mu.Unlock()
}

// progress returns the last sample.
func (m *monitor) progress() sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) == 0 {
		return sample{}
	}
	return m.samples[len(m.samples)-1]
}

// snapshot returns the samples and kills so far.
func (m *monitor) snapshot() ([]sample, []time.Time, []error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.samples), slices.Clone(m.kills), slices.Clone(m.killErrs)
}

// rateWindow is the span over which a completion rate is measured.
const rateWindow = 5 * time.Second

// recoveredShare is the share of the pre-fault rate that counts as
// recovered.
const recoveredShare = 0.8

// rate returns the completions per second over [from, to], or -1 without
// samples covering it.
func rate(samples []sample, from, to time.Time) float64 {
	var a, b *sample
	for i := range samples {
		s := &samples[i]
		if a == nil && !s.at.Before(from) {
			a = s
		}
		if !s.at.After(to) {
			b = s
		}
	}
	if a == nil || b == nil || !b.at.After(a.at) {
		return -1
	}
	return float64(b.terminal-a.terminal) / b.at.Sub(a.at).Seconds()
}

// recovery returns the time from end until the completion rate over
// rateWindow is back to recoveredShare of the rate over the rateWindow
// before start. It is measured over a whole window after end, so
// rateWindow is the least it reports; -1 when it never was, or when no
// rate before is known.
func recovery(samples []sample, start, end time.Time) time.Duration {
	before := rate(samples, start.Add(-rateWindow), start)
	if before <= 0 {
		return -1
	}
	for _, s := range samples {
		if s.at.Before(end.Add(rateWindow)) {
			continue
		}
		if r := rate(samples, s.at.Add(-rateWindow), s.at); r >= recoveredShare*before {
			return s.at.Sub(end)
		}
	}
	return -1
}

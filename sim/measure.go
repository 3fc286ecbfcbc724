package sim

import (
	"math"
	"slices"
	"time"
)

// span is the life of one created task on the simulator's clock
// (Config.Now), in Unix nanoseconds: 24 bytes a task, kept for every task
// so that Stats can measure how busy the client kept the provider.
type span struct {
	created  int64
	complete int64
	noticed  int64 // when the client first learned the task ended; 0: not yet
}

// LagStats describes how soon a client notices that its tasks ended (see
// Stats.DetectionLag).
type LagStats struct {
	// P50 and P99 are the median and the 99th percentile (nearest rank) of
	// the lags of the noticed tasks, in provider seconds: simulated time
	// multiplied by Config.TimeScale. 0 when no task was noticed.
	P50 float64 `json:"p50_seconds"`
	P99 float64 `json:"p99_seconds"`
	// Noticed counts ended tasks the client noticed.
	Noticed int `json:"noticed"`
	// NeverNoticed counts ended tasks the client has not noticed (yet).
	NeverNoticed int `json:"never_noticed"`
}

// measures are the statistics derived from the recorded spans.
type measures struct {
	busy   float64
	window time.Duration // simulated time
	lag    LagStats
	refill LagStats
}

// measure derives the busy utilization of maxInFlight slots and the
// detection lags from spans (in creation order) at now, with simulated
// durations multiplied by scale to give provider seconds.
//
// The busy window runs from the creation of the maxInFlight-th task (the
// start-up ramp is over) to the creation of the last one (the tail, when
// nothing is left to create, is not the client's to fill). Utilization is
// the sum of each task's [created, complete] inside the window, over
// maxInFlight × window; 0 when the window is empty.
func measure(spans []span, maxInFlight int, now int64, scale float64) measures {
	var m measures
	if maxInFlight > 0 && len(spans) >= maxInFlight {
		from, to := spans[maxInFlight-1].created, spans[len(spans)-1].created
		if to > from {
			var busy float64
			for _, sp := range spans {
				if lo, hi := max(sp.created, from), min(sp.complete, to); hi > lo {
					busy += float64(hi - lo)
				}
			}
			m.window = time.Duration(to - from)
			m.busy = busy / (float64(maxInFlight) * float64(to-from))
		}
	}
	var lags []int64
	for _, sp := range spans {
		switch {
		case sp.complete > now:
		case sp.noticed == 0:
			m.lag.NeverNoticed++
		default:
			lags = append(lags, max(0, sp.noticed-sp.complete))
		}
	}
	m.lag.Noticed = len(lags)
	if len(lags) > 0 {
		slices.Sort(lags)
		m.lag.P50 = providerSeconds(percentile(lags, 0.50), scale)
		m.lag.P99 = providerSeconds(percentile(lags, 0.99), scale)
	}
	m.refill = refillLags(spans, maxInFlight, scale)
	return m
}

// refillLags measures how soon a client fills a slot it learned was free.
// Once maxInFlight tasks were created, every further create takes the slot
// of a task that ended: the k-th create after the ramp the k-th slot the
// client noticed free. The lag is the time between the two.
func refillLags(spans []span, maxInFlight int, scale float64) LagStats {
	if maxInFlight <= 0 || len(spans) <= maxInFlight {
		return LagStats{}
	}
	var noticed []int64
	for _, sp := range spans {
		if sp.noticed != 0 {
			noticed = append(noticed, sp.noticed)
		}
	}
	slices.Sort(noticed)
	var lags []int64
	for k, sp := range spans[maxInFlight:] {
		if k >= len(noticed) {
			break
		}
		lags = append(lags, max(0, sp.created-noticed[k]))
	}
	if len(lags) == 0 {
		return LagStats{}
	}
	slices.Sort(lags)
	return LagStats{P50: providerSeconds(percentile(lags, 0.50), scale), P99: providerSeconds(percentile(lags, 0.99), scale),
		Noticed: len(lags)}
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 1) of
// sorted, which is not empty.
func percentile(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// providerSeconds converts simulated nanoseconds into provider seconds.
func providerSeconds(ns int64, scale float64) float64 {
	return float64(ns) / float64(time.Second) * scale
}

// noticeLocked records that the client learned at now that t ended, unless
// it already had. s.mu is held.
func (s *Sim) noticeLocked(t *task, now time.Time) {
	if t.span < 0 {
		return
	}
	if sp := &s.spans[t.span]; sp.noticed == 0 {
		sp.noticed = max(now.UnixNano(), 1)
	}
}

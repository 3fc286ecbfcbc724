package batch

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seedbatch/seedbatch/tasks"
)

// PaceWindow is how far back the throughput of a running batch is
// measured: long enough to smooth the bursts of rows finishing together,
// short enough to follow a change of pace.
const PaceWindow = 10 * time.Minute

// Minute is one minute of a batch's life, as its transitions recorded it.
type Minute struct {
	// Start is the minute's first instant (on Redis's clock).
	Start time.Time
	// Finished counts the rows that became terminal during the minute.
	Finished int
	// PeakInFlight is the most rows submitting or submitted (their task
	// created or being created at the provider) after any move in the minute.
	PeakInFlight int
	// InFlight is the number of those rows after the minute's last move.
	InFlight int
}

// Series is a batch's minutes, oldest first. Read from the store it holds
// only the minutes in which a row moved; Fill adds the others.
type Series []Minute

// Fill returns s with every minute from its first up to and including the
// minute of until (when later than its last), each missing one with no row
// finished and the rows in flight of the minute before it (nothing moved).
func (s Series) Fill(until time.Time) Series {
	if len(s) == 0 {
		return nil
	}
	end := until
	if last := s[len(s)-1].Start; end.Before(last) {
		end = last
	}
	return Combine(s[0].Start, end, s)
}

// Combine adds up batches' series minute by minute, for every minute from
// the one of from to the one of to: the rows finished, and the rows in
// flight (a batch's minute without a move has the rows in flight of its
// minute before; before its first minute it has none).
func Combine(from, to time.Time, all ...Series) Series {
	from, to = from.Truncate(time.Minute), to.Truncate(time.Minute)
	if to.Before(from) {
		return nil
	}
	out := make(Series, int(to.Sub(from)/time.Minute)+1)
	for i := range out {
		out[i].Start = from.Add(time.Duration(i) * time.Minute)
	}
	for _, s := range all {
		i, level := 0, 0
		for i < len(s) && s[i].Start.Before(from) {
			level = s[i].InFlight
			i++
		}
		for k := range out {
			m := &out[k]
			if i < len(s) && s[i].Start.Equal(m.Start) {
				m.Finished += s[i].Finished
				m.PeakInFlight += s[i].PeakInFlight
				level = s[i].InFlight
				i++
			} else {
				m.PeakInFlight += level
			}
			m.InFlight += level
		}
	}
	return out
}

// Series reads the minutes of batch id in which a row moved (see
// transitionScript), oldest first; a batch recorded by an earlier version
// has none.
func (s *Store) Series(ctx context.Context, id string) (Series, error) {
	v, err := s.rdb.HGetAll(ctx, s.seriesKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read series of %s: %w", id, err)
	}
	out := make(Series, 0, len(v))
	for k, val := range v {
		if m, ok := parseMinute(k, val); ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Minute) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// parseMinute reads one field of a series hash: the minute's number since
// the epoch, and "finished peak last".
func parseMinute(k, v string) (Minute, bool) {
	n, err := strconv.ParseInt(k, 10, 64)
	f := strings.Fields(v)
	if err != nil || len(f) != 3 {
		return Minute{}, false
	}
	var x [3]int
	for i := range f {
		if x[i], err = strconv.Atoi(f[i]); err != nil {
			return Minute{}, false
		}
	}
	return Minute{Start: time.Unix(n*60, 0), Finished: x[0], PeakInFlight: x[1], InFlight: x[2]}, true
}

// Pace is a batch's throughput and the time it predicts is left. One
// function computes it (NewPace), for every command and page that shows it.
type Pace struct {
	// PerMinute is the rows finished a minute: over the last PaceWindow
	// (or the batch's life, when shorter) while the batch runs; over its
	// whole run, from creation to its last row, once it is finished.
	PerMinute float64
	// Known is false when no rate can be told: a batch finished before
	// finish times were recorded, or by rejecting every row.
	Known bool
	// Done is set when every row is terminal.
	Done bool
	// Left is the time left at PerMinute; 0 when Done or when nothing
	// finished within the window (ETA "unknown").
	Left time.Duration
}

// NewPace measures the pace of a batch from its record, counts and
// series (only its last PaceWindow is read) at time now.
func NewPace(meta Meta, counts Counts, series Series, now time.Time) Pace {
	terminal := counts.Terminal()
	left := max(meta.Rows, counts.Total()) - terminal
	if left <= 0 {
		p := Pace{Done: true}
		if !meta.Finished.IsZero() {
			worked := terminal - counts[tasks.StateRejected]
			p.PerMinute = float64(worked) / max(meta.Finished.Sub(meta.Created).Minutes(), 1.0/60)
			p.Known = true
		}
		return p
	}
	// Whole minutes, the current one included: from the start of the
	// minute PaceWindow-1 minutes before this one, or the batch's creation.
	from := now.Truncate(time.Minute).Add(-PaceWindow + time.Minute)
	if meta.Created.After(from) {
		from = meta.Created
	}
	window := max(now.Sub(from), time.Second)
	finished := 0
	for _, m := range series {
		if !m.Start.Add(time.Minute).After(from) || m.Start.After(now) {
			continue
		}
		finished += m.Finished
	}
	p := Pace{Known: true, PerMinute: float64(finished) / window.Minutes()}
	if finished > 0 {
		p.Left = time.Duration(math.Ceil(float64(left)/p.PerMinute*60)) * time.Second
	}
	return p
}

// Rate is the pace as operators read it: rows a minute with one decimal,
// "0" when none finished in the window, "-" when unknown.
func (p Pace) Rate() string {
	switch {
	case !p.Known:
		return "-"
	case p.PerMinute == 0:
		return "0"
	}
	return strconv.FormatFloat(p.PerMinute, 'f', 1, 64)
}

// ETA is the time left as operators read it: "done", "unknown" (nothing
// finished within the window), or a duration in whole seconds.
func (p Pace) ETA() string {
	switch {
	case p.Done:
		return "done"
	case p.Left == 0:
		return "unknown"
	}
	return p.Left.String()
}

// Pace reads what NewPace needs beyond a batch's record and counts (the
// last PaceWindow of its series) and returns its pace at time now.
func (s *Store) Pace(ctx context.Context, meta Meta, counts Counts, now time.Time) (Pace, error) {
	if counts.Terminal() >= max(meta.Rows, counts.Total()) {
		return NewPace(meta, counts, nil, now), nil
	}
	first := now.Add(-PaceWindow).Unix() / 60
	last := now.Unix() / 60
	fields := make([]string, 0, last-first+1)
	for m := first; m <= last; m++ {
		fields = append(fields, strconv.FormatInt(m, 10))
	}
	v, err := s.rdb.HMGet(ctx, s.seriesKey(meta.ID), fields...).Result()
	if err != nil {
		return Pace{}, fmt.Errorf("read pace of %s: %w", meta.ID, err)
	}
	series := make(Series, 0, len(v))
	for i, x := range v {
		if str, ok := x.(string); ok {
			if m, ok := parseMinute(fields[i], str); ok {
				series = append(series, m)
			}
		}
	}
	return NewPace(meta, counts, series, now), nil
}

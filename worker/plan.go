package worker

import (
	"cmp"
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Polls are planned, not fired on a clock. For each video duration the
// planner keeps the generation times the provider actually took (its
// costTime, shared in Redis by every worker), and from them and the request
// budget left after creates it chooses when a task is read first and how
// often after that, so that reads land where finishes are likely and the
// expected delay between a task's end and the read that sees it is as
// short as the budget allows. The budget is recomputed from the tasks in
// flight as they change: creates take one request per task, and polls may
// use planShare of the account's rate with them. When the budget is
// scarce the first read moves later, to where most tasks are done.

// Planner defaults and bounds.
const (
	// planShare is the part of the request rate creates and planned polls
	// together may use; the rest absorbs bursts and retries.
	planShare = 0.9
	// planSamples is how many generation times per duration are kept.
	planSamples = 500
	// planMinSamples is how many observed times replace the documented
	// range as the distribution.
	planMinSamples = 20
	// planRefresh is how often a process reads the samples and the tasks in
	// flight again.
	planRefresh = 2 * time.Second
	// paceRefresh is how often a process counts again the tasks being read.
	paceRefresh = 250 * time.Millisecond
	// paceWindow is the span over which the pace of creates is counted.
	paceWindow = time.Second
	// planMaxReads caps the reads per task a plan may count on.
	planMaxReads = 50
)

// readPlan says when to read a task of one duration: first after creating
// it, then every every until it ends.
type readPlan struct {
	first, every time.Duration
	// spread is the span over which the first reads of tasks created now
	// are spread (see firstRead).
	spread time.Duration
}

// firstRead is when a task created now is read first: at first, later by
// its phase of the spread, so that tasks created faster than their reads
// can be served (a batch's start) are not all read at once.
func (p readPlan) firstRead(phase float64) time.Duration {
	return p.first + time.Duration(phase*float64(max(p.spread, p.every)))
}

// at returns the time of the first planned read after now, for a task
// created at created. phase, in [0, 1), shifts the task's reads by that
// part of the spacing: tasks created together (a burst of creates) are read
// at spread times rather than all at once.
func (p readPlan) at(created, now time.Time, phase float64) time.Time {
	first := created.Add(p.first + time.Duration(phase*float64(p.every)))
	if now.Before(first) {
		return first
	}
	n := now.Sub(first)/p.every + 1
	return first.Add(n * p.every)
}

// planner computes and caches read plans. It is safe for concurrent use.
type planner struct {
	rdb    redis.UniversalClient
	prefix string
	cfg    Config
	lim    Limiter

	mu       sync.Mutex
	plans    map[int]cachedPlan
	inFlight int
	readAt   time.Time
}

type cachedPlan struct {
	plan readPlan
	mean time.Duration // of the samples the plan was made from
	at   time.Time
	// reading counts the tasks in flight past the plan's first read: the
	// tasks being read now; creating counts the tasks created within the
	// last paceWindow (both as of readingAt).
	reading, creating int
	readingAt         time.Time
}

func newPlanner(rdb redis.UniversalClient, prefix string, cfg Config, lim Limiter) *planner {
	return &planner{rdb: rdb, prefix: prefix, cfg: cfg, lim: lim, plans: map[int]cachedPlan{}}
}

func (p *planner) samplesKey(seconds int) string {
	return p.prefix + ":gen:" + strconv.Itoa(seconds)
}

// observe records a generation time of a task of the given video duration.
func (p *planner) observe(ctx context.Context, seconds int, gen time.Duration) {
	pipe := p.rdb.Pipeline()
	pipe.LPush(ctx, p.samplesKey(seconds), gen.Milliseconds())
	pipe.LTrim(ctx, p.samplesKey(seconds), 0, planSamples-1)
	_, _ = pipe.Exec(ctx) // a lost sample only makes the plan a little older
}

// plan returns the read plan for tasks of the given video duration: the
// one the budget allows in steady state, with reads spaced wider while more
// tasks are being read than the request rate can serve at that spacing.
// That happens when many tasks were created together (a batch's start):
// they end together, and their reads, spread over as many of them as the
// rate allows, would otherwise queue for tokens and delay the creates that
// refill their slots.
func (p *planner) plan(ctx context.Context, seconds int) readPlan {
	now := time.Now()
	p.mu.Lock()
	c, ok := p.plans[seconds]
	p.mu.Unlock()
	if !ok || now.Sub(c.at) >= planRefresh {
		samples := p.samples(ctx, seconds)
		c.plan = planReads(samples, p.budget(ctx, samples), p.cfg.scaled(p.cfg.PollInterval))
		c.mean, c.at = mean(samples), now
	}
	if now.Sub(c.readingAt) >= paceRefresh {
		if n, created, err := p.lim.Started(ctx, c.plan.first, paceWindow); err == nil {
			c.reading, c.creating, c.readingAt = n, created, now
		}
	}
	p.mu.Lock()
	p.plans[seconds] = c
	inFlight := p.inFlight
	p.mu.Unlock()
	plan := c.plan
	if rate := p.readRate(inFlight, c.creating, c.mean); rate > 0 {
		plan.every = max(plan.every, time.Duration(float64(c.reading)/rate*float64(time.Second)))
		// First reads come as fast as tasks are created now, a first read
		// later: no faster than reads can be served then.
		plan.spread = time.Duration(float64(c.creating) / p.readRate(inFlight, 0, c.mean) * float64(paceWindow))
	}
	return plan
}

// readRate is how many status reads a second the account's rate leaves
// after creates: planShare of it, less the creates, which are at least one
// for each task ending (inFlight tasks ending every mean) and as many as
// were made in the last paceWindow; at least a tenth of it.
func (p *planner) readRate(inFlight, created int, mean time.Duration) float64 {
	perSecond := float64(p.lim.Config().RequestsPerMinute) / 60 * planShare
	creates := float64(created) / paceWindow.Seconds()
	if mean > 0 {
		creates = max(creates, float64(inFlight)/mean.Seconds())
	}
	return max(perSecond-creates, perSecond/10)
}

func mean(samples []time.Duration) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return sum / time.Duration(len(samples))
}

// samples returns the sorted generation times observed for a duration, or
// the documented range when too few are known.
func (p *planner) samples(ctx context.Context, seconds int) []time.Duration {
	var out []time.Duration
	if vals, err := p.rdb.LRange(ctx, p.samplesKey(seconds), 0, planSamples-1).Result(); err == nil && len(vals) >= planMinSamples {
		out = make([]time.Duration, 0, len(vals))
		for _, v := range vals {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
				out = append(out, time.Duration(ms)*time.Millisecond)
			}
		}
	}
	if len(out) < planMinSamples {
		// What the provider documents, spread evenly.
		lo, hi := p.cfg.firstPoll(seconds), p.cfg.scaled(slowest(seconds))
		out = out[:0]
		for i := range 41 {
			out = append(out, lo+time.Duration(float64(hi-lo)*float64(i)/40))
		}
	}
	slices.Sort(out)
	return out
}

// budget is how many status reads each task may use on average: the share
// of the request rate left after creates, over the rate at which tasks end.
func (p *planner) budget(ctx context.Context, samples []time.Duration) float64 {
	now := time.Now()
	p.mu.Lock()
	n, fresh := p.inFlight, now.Sub(p.readAt) < planRefresh
	p.mu.Unlock()
	if !fresh {
		if v, err := p.lim.InFlight(ctx); err == nil {
			n = v
			p.mu.Lock()
			p.inFlight, p.readAt = v, now
			p.mu.Unlock()
		}
	}
	rpm := p.lim.Config().RequestsPerMinute
	if n <= 0 || rpm <= 0 {
		return planMaxReads
	}
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	mean := sum.Seconds() / float64(len(samples))
	perSecond := float64(rpm) / 60 * planShare
	// Tasks end at n/mean a second, each taking one create.
	return min(planMaxReads, perSecond*mean/float64(n)-1)
}

// planReads chooses the read plan for tasks whose generation times are the
// sorted samples, when each may use budget reads on average and reads of
// one task are at least minGap apart. It tries first reads at quantiles of
// the distribution and, for each, the shortest spacing the budget allows,
// and keeps the plan with the least mean delay between a task's end and the
// read that sees it.
func planReads(samples []time.Duration, budget float64, minGap time.Duration) readPlan {
	minGap = max(minGap, time.Millisecond)
	if len(samples) == 0 {
		return readPlan{first: minGap, every: minGap}
	}
	span := samples[len(samples)-1] - samples[0]
	best, bestLag := readPlan{first: samples[len(samples)-1], every: max(span, minGap)}, math.Inf(1)
	for _, q := range []float64{0, .01, .02, .05, .1, .15, .2, .25, .3, .4, .5, .6, .7, .8, .9, 1} {
		first := samples[int(q*float64(len(samples)-1))]
		reads, _ := planCost(samples, first, 1<<62)
		if reads > budget {
			continue // even one read after first is too many
		}
		// The shortest spacing within the budget: reads fall as it grows.
		lo, hi := minGap, max(span, minGap)*4
		if r, _ := planCost(samples, first, lo); r > budget {
			for range 40 {
				mid := lo + (hi-lo)/2
				if r, _ := planCost(samples, first, mid); r > budget {
					lo = mid
				} else {
					hi = mid
				}
			}
			lo = hi
		}
		if _, lag := planCost(samples, first, lo); lag < bestLag {
			best, bestLag = readPlan{first: first, every: lo}, lag
		}
	}
	return best
}

// planCost returns the mean number of reads and the mean delay in seconds
// between the end and the read that sees it, over the samples, for reads at
// first and then every every.
func planCost(samples []time.Duration, first, every time.Duration) (reads, lag float64) {
	for _, f := range samples {
		if f <= first {
			reads++
			lag += (first - f).Seconds()
			continue
		}
		n := math.Ceil(float64(f-first) / float64(every))
		reads += 1 + n
		lag += (time.Duration(n)*every - (f - first)).Seconds()
	}
	k := float64(len(samples))
	return reads / k, lag / k
}

// phase spreads the reads of tasks planned alike: a fraction in [0, 1)
// fixed for each job attempt.
func phase(holder string) float64 {
	h := fnv.New32a()
	h.Write([]byte(holder))
	return float64(h.Sum32()) / (1 << 32)
}

// slowest is the longest generation time the provider documents for a
// video duration.
func slowest(seconds int) time.Duration {
	return cmp.Or(slowestFinish[seconds], time.Duration(seconds)*15*time.Second)
}

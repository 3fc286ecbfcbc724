package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/redact"
	"github.com/seedbatch/seedbatch/tasks"
)

// Series shown at 0 before their first event, so that dashboards and
// alerts see them from the start.
var (
	// RequestKinds are the kinds of provider request counted.
	RequestKinds = []string{"create", "status"}
	// RequestStatuses are the answers the provider documents (0: no answer);
	// any other status gets its series when it first comes.
	RequestStatuses = []int{200, 400, 401, 402, 403, 404, 429, 500, 0}
	// Limits are the limits handlers wait for, or are deferred by.
	Limits = []ratelimit.Reason{ratelimit.ReasonRate, ratelimit.ReasonInFlight, ratelimit.ReasonCooldown,
		ratelimit.ReasonPaused}
)

// maxPauseReason caps the pause reason label, in runes.
const maxPauseReason = 120

// GenerationBuckets are the histogram bounds of generation times, in
// seconds: the provider documents 40 to 120 s.
var GenerationBuckets = []float64{10, 20, 30, 40, 50, 60, 75, 90, 105, 120, 150, 180, 300}

// FlushEvery is how often a Recorder writes what it counted to Redis.
const FlushEvery = time.Second

// Recorder counts events in one Redis hash shared by every process. It
// adds up counts in memory and writes them in one round trip every
// FlushEvery (and on Flush and Close), so that counting costs Redis a few
// commands a second whatever the rate of events. Its methods never fail
// the caller: a count lost to a Redis error is dropped. It is safe for
// concurrent use.
type Recorder struct {
	rdb redis.UniversalClient
	key string

	mu     sync.Mutex
	ints   map[string]int64
	floats map[string]float64
	start  sync.Once
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
}

// NewRecorder returns a Recorder keeping its counts under prefix. Close it
// when done, to write the last counts.
func NewRecorder(rdb redis.UniversalClient, prefix string) *Recorder {
	return &Recorder{rdb: rdb, key: prefix + ":metrics", ints: map[string]int64{}, floats: map[string]float64{},
		done: make(chan struct{})}
}

func (r *Recorder) incr(field string, by int64) {
	r.mu.Lock()
	r.ints[field] += by
	r.mu.Unlock()
	r.start.Do(r.run)
}

func (r *Recorder) incrFloat(field string, by float64) {
	r.mu.Lock()
	r.floats[field] += by
	r.mu.Unlock()
	r.start.Do(r.run)
}

// run flushes every FlushEvery until Close.
func (r *Recorder) run() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(FlushEvery)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), FlushEvery)
				_ = r.Flush(ctx)
				cancel()
			}
		}
	}()
}

// Flush writes the counts added since the last flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	ints, floats := r.ints, r.floats
	if len(ints)+len(floats) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.ints, r.floats = map[string]int64{}, map[string]float64{}
	r.mu.Unlock()
	pipe := r.rdb.Pipeline()
	for f, n := range ints {
		pipe.HIncrBy(ctx, r.key, f, n)
	}
	for f, x := range floats {
		pipe.HIncrByFloat(ctx, r.key, f, x)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// Close stops the periodic flush and writes the last counts.
func (r *Recorder) Close() error {
	r.closed.Do(func() { close(r.done) })
	r.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.Flush(ctx)
}

// Request counts one request to the provider; status 0 means no answer.
func (r *Recorder) Request(_ context.Context, kind string, status int) {
	r.incr("req|"+kind+"|"+statusLabel(status), 1)
}

// Wait adds the time a handler waited in place for a limit.
func (r *Recorder) Wait(_ context.Context, limit string, d time.Duration) {
	if d > 0 {
		r.incrFloat("wait|"+limit, d.Seconds())
	}
}

// Deferred counts a task handed back to the queue to wait for a limit.
func (r *Recorder) Deferred(_ context.Context, limit string) {
	r.incr("defer|"+limit, 1)
}

// Generation observes one provider generation time.
func (r *Recorder) Generation(_ context.Context, d time.Duration) {
	s := d.Seconds()
	for _, b := range GenerationBuckets {
		if s <= b {
			r.incr("gen|le|"+strconv.FormatFloat(b, 'g', -1, 64), 1)
		}
	}
	r.incr("gen|count", 1)
	r.incrFloat("gen|sum", s)
}

// DownloadBytes adds bytes of stored videos.
func (r *Recorder) DownloadBytes(_ context.Context, n int64) {
	r.incr("download_bytes", n)
}

func statusLabel(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status)
}

// Counts reads the recorded counters, by field, after writing this
// Recorder's own.
func (r *Recorder) Counts(ctx context.Context) (map[string]float64, error) {
	_ = r.Flush(ctx)
	v, err := r.rdb.HGetAll(ctx, r.key).Result()
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	out := make(map[string]float64, len(v))
	for k, s := range v {
		f, _ := strconv.ParseFloat(s, 64)
		out[k] = f
	}
	return out, nil
}

// Collector is a prometheus.Collector of everything above. Handler serves
// it with asynq's own queue metrics.
type Collector struct {
	rec     *Recorder
	store   *batch.Store
	limiter *ratelimit.Limiter
	insp    *asynq.Inspector
	queues  []string
	redact  *redact.Redactor
	// accounts are reported one by one, labelled by name (SetAccounts).
	accounts []Account
}

// Account is a provider account whose leases, limit and pause the
// Collector reports under the label account: its name, never its key.
type Account struct {
	Name    string
	Limiter *ratelimit.Limiter
}

// SetAccounts makes c report each account's leases in use, in-flight limit
// and pause, labelled by its name, besides the totals of the limiter given
// to NewCollector (by default the one account reported, as
// batch.AccountDefault).
func (c *Collector) SetAccounts(accounts []Account) { c.accounts = accounts }

// NewCollector returns a Collector. insp may be nil to leave out asynq's
// queue metrics; queues names this namespace's queues, whose asynq metrics
// Handler serves (each at 0 until asynq knows the queue).
func NewCollector(rec *Recorder, store *batch.Store, limiter *ratelimit.Limiter, insp *asynq.Inspector, queues []string) *Collector {
	c := &Collector{rec: rec, store: store, limiter: limiter, insp: insp, queues: queues, redact: redact.New()}
	if limiter != nil {
		c.accounts = []Account{{Name: batch.AccountDefault, Limiter: limiter}}
	}
	return c
}

var (
	descRequests    = prometheus.NewDesc("seedbatch_provider_requests_total", "Requests to the provider by kind and HTTP status (error: no answer).", []string{"kind", "status"}, nil)
	descRateLimited = prometheus.NewDesc("seedbatch_provider_rate_limited_total", "Provider answers 429.", nil, nil)
	descWait        = prometheus.NewDesc("seedbatch_limit_wait_seconds_total", "Seconds handlers waited in place for a limit.", []string{"limit"}, nil)
	descDefer       = prometheus.NewDesc("seedbatch_limit_deferrals_total", "Tasks handed back to the queue to wait for a limit.", []string{"limit"}, nil)
	descGeneration  = prometheus.NewDesc("seedbatch_generation_seconds", "Provider generation time of ended tasks.", nil, nil)
	descDownload    = prometheus.NewDesc("seedbatch_download_bytes_total", "Bytes of videos stored.", nil, nil)
	descJobs        = prometheus.NewDesc("seedbatch_jobs", "Jobs by state, all batches.", []string{"state"}, nil)
	descLeases      = prometheus.NewDesc("seedbatch_leases_in_use", "In-flight leases held (provider tasks created and not ended).", nil, nil)
	descUp          = prometheus.NewDesc("seedbatch_redis_up", "1 when the last scrape could read Redis.", nil, nil)
	descPaused      = prometheus.NewDesc("seedbatch_submitting_paused",
		"1 while submitting is paused (every worker creates nothing until seedbatch resume), with the reason; 0 otherwise.",
		[]string{"reason"}, nil)
	descAccountLeases = prometheus.NewDesc("seedbatch_account_leases_in_use", "In-flight leases held by each provider account.",
		[]string{"account"}, nil)
	descAccountLimit = prometheus.NewDesc("seedbatch_account_max_in_flight", "The in-flight limit of each provider account.",
		[]string{"account"}, nil)
	descAccountPaused = prometheus.NewDesc("seedbatch_account_paused",
		"1 while an account's submitting is paused (until seedbatch resume), with the reason; 0 otherwise.",
		[]string{"account", "reason"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descRateLimited, descWait, descDefer, descGeneration,
		descDownload, descJobs, descLeases, descUp, descPaused, descAccountLeases, descAccountLimit, descAccountPaused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.rec.Counts(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	limited := 0.0
	buckets := map[float64]uint64{}
	requests := map[[2]string]float64{}
	waits, defers := map[string]float64{}, map[string]float64{}
	for _, kind := range RequestKinds {
		for _, st := range RequestStatuses {
			requests[[2]string{kind, statusLabel(st)}] = 0
		}
	}
	for _, l := range Limits {
		waits[string(l)], defers[string(l)] = 0, 0
	}
	for k, v := range counts {
		parts := strings.Split(k, "|")
		switch {
		case parts[0] == "req" && len(parts) == 3:
			requests[[2]string{parts[1], parts[2]}] = v
			if parts[2] == "429" {
				limited += v
			}
		case parts[0] == "wait" && len(parts) == 2:
			waits[parts[1]] = v
		case parts[0] == "defer" && len(parts) == 2:
			defers[parts[1]] = v
		case parts[0] == "gen" && len(parts) == 3 && parts[1] == "le":
			if b, err := strconv.ParseFloat(parts[2], 64); err == nil {
				buckets[b] = uint64(v)
			}
		}
	}
	for k, v := range requests {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, v, k[0], k[1])
	}
	for l, v := range waits {
		ch <- prometheus.MustNewConstMetric(descWait, prometheus.CounterValue, v, l)
	}
	for l, v := range defers {
		ch <- prometheus.MustNewConstMetric(descDefer, prometheus.CounterValue, v, l)
	}
	ch <- prometheus.MustNewConstMetric(descRateLimited, prometheus.CounterValue, limited)
	ch <- prometheus.MustNewConstHistogram(descGeneration, uint64(counts["gen|count"]), counts["gen|sum"], buckets)
	ch <- prometheus.MustNewConstMetric(descDownload, prometheus.CounterValue, counts["download_bytes"])

	if c.store != nil {
		total := batch.Counts{}
		if ids, err := c.store.Batches(ctx); err == nil {
			for _, id := range ids {
				if _, bc, err := c.store.Get(ctx, id); err == nil {
					for st, n := range bc {
						total[st] += n
					}
				}
			}
		}
		for _, st := range tasks.States {
			ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(total[st]), string(st))
		}
	}
	if c.limiter != nil {
		if n, err := c.limiter.InFlight(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(descLeases, prometheus.GaugeValue, float64(n))
		}
		if reason, paused, err := c.limiter.Paused(ctx); err == nil {
			v := 0.0
			if paused {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descPaused, prometheus.GaugeValue, v, c.pauseLabel(reason))
		}
	}
	for _, a := range c.accounts {
		if n, err := a.Limiter.InFlight(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(descAccountLeases, prometheus.GaugeValue, float64(n), a.Name)
		}
		limit := a.Limiter.Config().MaxInFlight
		if stored, ok, err := a.Limiter.Stored(ctx); err == nil && ok {
			limit = stored.MaxInFlight
		}
		ch <- prometheus.MustNewConstMetric(descAccountLimit, prometheus.GaugeValue, float64(limit), a.Name)
		if reason, paused, err := a.Limiter.Paused(ctx); err == nil {
			v := 0.0
			if paused {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descAccountPaused, prometheus.GaugeValue, v, a.Name, c.pauseLabel(reason))
		}
	}
}

// pauseLabel is a pause reason as a label value: secrets masked, cut to
// maxPauseReason runes.
func (c *Collector) pauseLabel(reason string) string {
	reason = strings.ToValidUTF8(c.redact.String(reason), "?")
	if utf8.RuneCountInString(reason) > maxPauseReason {
		reason = string([]rune(reason)[:maxPauseReason-1]) + "…"
	}
	return reason
}

// Handler serves c in the Prometheus text format, with asynq's queue
// metrics of c's queues (see asynqQueues) and the Go runtime's own metrics
// of this process.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c.insp != nil {
		reg.MustRegister(newAsynqQueues(c.insp, c.queues))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

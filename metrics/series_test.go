package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/metrics"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/tasks"
)

// metricsSetup serves the Collector of a fresh namespace; it returns the
// URL of /metrics, the limiter and the queue names.
func metricsSetup(t *testing.T) (string, *ratelimit.Limiter, *redistest.Server, queue.Names) {
	t.Helper()
	rs := redistest.New(t)
	store := batch.NewStore(rs.Client, rs.Prefix)
	lim, err := ratelimit.New(rs.Client, ratelimit.Config{Prefix: rs.Prefix, Scope: "m"})
	if err != nil {
		t.Fatal(err)
	}
	queues := queue.NamesFor(rs.Prefix)
	rec := metrics.NewRecorder(rs.Client, rs.Prefix)
	t.Cleanup(func() { rec.Close() })
	insp := asynq.NewInspectorFromRedisClient(rs.Client)
	t.Cleanup(func() { insp.Close() })
	srv := httptest.NewServer(metrics.Handler(metrics.NewCollector(rec, store, lim, insp, queues.All())))
	t.Cleanup(srv.Close)
	return srv.URL, lim, rs, queues
}

// mustScrape scrapes url and fails unless it answers 200.
func mustScrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics answered %s", resp.Status)
	}
	return scrape(t, url)
}

// readmeMetrics lists the metric names of the README's metrics tables.
func readmeMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(l[1:], "|")
		for _, m := range regexp.MustCompile("`((?:seedbatch|asynq)_[a-z_]+)").FindAllStringSubmatch(cell, -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// TestSeriesFromTheStart: before any event, every series the README lists
// is there: the provider requests of every kind and documented status, the
// waits and deferrals of every limit, the pause gauge, and asynq's metrics
// of every queue of the namespace, at 0; once asynq knows a queue, its
// series are asynq's own, and the scrape still succeeds.
func TestSeriesFromTheStart(t *testing.T) {
	t.Parallel()
	url, _, rs, queues := metricsSetup(t)
	got := mustScrape(t, url)
	want := []string{
		"seedbatch_redis_up", "seedbatch_provider_rate_limited_total", "seedbatch_download_bytes_total",
		"seedbatch_generation_seconds_count", "seedbatch_leases_in_use", `seedbatch_submitting_paused{reason=""}`,
	}
	for _, kind := range metrics.RequestKinds {
		for _, st := range []string{"200", "400", "401", "403", "429", "500", "error"} {
			want = append(want, fmt.Sprintf(`seedbatch_provider_requests_total{kind="%s",status="%s"}`, kind, st))
		}
	}
	for _, l := range []string{"rate", "in_flight", "cooldown"} {
		want = append(want, `seedbatch_limit_wait_seconds_total{limit="`+l+`"}`, `seedbatch_limit_deferrals_total{limit="`+l+`"}`)
	}
	for _, st := range tasks.States {
		want = append(want, `seedbatch_jobs{state="`+string(st)+`"}`)
	}
	for _, q := range queues.All() {
		want = append(want, `asynq_queue_latency_seconds{queue="`+q+`"}`, `asynq_tasks_processed_total{queue="`+q+`"}`,
			`asynq_tasks_failed_total{queue="`+q+`"}`, `asynq_tasks_enqueued_total{queue="`+q+`",state="pending"}`)
	}
	for _, name := range want {
		v, ok := got[name]
		if !ok {
			t.Errorf("no %s before any event", name)
		} else if v != 0 && name != "seedbatch_redis_up" {
			t.Errorf("%s = %v before any event, want 0", name, v)
		}
	}
	// Every metric the README lists is among them.
	names := map[string]bool{}
	for k := range got {
		name, _, _ := strings.Cut(k, "{")
		names[strings.TrimSuffix(name, "_count")] = true
	}
	listed := readmeMetrics(t)
	if len(listed) < 10 {
		t.Fatalf("the README's metrics table lists %v", listed)
	}
	for _, name := range listed {
		if !names[name] {
			t.Errorf("the README lists %s, which /metrics does not show before any event", name)
		}
	}
	if names["seedbatch_queue_tasks"] {
		t.Error("seedbatch_queue_tasks is still served: asynq_tasks_enqueued_total says the same")
	}

	// asynq learns of the submit queue; the others stay at 0.
	client := asynq.NewClientFromRedisClient(rs.Client)
	if _, err := client.Enqueue(asynq.NewTask("video:test", nil), asynq.Queue(queues.Submit)); err != nil {
		t.Fatal(err)
	}
	got = mustScrape(t, url)
	if v := got[`asynq_tasks_enqueued_total{queue="`+queues.Submit+`",state="pending"}`]; v != 1 {
		t.Errorf("pending submit tasks = %v, want 1", v)
	}
	if _, ok := got[`asynq_queue_latency_seconds{queue="`+queues.Poll+`"}`]; !ok {
		t.Error("the poll queue's latency went missing")
	}
}

// TestSubmittingPausedGauge: the gauge is 1 with the reason while
// submitting is paused, secrets in the reason masked, and 0 after resume.
func TestSubmittingPausedGauge(t *testing.T) {
	t.Parallel()
	url, lim, _, _ := metricsSetup(t)
	const secret = "sk-live-0123456789abcdef0123"
	if err := lim.Pause(t.Context(), "the provider refused the API key: Bearer "+secret); err != nil {
		t.Fatal(err)
	}
	paused := ""
	for k, v := range mustScrape(t, url) {
		if strings.HasPrefix(k, "seedbatch_submitting_paused{") {
			if v != 1 {
				t.Errorf("%s = %v while paused", k, v)
			}
			paused = k
		}
	}
	if !strings.Contains(paused, "the provider refused the API key") || strings.Contains(paused, secret) {
		t.Errorf("pause series %q: want the reason, without the key", paused)
	}
	if err := lim.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, ok := mustScrape(t, url)[`seedbatch_submitting_paused{reason=""}`]; !ok || v != 0 {
		t.Errorf("after resume: %v, %v", v, ok)
	}
}

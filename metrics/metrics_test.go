package metrics_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/metrics"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/worker"
)

// scrape reads /metrics into "name{labels}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestMetricsMatchSimulator runs a batch with failures, 5xx answers and a
// provider that enforces a low in-flight limit, scrapes /metrics and
// compares every provider counter with the simulator's own stats.
func TestMetricsMatchSimulator(t *testing.T) {
	rs := redistest.New(t)
	ctx := t.Context()
	s, err := sim.New(sim.Config{APIKey: "k", TimeScale: 200, MaxInFlight: 3, Seed: 7, FileSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	// 500 is listed as "not created", so the [sim:create-500] row is sent again.
	client, _ := seedance.New(seedance.Config{BaseURL: srv.URL, APIKey: "k", Timeout: 5 * time.Second,
		NotCreatedCodes: []int{500}})
	store := batch.NewStore(rs.Client, rs.Prefix)
	lim, _ := ratelimit.New(rs.Client, ratelimit.Config{Prefix: rs.Prefix, Scope: "m", RequestsPerMinute: 1 << 20, Burst: 1000})
	queues := queue.NamesFor(rs.Prefix)
	rec := metrics.NewRecorder(rs.Client, rs.Prefix)
	f, _ := fetch.New(fetch.Config{Dir: t.TempDir(), AllowPrivate: true}) // the simulator serves files on loopback
	w, err := worker.New(rs.Client, store, lim, client, f, worker.Config{Queues: queues, TimeScale: 200,
		MaxWait: 100 * time.Millisecond, Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("prompt\n")
	for i := range 12 {
		fmt.Fprintf(&csv, "metered scene %d\n", i)
	}
	csv.WriteString("a violation [sim:content-violation]\na flaky create [sim:create-500]\n")
	path := filepath.Join(t.TempDir(), "m.csv")
	os.WriteFile(path, []byte(csv.String()), 0o600)
	plan, err := batch.PlanFile(path, batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := queue.New(rs.Client, queues)
	defer q.Close()
	if _, err := store.Enqueue(ctx, q, plan, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown()
	testwait.Until(t, 60*time.Second, func() error {
		if _, c, err := store.Get(ctx, plan.ID); err != nil || c.Terminal() != plan.Rows {
			return fmt.Errorf("batch not finished: %v, %v", c, err)
		}
		return nil
	})

	insp := asynq.NewInspectorFromRedisClient(rs.Client)
	defer insp.Close()
	ms := httptest.NewServer(metrics.Handler(metrics.NewCollector(rec, store, lim, insp, queues.All())))
	defer ms.Close()
	got := scrape(t, ms.URL)
	st := s.Stats()
	for kind, byStatus := range st.Requests {
		for status, n := range byStatus {
			name := fmt.Sprintf(`seedbatch_provider_requests_total{kind="%s",status="%d"}`, kind, status)
			if kind == "file" {
				continue // downloads are counted in bytes
			}
			if got[name] != float64(n) {
				t.Errorf("%s = %v, simulator says %d", name, got[name], n)
			}
		}
	}
	if st.RateLimited == 0 || got["seedbatch_provider_rate_limited_total"] != float64(st.RateLimited) {
		t.Errorf("429s: metrics %v, simulator %d", got["seedbatch_provider_rate_limited_total"], st.RateLimited)
	}
	if want := float64(st.Count("file", 200) * 1000); got["seedbatch_download_bytes_total"] != want {
		t.Errorf("download bytes %v, want %v", got["seedbatch_download_bytes_total"], want)
	}
	if got["seedbatch_generation_seconds_count"] != float64(st.Succeeded+st.Failed) {
		t.Errorf("generation count %v, simulator ended %d", got["seedbatch_generation_seconds_count"], st.Succeeded+st.Failed)
	}
	if got[`seedbatch_jobs{state="done"}`] != 13 || got[`seedbatch_jobs{state="failed"}`] != 1 || got["seedbatch_leases_in_use"] != 0 {
		t.Errorf("jobs done %v failed %v, leases %v", got[`seedbatch_jobs{state="done"}`], got[`seedbatch_jobs{state="failed"}`], got["seedbatch_leases_in_use"])
	}
	if got["seedbatch_redis_up"] != 1 {
		t.Error("redis_up is not 1")
	}
}

// TestRecorderWritesInBatches checks that counts reach Redis in one write a
// second rather than one per event, and that Close writes the rest.
func TestRecorderWritesInBatches(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	rec := metrics.NewRecorder(rs.Client, rs.Prefix)
	for range 1000 {
		rec.Request(ctx, "status", 200)
	}
	rec.Generation(ctx, 45*time.Second)
	if n, _ := rs.Client.HLen(ctx, rs.Prefix+":metrics").Result(); n != 0 {
		t.Errorf("%d fields written at once: counts should wait for the next flush", n)
	}
	testwait.Until(t, 5*time.Second, func() error {
		if v, _ := rs.Client.HGet(ctx, rs.Prefix+":metrics", "req|status|200").Result(); v != "1000" {
			return fmt.Errorf("counts not written after the events: %q", v)
		}
		return nil
	})
	rec.Request(ctx, "create", 200)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := rs.Client.HGet(ctx, rs.Prefix+":metrics", "req|create|200").Result(); v != "1" {
		t.Errorf("Close did not write the last count: %q", v)
	}
}

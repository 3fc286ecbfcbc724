package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/housekeeping"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/scheduler"
)

// TestHealthcheckURL: healthcheck --url exits 0 on a 2xx answer and 1 with
// one line saying why otherwise, never 2 (container runtimes reserve it).
func TestHealthcheckURL(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/sick", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "redis does not answer: i/o timeout\nmore detail", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/healthz", http.StatusFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	tests := []struct {
		name   string
		args   []string
		code   int
		want   string // in the output
		reject string // never in the output
	}{
		{"healthy", []string{"--url", srv.URL + "/healthz"}, 0, "ok: " + srv.URL + "/healthz answered 200 OK", ""},
		{"unhealthy with a reason", []string{"--url", srv.URL + "/sick"}, 1, "503 Service Unavailable: redis does not answer: i/o timeout", "more detail"},
		{"nothing listens", []string{"--url", closed}, 1, "connection refused", ""},
		{"too slow", []string{"--url", srv.URL + "/slow", "--timeout", "200ms"}, 1, "no answer within the timeout", ""},
		{"a redirect is not followed", []string{"--url", srv.URL + "/moved"}, 1, "302 Found", ""},
		{"the query is not shown", []string{"--url", srv.URL + "/sick?token=let-me-in"}, 1, "503", "let-me-in"},
		{"not http", []string{"--url", "ftp://example.test/healthz"}, 1, "want an http(s) URL", ""},
		{"nothing to check", nil, 1, "want --url URL or one of worker, dashboard, scheduler", ""},
		{"both a URL and a target", []string{"--url", srv.URL, "worker"}, 1, "want --url URL or one of", ""},
		{"unknown target", []string{"cron"}, 1, `unknown target "cron"`, ""},
		{"unknown flag", []string{"--bogus"}, 1, "-bogus", ""},
		{"help", []string{"-h"}, 0, "Usage: seedbatch healthcheck", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, stdout, stderr := runMain(t, nil, append([]string{"healthcheck"}, tt.args...)...)
			out := stdout + stderr
			if code != tt.code || !strings.Contains(out, tt.want) || (tt.reject != "" && strings.Contains(out, tt.reject)) {
				t.Errorf("exit %d, want %d with %q (not %q):\n%s", code, tt.code, tt.want, tt.reject, out)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}

func TestHealthcheckLocalURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ listen, want string }{
		{"127.0.0.1:9090", "http://127.0.0.1:9090/healthz"},
		{":9090", "http://127.0.0.1:9090/healthz"},
		{"0.0.0.0:9090", "http://127.0.0.1:9090/healthz"},
		{"[::]:9090", "http://[::1]:9090/healthz"},
		{"10.0.0.5:9090", "http://10.0.0.5:9090/healthz"},
		{"worker.internal:9090", "http://worker.internal:9090/healthz"},
	}
	for _, tt := range tests {
		if got := localURL(tt.listen, "/healthz"); got != tt.want {
			t.Errorf("localURL(%q) = %s, want %s", tt.listen, got, tt.want)
		}
	}
}

// TestHealthcheckScheduler: healthcheck scheduler is healthy only once a
// scheduler serves this namespace's maintenance queue and has registered
// its entries.
func TestHealthcheckScheduler(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	file := filepath.Join(t.TempDir(), "seedbatch.yaml")
	yml := "schedule:\n  sync_interval: 1s\n  entries:\n    - {cron: \"@every 1h\", task: reconcile}\n    - {cron: \"@every 2h\", task: expiry}\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": rs.URL, "SEEDBATCH_REDIS_PREFIX": rs.Prefix}
	check := func() (int, string) {
		code, stdout, stderr := runMain(t, env, "healthcheck", "--config", file, "--timeout", "2s", "scheduler")
		return code, stdout + stderr
	}
	queue := rs.Prefix + "-maintenance"

	if code, out := check(); code != 1 || !strings.Contains(out, "no process serves the maintenance queue "+queue) {
		t.Errorf("no scheduler: exit %d\n%s", code, out)
	}

	// A process serving the queue that registers no entries.
	srv := asynq.NewServerFromRedisClient(rs.Client, asynq.Config{Queues: map[string]int{queue: 1}, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.NewServeMux()); err != nil {
		t.Fatal(err)
	}
	// Its first heartbeat, which lists it, is written right after Start.
	testwait.Until(t, 10*time.Second, func() error {
		if code, out := check(); code != 1 || !strings.Contains(out, "no running scheduler has registered entries on "+queue) {
			return fmt.Errorf("a server without a scheduler: exit %d\n%s", code, out)
		}
		return nil
	})
	srv.Shutdown()

	m := &Main{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	sch, err := scheduler.New(rs.Client, &housekeeping.Runner{}, scheduler.Options{Entries: m.scheduleEntries(file),
		Kinds: housekeeping.Kinds(), Queue: queue, SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sch.Shutdown)
	var out string
	testwait.Until(t, 20*time.Second, func() error {
		var code int
		if code, out = check(); code != 0 {
			return fmt.Errorf("scheduler running: still exit %d\n%s", code, out)
		}
		return nil
	})
	if !strings.Contains(out, "ok: scheduler serves "+queue+" with 2 entries registered") {
		t.Errorf("healthy scheduler: %s", out)
	}
}

// TestWorkerListen starts `seedbatch worker --listen` as a container would,
// and checks its /healthz, its /metrics, and the healthcheck command
// against it.
func TestWorkerListen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	rs := redistest.New(t)
	key := "listen-" + randomHex(8)
	simURL := startSimProcess(t, key)
	env := []string{"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix, "SEEDANCE_API_KEY=" + key,
		"SEEDANCE_BASE_URL=" + simURL, "SEEDBATCH_OUT_DIR=" + t.TempDir(), "SEEDBATCH_CALLBACK_LISTEN=",
		"SEEDBATCH_DASHBOARD_TOKEN=", "SEEDBATCH_DASHBOARD_USER=", "SEEDBATCH_DASHBOARD_PASSWORD="}

	code, out := cli(t, env, "worker", "--listen", "0.0.0.0:0")
	if code != exitUsage || !strings.Contains(out, "worker.listen") || !strings.Contains(out, "without credentials") {
		t.Errorf("an open address without credentials: exit %d\n%s", code, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, env, "worker", "--listen", addr)
	base := "http://" + addr
	testwait.Until(t, 30*time.Second, func() error {
		if code, out := cli(t, env, "healthcheck", "--url", base+"/healthz", "--timeout", "1s"); code != 0 {
			return fmt.Errorf("worker not healthy: exit %d\n%s", code, out)
		}
		return nil
	})
	if code, out := cli(t, append(env, "SEEDBATCH_WORKER_LISTEN="+addr), "healthcheck", "worker"); code != 0 || !strings.Contains(out, "ok: "+base+"/healthz answered 200") {
		t.Errorf("healthcheck worker: exit %d\n%s", code, out)
	}
	get := func(path, host string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path, host string
		code       int
		want       []string
	}{
		{"/healthz", "", 200, []string{"ok"}},
		{"/healthz", "worker-2.internal", 200, []string{"ok"}},
		{"/metrics", "", 200, []string{"seedbatch_redis_up 1", "seedbatch_leases_in_use", "go_goroutines", "process_"}},
		{"/metrics", "rebind.attacker.example", 421, []string{"worker.allowed_hosts"}},
	} {
		code, body := get(tt.path, tt.host)
		if code != tt.code {
			t.Errorf("GET %s (Host %q): %d, want %d: %.300s", tt.path, tt.host, code, tt.code, body)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s (Host %q) lacks %q", tt.path, tt.host, w)
			}
		}
		if strings.Contains(body, key) {
			t.Errorf("GET %s shows the API key", tt.path)
		}
	}
	if err := p.stop(t, 40*time.Second); err != nil {
		t.Errorf("worker exit after SIGTERM: %v", err)
	}
	if code, _, _ := runMain(t, nil, "healthcheck", "--url", base+"/healthz", "--timeout", "1s"); code != 1 {
		t.Errorf("healthcheck of a stopped worker: exit %d, want 1", code)
	}
}

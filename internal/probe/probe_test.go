package probe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// setup returns the probe handler for cfg, with a metrics handler that
// answers "metrics" and a health that returns what *health holds.
func setup(t *testing.T, cfg Config) (http.Handler, *atomic.Pointer[error]) {
	t.Helper()
	var health atomic.Pointer[error]
	if cfg.Metrics == nil {
		cfg.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics") })
	}
	if cfg.Health == nil {
		cfg.Health = func(context.Context) error {
			if p := health.Load(); p != nil {
				return *p
			}
			return nil
		}
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, &health
}

func get(h http.Handler, path, host string, prepare ...func(*http.Request)) (int, string) {
	r := httptest.NewRequest("GET", path, nil)
	r.Host = host
	for _, p := range prepare {
		p(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	h, health := setup(t, Config{Listen: "127.0.0.1:9090"})
	if code, body := get(h, "/healthz", "127.0.0.1:9090"); code != 200 || body != "ok\n" {
		t.Errorf("healthy: %d %q", code, body)
	}
	bad := errors.New("redis: dial tcp: connection refused\nsecond line")
	health.Store(&bad)
	code, body := get(h, "/healthz", "worker-3.internal")
	if code != http.StatusServiceUnavailable || body != "redis: dial tcp: connection refused\n" {
		t.Errorf("unhealthy, any Host: %d %q, want 503 and the first line of the reason", code, body)
	}
	health.Store(nil)
	if code, _ := get(h, "/healthz", "rebind.attacker.example"); code != 200 {
		t.Errorf("/healthz with any Host: %d, want 200", code)
	}
}

func TestHealthzTimeout(t *testing.T) {
	t.Parallel()
	h, _ := setup(t, Config{Listen: "127.0.0.1:9090", HealthTimeout: 50 * time.Millisecond,
		Health: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		}})
	start := time.Now()
	code, body := get(h, "/healthz", "localhost")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "deadline") || time.Since(start) > 5*time.Second {
		t.Errorf("a hanging check: %d %q after %v", code, body, time.Since(start))
	}
}

func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	open, _ := setup(t, Config{Listen: "127.0.0.1:9090", AllowedHosts: []string{"metrics.example.test"}, Setting: "worker.allowed_hosts"})
	token, _ := setup(t, Config{Listen: "0.0.0.0:9090", Token: "let-me-in"})
	users, _ := setup(t, Config{Listen: "10.0.0.5:9090", User: "prom", Password: "pw"})
	tests := []struct {
		name    string
		h       http.Handler
		host    string
		prepare []func(*http.Request)
		code    int
		want    string
	}{
		{"loopback, no credentials configured", open, "127.0.0.1:9090", nil, 200, "metrics"},
		{"localhost", open, "localhost", nil, 200, "metrics"},
		{"an allowed host", open, "METRICS.example.test:443", nil, 200, "metrics"},
		{"a rebinding name", open, "rebind.attacker.example", nil, 421, "worker.allowed_hosts"},
		{"token: none sent", token, "127.0.0.1", nil, 401, ""},
		{"token: wrong", token, "127.0.0.1", []func(*http.Request){bearer("nope")}, 401, ""},
		{"token: right", token, "127.0.0.1", []func(*http.Request){bearer("let-me-in")}, 200, "metrics"},
		{"token: right, rebinding name", token, "rebind.attacker.example", []func(*http.Request){bearer("let-me-in")}, 421, ""},
		{"basic: right", users, "10.0.0.5:9090", []func(*http.Request){basic("prom", "pw")}, 200, "metrics"},
		{"basic: wrong password", users, "10.0.0.5:9090", []func(*http.Request){basic("prom", "pW")}, 401, ""},
		{"basic: other host", users, "localhost", []func(*http.Request){basic("prom", "pw")}, 421, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := get(tt.h, "/metrics", tt.host, tt.prepare...)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("GET /metrics: %d %q, want %d with %q", code, body, tt.code, tt.want)
			}
			if strings.Contains(body, "let-me-in") || strings.Contains(body, "pw\n") {
				t.Errorf("the answer shows a credential: %q", body)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		listen      string
		credentials bool
		ok          bool
	}{
		{"127.0.0.1:9090", false, true},
		{"[::1]:9090", false, true},
		{"localhost:9090", false, true},
		{"0.0.0.0:9090", false, false},
		{":9090", false, false},
		{"10.0.0.5:9090", false, false},
		{"worker.internal:9090", false, false},
		{"0.0.0.0:9090", true, true},
		{":9090", true, true},
		{"no-port", true, false},
	}
	for _, tt := range tests {
		err := CheckListen(tt.listen, tt.credentials)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, %v) = %v, want ok %v", tt.listen, tt.credentials, err, tt.ok)
		}
	}
	if _, err := New(Config{Listen: ":9090", Metrics: http.NotFoundHandler(), Health: func(context.Context) error { return nil }}); err == nil ||
		!strings.Contains(err.Error(), "without credentials") {
		t.Errorf("New on every interface without credentials: %v", err)
	}
	if _, err := New(Config{Listen: "127.0.0.1:1", User: "u", Metrics: http.NotFoundHandler(), Health: func(context.Context) error { return nil }}); err == nil {
		t.Error("New with a user and no password: no error")
	}
}

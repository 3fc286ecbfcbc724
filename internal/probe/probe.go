// Package probe serves a process's health and metrics over HTTP, for a
// container orchestrator's health checks and for Prometheus:
//
//	GET /healthz   200 "ok" while Config.Health reports no problem (within
//	               Config.HealthTimeout), 503 and the problem in one line
//	               otherwise
//	GET /metrics   Config.Metrics
//
// # Host names and credentials
//
// /healthz answers any Host and needs no credentials: orchestrators probe by
// address or service name, and it tells nothing but the process's state.
//
// /metrics answers only the Host names of package hostcheck's rule, from
// Config.Listen and Config.AllowedHosts, so a web page cannot read it
// through a browser by DNS rebinding. When credentials are configured
// (Config.Token, or Config.User and Config.Password) it needs them, as
// "Authorization: Bearer TOKEN" or HTTP basic auth; without them, New refuses
// any Listen address but a loopback one (see CheckListen), so that only this
// machine can read it. Secrets are compared in constant time.
package probe

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seedbatch/seedbatch/internal/hostcheck"
)

// HealthTimeoutDefault bounds one health check when Config.HealthTimeout is
// zero.
const HealthTimeoutDefault = 2 * time.Second

// maxReason caps the length of the reason /healthz answers with.
const maxReason = 300

// Config configures the probe handler.
type Config struct {
	// Listen is the address the handler is served on (required): it decides
	// the Host names /metrics answers to, and whether credentials are needed.
	Listen string
	// AllowedHosts are further Host names /metrics answers to (exact,
	// case-insensitive, port ignored).
	AllowedHosts []string
	// Setting names the configuration field that lists further hosts; a
	// refused request is told to add its name there.
	Setting string
	// Token is accepted as "Authorization: Bearer TOKEN".
	Token string
	// User and Password are accepted as HTTP basic auth; set both or neither.
	User, Password string
	// Metrics is served at /metrics (required).
	Metrics http.Handler
	// Health returns nil while the process is healthy, else an error whose
	// text, its first line, /healthz answers with (required). It must not
	// hold secrets.
	Health func(ctx context.Context) error
	// HealthTimeout bounds one call of Health (default
	// HealthTimeoutDefault).
	HealthTimeout time.Duration
	// Logger receives a line when the health changes and for each refused
	// request (default: discarded).
	Logger *slog.Logger
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.HealthTimeout = cmp.Or(c.HealthTimeout, HealthTimeoutDefault)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) credentials() bool { return c.Token != "" || (c.User != "" && c.Password != "") }

func (c Config) validate() error {
	switch {
	case c.Metrics == nil:
		return errors.New("probe: Metrics is required")
	case c.Health == nil:
		return errors.New("probe: Health is required")
	case (c.User == "") != (c.Password == ""):
		return errors.New("probe: User and Password: set both or neither")
	}
	return CheckListen(c.Listen, c.credentials())
}

// CheckListen refuses a listen address that is not host:port, and one whose
// host is not a loopback address or "localhost" (an empty host, 0.0.0.0, ::,
// another address or name) unless credentials are configured.
func CheckListen(listen string, credentials bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("probe: listen address %q: %w", listen, err)
	}
	if credentials || hostcheck.Loopback(listen) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("probe: refusing to serve /metrics on %s (%s) without credentials: "+
		"set a token or a user and password, or listen on 127.0.0.1", listen, shown)
}

// server is the probe handler.
type server struct {
	cfg   Config
	hosts *hostcheck.Checker
	// healthy is the last health seen, to log only its changes.
	healthy atomic.Bool
}

// New returns the handler of /healthz and /metrics for cfg.
func New(cfg Config) (http.Handler, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hosts, err := hostcheck.New(hostcheck.Config{Listen: cfg.Listen, Hosts: cfg.AllowedHosts,
		Setting: cfg.Setting, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	s := &server{cfg: cfg, hosts: hosts}
	s.healthy.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", hosts.Handler(s.authorize(cfg.Metrics)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	}), nil
}

func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
	defer cancel()
	err := s.cfg.Health(ctx)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if was := s.healthy.Swap(err == nil); was != (err == nil) {
		if err != nil {
			s.cfg.Logger.Warn("unhealthy", "reason", reason(err))
		} else {
			s.cfg.Logger.Info("healthy_again")
		}
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, reason(err))
		return
	}
	fmt.Fprintln(w, "ok")
}

// reason is the first line of err's text, capped.
func reason(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > maxReason {
		s = s[:maxReason] + "…"
	}
	return s
}

// authorize passes requests that carry the configured credentials, or all
// of them when none are configured.
func (s *server) authorize(next http.Handler) http.Handler {
	if !s.cfg.credentials() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authenticated(r) {
			next.ServeHTTP(w, r)
			return
		}
		if s.cfg.User != "" {
			w.Header().Add("WWW-Authenticate", `Basic realm="seedbatch", charset="UTF-8"`)
		}
		if s.cfg.Token != "" {
			w.Header().Add("WWW-Authenticate", `Bearer realm="seedbatch"`)
		}
		s.cfg.Logger.Info("metrics_unauthorized", "remote", r.RemoteAddr)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
}

func (s *server) authenticated(r *http.Request) bool {
	if s.cfg.Token != "" {
		if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(t, s.cfg.Token) {
			return true
		}
	}
	if s.cfg.User != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, s.cfg.User) && equal(p, s.cfg.Password) {
			return true
		}
	}
	return false
}

// equal compares two secrets in constant time, whatever their lengths.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

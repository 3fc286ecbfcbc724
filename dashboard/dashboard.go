package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/hostcheck"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
)

// Defaults and limits.
const (
	// PageSizeDefault is how many batches or rows a page shows.
	PageSizeDefault = 100
	// ReadyTimeout bounds the Redis PING of /readyz.
	ReadyTimeout = time.Second
	// MonitorPath is where asynqmon is mounted.
	MonitorPath = "/monitor"
	// ListenDefault is the address the dashboard is taken to listen on when
	// Config.Listen is empty.
	ListenDefault = "127.0.0.1:8080"
	// AllowedHostsSetting is the configuration field that lists further Host
	// names; a refused request is told to add its name there.
	AllowedHostsSetting = "dashboard.allowed_hosts"
	// RefreshDefault is how often a page showing a running batch reloads
	// itself.
	RefreshDefault = 10 * time.Second
	// FilterScanDefault is how many rows a page of rows of one state looks
	// at, at most: a large batch is filtered a page at a time.
	FilterScanDefault = 20000
)

// Config configures a Server.
type Config struct {
	// Redis is the shared client (required).
	Redis redis.UniversalClient
	// RedisOpt reaches the same Redis for asynqmon, which opens its own
	// connections (for example asynq.RedisClientOpt or the result of
	// asynq.ParseRedisURI). When nil, /monitor/ is not served.
	RedisOpt asynq.RedisConnOpt
	// Store holds the batch and job records (required).
	Store *batch.Store
	// Simulated holds the records of the batches run with the built-in
	// simulator on this Redis, under their own key prefix (optional): the
	// list page shows them apart, never mixed with real batches.
	Simulated *batch.Store
	// Limiter holds the pause flag and the in-flight leases (required): the
	// first account's.
	Limiter *ratelimit.Limiter
	// Accounts are every provider account by name, the first first (whose
	// limiter is Limiter), when there are several: each one's leases in
	// use and pause are shown by its name. Optional.
	Accounts []Account
	// Queues names the asynq queues (required; see queue.NamesFor).
	Queues queue.Names
	// Listen is the address the dashboard is served on (default
	// ListenDefault). With AllowedHosts it decides which Host names the
	// dashboard answers to (see the package doc); it does not listen itself.
	Listen string
	// AllowedHosts are further Host names the dashboard answers to, such as
	// a reverse proxy's name: exact, case-insensitive, port ignored.
	AllowedHosts []string
	// OutDir is where downloaded files live: the files recorded on jobs are
	// served from it, read-only, under /files/. Empty: /files/ answers 404
	// unless Objects is set.
	OutDir string
	// Objects, when set, is the bucket the files are stored in (out_dir is
	// a bucket URL): /files/ redirects to a signed URL of the object, valid
	// for FileLinkExpiry, where the bucket signs, and serves the object's
	// content itself otherwise.
	Objects Objects
	// Token is a bearer token; see the package doc for how browsers send it.
	Token string
	// User and Password enable HTTP basic auth; set both or neither.
	User, Password string
	// AllowWrites enables the actions and asynqmon's writes, for
	// authenticated requests only (default false: read-only).
	AllowWrites bool
	// Metrics is served at /metrics when set.
	Metrics http.Handler
	// Logger receives the server's logs (default: discarded).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Refresh is how often the list, while a batch on it runs, and the page
	// of a running batch reload themselves (default RefreshDefault; a
	// negative value turns it off). A finished batch's page does not.
	Refresh time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Listen == "" {
		c.Listen = ListenDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Refresh == 0 {
		c.Refresh = RefreshDefault
	}
	return c
}

func (c Config) validate() error {
	q := c.Queues
	switch {
	case c.Redis == nil:
		return errors.New("dashboard: Redis is required")
	case c.Store == nil:
		return errors.New("dashboard: Store is required")
	case c.Limiter == nil:
		return errors.New("dashboard: Limiter is required")
	case q.Submit == "" || q.Poll == "" || q.Download == "":
		return errors.New("dashboard: Queues: need the three queue names")
	case (c.User == "") != (c.Password == ""):
		return errors.New("dashboard: User and Password: set both or neither")
	case strings.ContainsRune(c.User, ':'):
		return errors.New("dashboard: User: must not contain ':'")
	}
	return nil
}

// authConfigured reports whether any credential is configured.
func (c Config) authConfigured() bool { return c.Token != "" || (c.User != "" && c.Password != "") }

// Server is the dashboard. Close it when done.
type Server struct {
	cfg     Config
	log     *slog.Logger
	queue   *queue.Client
	insp    *asynq.Inspector
	tmpl    map[string]*template.Template
	monRO   *asynqmon.HTTPHandler
	monRW   *asynqmon.HTTPHandler
	files   http.Handler
	hosts   *hostcheck.Checker
	cookie  string // the session cookie's expected value, when Token is set
	cop     *http.CrossOriginProtection
	handler http.Handler
}

//go:embed templates/*.html static/*
var assets embed.FS

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		queue: queue.New(cfg.Redis, cfg.Queues),
		insp:  asynq.NewInspectorFromRedisClient(cfg.Redis),
		cop:   http.NewCrossOriginProtection(),
		tmpl:  map[string]*template.Template{},
	}
	if cfg.Token != "" {
		s.cookie = sessionValue(cfg.Token)
	}
	hosts, err := hostcheck.New(hostcheck.Config{Listen: cfg.Listen, Hosts: cfg.AllowedHosts,
		Setting: AllowedHostsSetting, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	s.hosts = hosts
	for _, page := range []string{"list", "batch", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", page, err)
		}
		s.tmpl[page] = t
	}
	if cfg.RedisOpt != nil {
		opts := asynqmon.Options{
			RootPath:         MonitorPath,
			RedisConnOpt:     cfg.RedisOpt,
			PayloadFormatter: asynqmon.PayloadFormatterFunc(formatPayload),
			ResultFormatter:  asynqmon.ResultFormatterFunc(formatResult),
			ReadOnly:         true,
		}
		s.monRO = asynqmon.New(opts)
		if cfg.AllowWrites && cfg.authConfigured() {
			opts.ReadOnly = false
			s.monRW = asynqmon.New(opts)
		}
	}
	s.files = s.fileHandler()
	s.handler = s.routes()
	return s, nil
}

// Handler returns the dashboard's http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the server's connections (not the shared Redis client).
func (s *Server) Close() error {
	_ = s.queue.Close() // a queue on a shared client reports that it cannot close it
	var errs []error
	for _, m := range []*asynqmon.HTTPHandler{s.monRO, s.monRW} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", s.handleList)
	pages.HandleFunc("GET /batches/{id}", s.handleBatch)
	pages.HandleFunc("POST /batches/{id}/cancel", s.write(s.handleCancel))
	pages.HandleFunc("POST /batches/{id}/retry", s.write(s.handleRetry))
	pages.HandleFunc("POST /submitting/pause", s.write(s.handlePause))
	pages.HandleFunc("POST /submitting/resume", s.write(s.handleResume))
	pages.HandleFunc("GET /static/style.css", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, assets, "static/style.css")
	})

	mux.Handle("/", withCSP(pages))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle(filePattern, s.files)
	mux.Handle("/files/", http.NotFoundHandler())
	if s.cfg.Metrics != nil {
		mux.Handle("/metrics", s.cfg.Metrics)
	}
	if s.monRO != nil {
		mux.Handle(MonitorPath+"/", http.HandlerFunc(s.handleMonitor))
	}
	return s.secure(mux)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.cfg.Redis.Ping(ctx).Err(); err != nil {
		s.log.Warn("dashboard_not_ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "redis unavailable")
		return
	}
	fmt.Fprintln(w, "ok")
}

// CheckListen refuses to listen on a non-loopback address (an empty host,
// 0.0.0.0, a public IP, a host name other than localhost) unless cfg
// configures a token or a user and password.
func CheckListen(addr string, cfg Config) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dashboard: listen address %q: %w", addr, err)
	}
	if cfg.authConfigured() {
		return nil
	}
	if isLoopback(host) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("dashboard: refusing to listen on %s (%s) without credentials: "+
		"set a token or a user and password, or listen on 127.0.0.1", addr, shown)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Account is a provider account as the dashboard shows it: by its name,
// never its key.
type Account struct {
	Name    string
	Limiter *ratelimit.Limiter
}

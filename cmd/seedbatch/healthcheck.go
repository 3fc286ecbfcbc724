package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/config"
)

// healthcheckTimeoutDefault bounds a healthcheck: shorter than the timeout
// container runtimes give a check (Docker's default is 30s).
const healthcheckTimeoutDefault = 5 * time.Second

// Healthcheck targets.
const (
	targetWorker    = "worker"
	targetDashboard = "dashboard"
	targetScheduler = "scheduler"
)

// healthcheckCmd checks a seedbatch process, for container healthchecks in
// images without a shell or curl. It exits 0 when healthy and 1 otherwise
// (also for bad usage: container runtimes reserve other codes), with one
// line that says why.
//
//	--url URL   GET URL; healthy when it answers 2xx within the timeout
//	worker      GET /healthz of worker.listen
//	dashboard   GET /readyz of dashboard.listen
//	scheduler   Redis answers, a process serves the maintenance queue, and
//	            a running scheduler has registered this configuration's entries
//
// worker and dashboard read the address from the same configuration the
// process has (environment, --config, --set); an unspecified host (":9090",
// "0.0.0.0:9090") is reached on loopback.
func (m *Main) healthcheckCmd(ctx context.Context, args []string) error {
	var c common
	fs := m.flags("healthcheck", "[--url URL | worker | dashboard | scheduler]", &c)
	rawURL := fs.String("url", "", "GET this URL; healthy when it answers 2xx")
	timeout := fs.Duration("timeout", healthcheckTimeoutDefault, "give up after this long")
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return unhealthy(err)
	}
	target := ""
	switch {
	case fs.NArg() > 1, fs.NArg() == 1 && *rawURL != "", fs.NArg() == 0 && *rawURL == "":
		fs.Usage()
		return unhealthy(fmt.Errorf("healthcheck: want --url URL or one of %s, %s, %s", targetWorker, targetDashboard, targetScheduler))
	case fs.NArg() == 1:
		target = fs.Arg(0)
	}
	if *timeout <= 0 {
		return unhealthy(errors.New("healthcheck: --timeout must be positive"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var ok string
	switch target {
	case "":
		ok, err = checkURL(ctx, *rawURL)
	case targetWorker:
		if cfg.Worker.Listen == "" {
			return unhealthy(errors.New("healthcheck: worker.listen is empty, so the worker serves no /healthz: set it (--listen), or pass --url"))
		}
		ok, err = checkURL(ctx, localURL(cfg.Worker.Listen, "/healthz"))
	case targetDashboard:
		ok, err = checkURL(ctx, localURL(cfg.Dashboard.Listen, "/readyz"))
	case targetScheduler:
		ok, err = checkScheduler(ctx, cfg, *timeout)
	default:
		fs.Usage()
		return unhealthy(fmt.Errorf("healthcheck: unknown target %q: want %s, %s or %s", target, targetWorker, targetDashboard, targetScheduler))
	}
	if err != nil {
		return unhealthy(fmt.Errorf("healthcheck: %w", err))
	}
	fmt.Fprintln(m.Stdout, "ok:", ok)
	return nil
}

// unhealthy makes err exit 1, the only failure code container healthchecks
// know, keeping its message; -h stays a success.
func unhealthy(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return &exitError{code: exitRows, err: ee.err}
	}
	return &exitError{code: exitRows, err: err}
}

// localURL is the http URL of path on a server listening on listen; an
// unspecified host is reached on loopback.
func localURL(listen, path string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen + path // checkURL says what is wrong
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// checkURL GETs rawURL, without a proxy and without following redirects,
// and reports it healthy when it answers 2xx before ctx ends.
func checkURL(ctx context.Context, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url %q: want an http(s) URL", rawURL)
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String() // no query: it may hold a token
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", shown, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL, shown already
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("%s: no answer within the timeout", shown)
		}
		return "", fmt.Errorf("%s: %w", shown, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		if line == "" {
			return "", fmt.Errorf("%s answered %s", shown, resp.Status)
		}
		return "", fmt.Errorf("%s answered %s: %s", shown, resp.Status, line)
	}
	return fmt.Sprintf("%s answered %s", shown, resp.Status), nil
}

// checkScheduler reports the scheduler of cfg's namespace healthy when Redis
// answers, a process serves the maintenance queue (asynq lists its server
// as active), and, when cfg has schedule entries, a running scheduler has
// registered entries on that queue (asynq lists only the entries of
// schedulers whose heartbeat is recent). Any process on the same Redis and
// prefix counts: run one scheduler per Redis.
func checkScheduler(ctx context.Context, cfg config.Config, timeout time.Duration) (string, error) {
	if !cfg.Redis.Configured() {
		return "", errors.New("no Redis configured: set REDIS_URL (or REDIS_SENTINEL_ADDRS, REDIS_CLUSTER_ADDRS) or pass --redis")
	}
	// asynq's inspector takes no context: bound each command instead.
	conn := cfg.Redis.Conn()
	conn.Timeout = timeout
	client, err := conn.Client()
	if err != nil {
		return "", fmt.Errorf("redis: %v", err)
	}
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("redis (%s) does not answer: %v", conn.Describe(), redactor(cfg).Error(err))
	}
	insp := asynq.NewInspectorFromRedisClient(client)
	defer insp.Close()
	queue := maintenanceQueue(cfg)
	servers, err := insp.Servers()
	if err != nil {
		return "", fmt.Errorf("list asynq servers: %v", redactor(cfg).Error(err))
	}
	serving := 0
	for _, s := range servers {
		if _, ok := s.Queues[queue]; ok && s.Status == "active" {
			serving++
		}
	}
	if serving == 0 {
		return "", fmt.Errorf("no process serves the maintenance queue %s: is seedbatch scheduler running with redis.prefix %q?", queue, cfg.Redis.Prefix)
	}
	if len(cfg.Schedule.Entries) == 0 {
		return fmt.Sprintf("scheduler serves %s (no schedule entries configured)", queue), nil
	}
	entries, err := insp.SchedulerEntries()
	if err != nil {
		return "", fmt.Errorf("list scheduler entries: %v", redactor(cfg).Error(err))
	}
	registered := 0
	for _, e := range entries {
		for _, o := range e.Opts {
			if o.Type() == asynq.QueueOpt && o.Value() == queue {
				registered++
			}
		}
	}
	if registered == 0 {
		return "", fmt.Errorf("no running scheduler has registered entries on %s (%d configured); a scheduler registers "+
			"them within 10s of starting", queue, len(cfg.Schedule.Entries))
	}
	return fmt.Sprintf("scheduler serves %s with %d entries registered", queue, registered), nil
}

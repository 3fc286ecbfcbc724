package main

import (
	"flag"
	"net"
	"net/http"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/internal/probe"
	"github.com/seedbatch/seedbatch/internal/serve"
	"github.com/seedbatch/seedbatch/metrics"
)

// listenFlag adds the worker's --listen flag, a shorthand of
// --set worker.listen=ADDR.
func listenFlag(fs *flag.FlagSet) {
	set := fs.Lookup("set").Value
	fs.Func("listen", "serve /healthz and /metrics on this address, e.g. 127.0.0.1:9090 (worker.listen)", func(v string) error {
		return set.Set("worker.listen=" + v)
	})
}

// credentialsConfigured reports whether the dashboard's credentials, which
// the worker's /metrics asks for too, are configured.
func credentialsConfigured(cfg config.Config) bool {
	return cfg.Dashboard.Token != "" || (cfg.Dashboard.User != "" && cfg.Dashboard.Password != "")
}

// listenProbe listens on worker.listen, or returns nil when it is empty. It
// refuses an address other than a loopback one without credentials.
func listenProbe(cfg config.Config) (net.Listener, error) {
	addr := cfg.Worker.Listen
	if addr == "" {
		return nil, nil
	}
	if err := probe.CheckListen(addr, credentialsConfigured(cfg)); err != nil {
		return nil, fail(exitUsage, "worker.listen: %v (the credentials are dashboard.token, or dashboard.user and dashboard.password)", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fail(exitUsage, "worker.listen: %v", err)
	}
	return ln, nil
}

// closeListener closes ln if there is one.
func closeListener(ln net.Listener) {
	if ln != nil {
		_ = ln.Close()
	}
}

// serveProbe serves the running worker's /healthz and /metrics on ln, if
// ln is not nil, and returns the function that stops serving.
func serveProbe(s *stack, r *running, ln net.Listener) (stop func(), err error) {
	if ln == nil {
		return func() {}, nil
	}
	cfg := s.cfg
	insp := asynq.NewInspectorFromRedisClient(s.rdb)
	h, err := probe.New(probe.Config{
		Listen: cfg.Worker.Listen, AllowedHosts: cfg.Worker.AllowedHosts, Setting: "worker.allowed_hosts",
		Token: cfg.Dashboard.Token.Reveal(), User: cfg.Dashboard.User, Password: cfg.Dashboard.Password.Reveal(),
		Metrics: metricsHandler(s, r.rec, insp), Health: r.w.Health, Logger: s.log,
	})
	if err != nil {
		insp.Close()
		ln.Close()
		return nil, fail(exitUsage, "worker.listen: %v", err)
	}
	srv := serve.Start(ln, h)
	s.log.Info("probe_listening", "url", "http://"+ln.Addr().String(), "paths", "/healthz /metrics")
	return func() {
		_ = srv.Stop()
		insp.Close()
	}, nil
}

// metricsHandler serves what every /metrics of seedbatch serves: the totals
// that every process counts in Redis, jobs by state, in-flight leases and
// queue sizes, with this process's Go runtime and process metrics.
func metricsHandler(s *stack, rec *metrics.Recorder, insp *asynq.Inspector) http.Handler {
	queues := append(s.queues.All(), maintenanceQueue(s.cfg))
	c := metrics.NewCollector(rec, s.store, s.limiter, insp, queues)
	var accounts []metrics.Account
	for _, a := range s.accounts {
		accounts = append(accounts, metrics.Account{Name: a.Name, Limiter: a.limiter})
	}
	c.SetAccounts(accounts)
	return metrics.Handler(c)
}

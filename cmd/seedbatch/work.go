package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/serve"
	"github.com/seedbatch/seedbatch/metrics"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/rundir"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/worker"
)

// workerConfig maps the configuration onto the worker's.
func workerConfig(s *stack) worker.Config {
	w := s.cfg.Worker
	level := asynq.WarnLevel
	if s.cfg.Log.Level == "debug" {
		level = asynq.DebugLevel
	}
	return worker.Config{
		Queues:            s.queues,
		SubmitConcurrency: w.SubmitConcurrency,
		PollConcurrency:   w.PollConcurrency,
		FirstPoll:         map[int]time.Duration{4: w.FirstPoll4s, 8: w.FirstPoll8s, 12: w.FirstPoll12s},
		PollInterval:      w.PollInterval,
		TimeScale:         w.TimeScale,
		MaxRetry:          w.MaxRetry,
		MaxUnreadable:     w.MaxUnreadable,
		ShutdownTimeout:   w.ShutdownTimeout,
		Logger:            s.log,
		Redactor:          redactor(s.cfg),
		LogLevel:          level,
		RequestType:       s.cfg.Callback.RequestType,
		Callback: worker.CallbackConfig{
			PublicURL:      s.cfg.Callback.PublicURL,
			Secret:         []byte(s.cfg.Callback.Secret.Reveal()),
			Confirm:        s.cfg.Callback.Confirm,
			SafetyGrace:    s.cfg.Callback.SafetyGrace,
			SafetyInterval: s.cfg.Callback.SafetyInterval,
			MaxBody:        s.cfg.Callback.MaxBody,
			Listen:         s.cfg.Callback.Listen,
			AllowedHosts:   s.cfg.Callback.AllowedHosts,
		},
		DownloadConcurrency: s.cfg.Download.Concurrency,
		Crash:               s.crash,
	}
}

// downloadConfig maps the configuration onto the fetcher's. Downloads may
// reach addresses that are not public when download.allow_private_hosts
// says so, when builtinSim is set (run's simulator serves the result files
// on loopback), or when the provider itself is on such an address: a
// simulator or stand-in on this machine or network, whose result URLs point
// there too. The last is logged. The simulator's host joins a
// download.allowed_hosts list.
func downloadConfig(ctx context.Context, s *stack, builtinSim bool) fetch.Config {
	cfg := fetch.Config{
		Dir:          s.cfg.OutDir,
		MaxBytes:     s.cfg.Download.MaxBytes,
		Timeout:      s.cfg.Download.Timeout,
		AllowPrivate: s.cfg.Download.AllowPrivateHosts || builtinSim,
		AllowedHosts: s.cfg.Download.AllowedHosts,
		Crash:        s.crash,
	}
	if builtinSim && len(cfg.AllowedHosts) > 0 {
		// The simulator serves the result files itself.
		if u, err := url.Parse(s.cfg.Provider.BaseURL); err == nil {
			cfg.AllowedHosts = append(slices.Clone(cfg.AllowedHosts), u.Hostname())
		}
	}
	if cfg.AllowPrivate {
		return cfg
	}
	if host, addr, ok := privateProvider(ctx, s.cfg.Provider.BaseURL); ok {
		cfg.AllowPrivate = true
		s.log.Info("downloads_from_private_addresses_allowed", "provider_host", host, "provider_address", addr.String(),
			"reason", "the provider is on a non-public address, so its result URLs are too")
	}
	return cfg
}

// privateProvider reports whether the host of baseURL is, or resolves only
// to, addresses that are not public (see fetch.NonPublic), returning the
// host and its first address. A host that does not resolve is not private.
func privateProvider(ctx context.Context, baseURL string) (host string, addr netip.Addr, ok bool) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Hostname() == "" {
		return "", netip.Addr{}, false
	}
	host = u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return host, netip.Addr{}, false
		}
	}
	if len(addrs) == 0 {
		return host, netip.Addr{}, false
	}
	for _, a := range addrs {
		if fetch.NonPublic(a) == "" {
			return host, netip.Addr{}, false
		}
	}
	return host, addrs[0], true
}

// running is a started worker and its callback receiver, if any.
type running struct {
	w   *worker.Worker
	rec *metrics.Recorder
	srv *serve.Server
	// objs is the bucket videos are stored in, when out_dir is one.
	objs *objstore.Bucket
	// callbackURL is the receiver's address, when it listens.
	callbackURL string
}

// startWorker starts a worker on the stack and, when ln is not nil, its
// callback receiver on ln. builtinSim says the provider is run's built-in
// simulator.
func startWorker(ctx context.Context, s *stack, prov worker.Provider, ln net.Listener, builtinSim bool) (*running, error) {
	fcfg := downloadConfig(ctx, s, builtinSim)
	objs, err := openObjects(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	if objs != nil {
		fcfg.Dir, fcfg.Sink = "", objs
	}
	f, err := fetch.New(fcfg)
	if err != nil {
		closeObjects(objs)
		return nil, fail(exitUsage, "download: %v", err)
	}
	wcfg := workerConfig(s)
	rec := metrics.NewRecorder(s.rdb, s.cfg.Redis.Prefix)
	wcfg.Metrics = rec
	wcfg.Account = s.accounts[0].Name
	wcfg.Accounts = map[string]worker.Account{}
	for _, a := range s.accounts[1:] {
		c, err := accountClient(s.cfg, a.AccountSettings)
		if err != nil {
			return nil, err
		}
		wcfg.Accounts[a.Name] = worker.Account{Provider: c, Limiter: a.limiter}
	}
	w, err := worker.New(s.rdb, s.store, s.limiter, prov, f, wcfg)
	if err != nil {
		closeObjects(objs)
		return nil, fail(exitUsage, "%v", err)
	}
	r := &running{w: w, rec: rec, objs: objs}
	if ln != nil {
		r.srv = serve.Start(ln, w.CallbackHandler())
		r.callbackURL = "http://" + ln.Addr().String()
	}
	if err := w.Start(ctx); err != nil {
		r.Stop()
		if errors.As(err, new(*ratelimit.MismatchError)) {
			return nil, fail(exitUsage, "%v\nuse the same limits and worker.time_scale in every process, "+
				"or make this configuration's the account's with: seedbatch limits --replace", err)
		}
		return nil, fail(exitUnreachable, "%v", err)
	}
	return r, nil
}

// Stop stops taking callbacks and tasks, and waits for running handlers
// up to the shutdown timeout.
func (r *running) Stop() {
	if r.srv != nil {
		_ = r.srv.Stop()
	}
	r.w.Shutdown()
	_ = r.rec.Close()
	closeObjects(r.objs)
}

// provider returns the real client for the first account's key.
func provider(cfg config.Config) (*seedance.Client, error) {
	return accountClient(cfg, cfg.AccountList()[0])
}

// accountClient returns the real client of an account.
func accountClient(cfg config.Config, a config.AccountSettings) (*seedance.Client, error) {
	c, err := seedance.New(seedance.Config{
		BaseURL:         a.BaseURL,
		APIKey:          a.APIKey.Reveal(),
		Timeout:         cfg.Provider.Timeout,
		NotCreatedCodes: cfg.Provider.NotCreatedCodes,
	})
	if err != nil {
		return nil, fail(exitUsage, "provider: account %s: %v", a.Name, err)
	}
	return c, nil
}

// simulated is a simulator served on a loopback port for this process.
type simulated struct {
	sim    *sim.Sim
	url    string
	key    string
	server *serve.Server
}

// startSim serves a simulator on 127.0.0.1 with a random key. It listens
// again where the run before it did, if it can (a resumed run: the result
// URLs the earlier simulator gave point there).
func startSim(cfg config.Config, rd *rundir.Dir) (*simulated, error) {
	key := "sim-" + randomHex(12)
	s, err := sim.New(sim.Config{
		APIKey:            key,
		TimeScale:         cfg.Sim.TimeScale,
		RequestsPerMinute: cfg.Sim.RequestsPerMinute,
		MaxInFlight:       cfg.Sim.MaxInFlight,
		Burst:             cfg.Sim.Burst,
		FailRate:          cfg.Sim.FailRate,
		Seed:              time.Now().UnixNano(),
		AdoptUnknown:      true,
	})
	if err != nil {
		return nil, fail(exitUsage, "simulator: %v", err)
	}
	ln, err := rd.Listen(rundir.SimAddr, "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return &simulated{sim: s, url: "http://" + ln.Addr().String(), key: key, server: serve.Start(ln, s)}, nil
}

// Close stops the simulator and its server.
func (s *simulated) Close() {
	s.sim.Close()
	_ = s.server.Stop()
}

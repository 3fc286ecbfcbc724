package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/metrics"
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
		},
		DownloadConcurrency: s.cfg.Download.Concurrency,
		Metrics:             metrics.NewRecorder(s.rdb, s.cfg.Redis.Prefix),
	}
}

// running is a started worker and its callback receiver, if any.
type running struct {
	w   *worker.Worker
	srv *http.Server
	// callbackURL is the receiver's address, when it listens.
	callbackURL string
}

// startWorker starts a worker on the stack and, when ln is not nil, its
// callback receiver on ln.
func startWorker(ctx context.Context, s *stack, prov worker.Provider, ln net.Listener) (*running, error) {
	f, err := fetch.New(fetch.Config{Dir: s.cfg.OutDir, MaxBytes: s.cfg.Download.MaxBytes, Timeout: s.cfg.Download.Timeout})
	if err != nil {
		return nil, fail(exitUsage, "download: %v", err)
	}
	w, err := worker.New(s.rdb, s.store, s.limiter, prov, f, workerConfig(s))
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	r := &running{w: w}
	if ln != nil {
		r.srv = &http.Server{Handler: w.CallbackHandler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		r.callbackURL = "http://" + ln.Addr().String()
		go r.srv.Serve(ln)
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
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx)
	}
	r.w.Shutdown()
}

// provider returns the real client for the configured key.
func provider(cfg config.Config) (*seedance.Client, error) {
	c, err := seedance.New(seedance.Config{
		BaseURL: cfg.Provider.BaseURL,
		APIKey:  cfg.Provider.APIKey.Reveal(),
		Timeout: cfg.Provider.Timeout,
	})
	if err != nil {
		return nil, fail(exitUsage, "provider: %v", err)
	}
	return c, nil
}

// simulated is a simulator served on a loopback port for this process.
type simulated struct {
	sim    *sim.Sim
	url    string
	key    string
	server *http.Server
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
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &simulated{sim: s, url: "http://" + ln.Addr().String(), key: key, server: srv}, nil
}

func (s *simulated) Close() {
	s.sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.server.Shutdown(ctx)
}

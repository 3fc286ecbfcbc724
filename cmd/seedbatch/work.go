package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/config"
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
		LogLevel:          level,
	}
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

// startSim serves a simulator on 127.0.0.1 with a random key.
func startSim(cfg config.Config) (*simulated, error) {
	key := "sim-" + randomHex(12)
	s, err := sim.New(sim.Config{
		APIKey:            key,
		TimeScale:         cfg.Sim.TimeScale,
		RequestsPerMinute: cfg.Sim.RequestsPerMinute,
		MaxInFlight:       cfg.Sim.MaxInFlight,
		FailRate:          cfg.Sim.FailRate,
		Seed:              time.Now().UnixNano(),
	})
	if err != nil {
		return nil, fail(exitUsage, "simulator: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &simulated{sim: s, url: "http://" + ln.Addr().String(), key: key, server: srv}, nil
}

func (s *simulated) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.server.Shutdown(ctx)
}

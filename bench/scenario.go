package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/proc"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
)

// Row is the outcome of one scenario.
type Row struct {
	// Scenario is ScenarioBaseline, ScenarioPolling or ScenarioCallback.
	Scenario string
	// Workers is the number of worker processes; 0 for the baseline.
	Workers int
	// Jobs is the number of jobs run.
	Jobs int
	// Stats are the simulator's statistics at the end.
	Stats sim.Stats
	// WorkerCPU is the user and system CPU time of the worker processes
	// together; -1 for the baseline (it runs in this process).
	WorkerCPU time.Duration
	// RedisCommands and RedisBytes are the growth of Redis's commands
	// processed and network bytes in and out over the scenario; -1 when not
	// measured.
	RedisCommands, RedisBytes int64
	// Wall is the time from the first job's start to every job ending.
	Wall time.Duration
	// Err is why the scenario failed; its other fields are then partial.
	Err error
}

// Readiness and waiting.
const (
	// workerReady is the log message of a worker that serves its queues.
	workerReady = "worker_started"
	// startTimeout bounds a worker's start.
	startTimeout = time.Minute
	// countsEvery is how often the batch counts are read.
	countsEvery = 200 * time.Millisecond
	// benchBatch is the batch id of every scenario (each in its own
	// namespace).
	benchBatch = "bench"
)

// timeout bounds one scenario: three times the slowest ideal run (waves of
// MaxInFlight jobs at the longest generation time) plus two minutes.
func (c Config) timeout() time.Duration {
	waves := (c.Jobs + sim.MaxInFlightDefault - 1) / sim.MaxInFlightDefault
	_, hi, _ := sim.GenerationTime(c.Duration)
	slowest := time.Duration(float64(hi) / c.TimeScale)
	return 3*time.Duration(waves)*slowest + 2*time.Minute
}

// simServer is a simulator served on a loopback port.
type simServer struct {
	sim *sim.Sim
	srv *http.Server
	url string
}

// startSim serves a fresh simulator with the provider's limits and
// timings at scale, accepting key.
func startSim(key string, scale float64) (*simServer, error) {
	s, err := sim.New(sim.Config{APIKey: key, TimeScale: scale, Seed: 1})
	if err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("simulator: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &simServer{sim: s, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

// Close stops callback deliveries and the server.
func (s *simServer) Close() {
	s.sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}

// run is what the scenarios of one benchmark run share.
type run struct {
	cfg   Config
	redis *benchRedis
	dir   string // temporary directory of the run
	csv   string // the jobs as a CSV file
}

// baseline runs the naive client against a fresh simulator.
func (r *run) baseline(ctx context.Context) Row {
	row := Row{Scenario: ScenarioBaseline, Jobs: r.cfg.Jobs, WorkerCPU: -1, RedisCommands: -1, RedisBytes: -1}
	key := "bench-" + proc.RandomHex(16)
	srv, err := startSim(key, r.cfg.TimeScale)
	if err != nil {
		row.Err = err
		return row
	}
	defer srv.Close()
	client, err := seedance.New(seedance.Config{BaseURL: srv.url, APIKey: key})
	if err != nil {
		row.Err = err
		return row
	}
	jobs := make([]seedance.CreateRequest, r.cfg.Jobs)
	for i := range jobs {
		jobs[i] = createRequest(i, r.cfg.Duration)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.timeout())
	defer cancel()
	start := time.Now()
	res, err := runNaive(ctx, client, naiveConfig{timeScale: r.cfg.TimeScale}, jobs)
	row.Wall = time.Since(start)
	row.Stats = srv.sim.Stats()
	switch {
	case err != nil:
		row.Err = fmt.Errorf("naive client: %w", err)
	case res.errors > 0:
		row.Err = fmt.Errorf("naive client gave up %d jobs on errors", res.errors)
	}
	return row
}

// seedbatch runs enqueue and workers against a fresh simulator, in a fresh
// namespace, and removes the namespace's keys at the end.
func (r *run) seedbatch(ctx context.Context, sc scenario) (row Row) {
	row = Row{Scenario: sc.name, Workers: sc.workers, Jobs: r.cfg.Jobs, WorkerCPU: -1, RedisCommands: -1, RedisBytes: -1}
	ns := newNamespace(sc.name + "-w" + strconv.Itoa(sc.workers))
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := r.redis.drop(dctx, ns); err != nil && row.Err == nil {
			row.Err = err
		}
	}()
	srv, err := startSim(ns.apiKey, r.cfg.TimeScale)
	if err != nil {
		row.Err = err
		return row
	}
	defer srv.Close()
	out, err := os.MkdirTemp(r.dir, "out-")
	if err != nil {
		row.Err = fmt.Errorf("out dir: %w", err)
		return row
	}
	defer os.RemoveAll(out)
	env := r.env(ns, srv.url, out)
	before := r.redis.traffic(ctx)

	wctx, stopWorkers := context.WithCancel(ctx)
	var workers []*proc.Child
	defer func() {
		// However the scenario ends, every worker is stopped and waited for.
		stopWorkers()
		for _, w := range workers {
			<-w.Done()
		}
	}()
	secret := proc.RandomHex(16)
	for range sc.workers {
		wenv := env
		if sc.name == ScenarioCallback {
			port, err := proc.FreePort()
			if err != nil {
				row.Err = err
				return row
			}
			addr := "127.0.0.1:" + strconv.Itoa(port)
			wenv = append(env[:len(env):len(env)], "SEEDBATCH_CALLBACK_LISTEN="+addr,
				"SEEDBATCH_CALLBACK_PUBLIC_URL=http://"+addr, "SEEDBATCH_CALLBACK_SECRET="+secret)
		}
		w, err := proc.Start(wctx, r.cfg.Executable, r.dir, wenv, workerReady, "worker")
		if err != nil {
			row.Err = fmt.Errorf("start worker: %w", err)
			return row
		}
		workers = append(workers, w)
	}
	if err := waitReady(ctx, workers); err != nil {
		row.Err = err
		return row
	}

	start := time.Now()
	requestType := seedance.RequestTypeAsync
	if sc.name == ScenarioCallback {
		requestType = seedance.RequestTypeCallback
	}
	if err := r.enqueue(ctx, env, "--batch", benchBatch, "--request-type", requestType, r.csv); err != nil {
		row.Err = err
		return row
	}
	err = r.waitTerminal(ctx, ns, workers)
	row.Wall = time.Since(start)
	row.Stats = srv.sim.Stats()
	if err != nil {
		row.Err = err
		return row
	}

	stopWorkers()
	var cpu time.Duration
	for i, w := range workers {
		<-w.Done()
		if err := w.ExitErr(); err != nil {
			row.Err = fmt.Errorf("worker %d of %d: %w", i+1, len(workers), err)
			return row
		}
		cpu += w.CPU()
	}
	row.WorkerCPU = cpu
	if after := r.redis.traffic(ctx); before.ok && after.ok {
		row.RedisCommands, row.RedisBytes = after.commands-before.commands, after.bytes-before.bytes
	}
	return row
}

// env returns the environment of the seedbatch processes of namespace ns,
// against the simulator at simURL, downloading into out: the provider's
// limits, compressed time, JSON logs at the info level.
func (r *run) env(ns namespace, simURL, out string) []string {
	return proc.Env(
		"REDIS_URL="+r.redis.url,
		"SEEDBATCH_REDIS_PREFIX="+ns.prefix,
		"SEEDANCE_API_KEY="+ns.apiKey,
		"SEEDANCE_BASE_URL="+simURL,
		"SEEDBATCH_WORKER_TIME_SCALE="+strconv.FormatFloat(r.cfg.TimeScale, 'g', -1, 64),
		"SEEDBATCH_LIMITS_MAX_IN_FLIGHT="+strconv.Itoa(sim.MaxInFlightDefault),
		"SEEDBATCH_LIMITS_REQUESTS_PER_MINUTE="+strconv.Itoa(sim.RequestsPerMinuteDefault),
		"SEEDBATCH_OUT_DIR="+out,
		"SEEDBATCH_LOG_FORMAT=json",
		"SEEDBATCH_LOG_LEVEL=info",
	)
}

// enqueue runs `seedbatch enqueue` with args and waits for it.
func (r *run) enqueue(ctx context.Context, env []string, args ...string) error {
	c, err := proc.Start(ctx, r.cfg.Executable, r.dir, env, "", append([]string{"enqueue"}, args...)...)
	if err != nil {
		return fmt.Errorf("start enqueue: %w", err)
	}
	<-c.Done()
	if err := c.ExitErr(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

// waitReady waits until every worker says it serves its queues.
func waitReady(ctx context.Context, workers []*proc.Child) error {
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for i, w := range workers {
		select {
		case <-w.Out.Ready():
		case <-w.Done():
			return fmt.Errorf("worker %d exited at start: %w", i+1, w.ExitErr())
		case <-timer.C:
			return fmt.Errorf("worker %d not ready after %v: %s", i+1, startTimeout, w.Out)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// waitTerminal reads the batch counts every countsEvery until every job is
// terminal; it fails when a worker exits or the scenario times out.
func (r *run) waitTerminal(ctx context.Context, ns namespace, workers []*proc.Child) error {
	store := batch.NewStore(r.redis.client, ns.prefix)
	deadline := time.Now().Add(r.cfg.timeout())
	tick := time.NewTicker(countsEvery)
	defer tick.Stop()
	var counts batch.Counts
	for {
		_, c, err := store.Get(ctx, benchBatch)
		if err != nil {
			return err
		}
		if counts = c; counts.Terminal() >= r.cfg.Jobs {
			return nil
		}
		for i, w := range workers {
			select {
			case <-w.Done():
				return fmt.Errorf("worker %d exited: %w", i+1, w.ExitErr())
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every job ended within %v: %v", r.cfg.timeout(), counts)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errorText returns err as one line for a table cell.
func errorText(err error) string {
	var b []rune
	for _, c := range err.Error() {
		switch c {
		case '\n', '\r', '\t':
			c = ' '
		case '|':
			c = '/'
		}
		b = append(b, c)
	}
	s := string(b)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

package drill

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/proc"
	"github.com/seedbatch/seedbatch/internal/redisproc"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/sim"
)

// Process settings of the drill.
const (
	// workerReady is the log message of a worker that serves its queues.
	workerReady = "worker_started"
	// startTimeout bounds a worker's start.
	startTimeout = time.Minute
	// prefix is the drill's key namespace.
	prefix = "drill"
	// providerTimeout is the workers' limit on one request, short so that
	// slow answers run past it.
	providerTimeout = 5 * time.Second
	// slowDelay is how long the simulator holds a slow answer.
	slowDelay = 7 * time.Second
	// shutdownTimeout is how long a stopping worker lets handlers finish.
	shutdownTimeout = 10 * time.Second
)

// cluster is what a drill runs: its Redis (restartable, with AOF), the
// simulator and the worker processes.
type cluster struct {
	cfg    Config
	dir    string // temporary directory of the run
	ctx    context.Context
	apiKey string
	secret string

	redisMu   sync.Mutex // held while Redis is restarted
	redis     *redisproc.Server
	redisPort int
	redisDir  string
	rdb       *redis.Client
	store     *batch.Store

	sim    *sim.Sim
	simSrv *http.Server
	simURL string

	procMu sync.Mutex // held by whoever kills or restarts workers
	slots  []*slot
}

// slot is one worker process and its callback address, kept by its
// replacements.
type slot struct {
	n      int
	cbAddr string
	child  *proc.Child
}

// aofArgs are the persistence settings of the drill's Redis.
var aofArgs = []string{"--appendonly", "yes", "--appendfsync", "everysec"}

// startCluster starts Redis with AOF, the simulator and the workers.
func startCluster(ctx context.Context, cfg Config, dir string) (*cluster, error) {
	c := &cluster{cfg: cfg, dir: dir, ctx: ctx, apiKey: "drill-" + proc.RandomHex(16), secret: proc.RandomHex(16),
		redisDir: filepath.Join(dir, "redis")}
	if err := os.MkdirAll(c.redisDir, 0o755); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	if len(redisproc.Missing("redis-server")) > 0 {
		return nil, errors.New("drill: redis-server is not on PATH (Debian: apt-get install redis-server)")
	}
	r, err := redisproc.StartOn(ctx, 0, c.redisDir, aofArgs...)
	if err != nil {
		return nil, err
	}
	c.redis, c.redisPort = r, r.Port
	c.rdb = redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.Port), MaxRetries: -1})
	c.store = batch.NewStore(c.rdb, prefix)
	if err := c.startSim(); err != nil {
		c.Close()
		return nil, err
	}
	for i := range workers {
		port, err := proc.FreePort()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.slots = append(c.slots, &slot{n: i + 1, cbAddr: "127.0.0.1:" + strconv.Itoa(port)})
	}
	if err := c.startWorkers(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Callback faults of the whole run.
const (
	callbackDrop  = 0.05
	callbackDup   = 0.1
	callbackStale = 0.1
	callbackDelay = 300 * time.Millisecond
)

// baseFaults are the simulator's faults of the whole run; each provider
// fault window adds its own to them.
func baseFaults() sim.Faults { return sim.Faults{CallbackStale: callbackStale} }

// startSim serves the simulator with the provider's limits (the in-flight
// limit smaller in a short drill), 1 % of tasks failing, and lossy
// callbacks for the whole run: some dropped, some repeated, some followed
// by a stale one (out of order), every one delayed.
func (c *cluster) startSim() error {
	s, err := sim.New(sim.Config{APIKey: c.apiKey, TimeScale: c.cfg.TimeScale, Seed: c.cfg.Seed,
		MaxInFlight: c.cfg.maxInFlight(), FailRate: 0.01,
		CallbackDropRate: callbackDrop, CallbackDupRate: callbackDup, CallbackDelay: callbackDelay,
		Faults: baseFaults()})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return fmt.Errorf("simulator: %w", err)
	}
	c.sim, c.simURL = s, "http://"+ln.Addr().String()
	c.simSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go c.simSrv.Serve(ln)
	return nil
}

// env returns the environment of the drill's seedbatch processes.
func (c *cluster) env(extra ...string) []string {
	return proc.Env(append([]string{
		"REDIS_URL=redis://127.0.0.1:" + strconv.Itoa(c.redisPort),
		"SEEDBATCH_REDIS_PREFIX=" + prefix,
		"SEEDANCE_API_KEY=" + c.apiKey,
		"SEEDANCE_BASE_URL=" + c.simURL,
		"SEEDBATCH_WORKER_TIME_SCALE=" + strconv.FormatFloat(c.cfg.TimeScale, 'g', -1, 64),
		"SEEDBATCH_LIMITS_MAX_IN_FLIGHT=" + strconv.Itoa(c.cfg.maxInFlight()),
		"SEEDBATCH_PROVIDER_TIMEOUT=" + providerTimeout.String(),
		"SEEDBATCH_WORKER_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
		"SEEDBATCH_OUT_DIR=" + filepath.Join(c.dir, "out"),
		"SEEDBATCH_LOG_FORMAT=json",
		"SEEDBATCH_LOG_LEVEL=info",
	}, extra...)...)
}

// startWorker starts slot s's worker, with env added, and waits until it
// serves its queues.
func (c *cluster) startWorker(s *slot, env ...string) error {
	env = append(c.env("SEEDBATCH_CALLBACK_LISTEN="+s.cbAddr, "SEEDBATCH_CALLBACK_PUBLIC_URL=http://"+s.cbAddr,
		"SEEDBATCH_CALLBACK_SECRET="+c.secret), env...)
	ch, err := proc.Start(c.ctx, c.cfg.Executable, c.dir, env, workerReady, "worker")
	if err != nil {
		return fmt.Errorf("start worker %d: %w", s.n, err)
	}
	s.child = ch
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ch.Out.Ready():
		return nil
	case <-ch.Done():
		return fmt.Errorf("worker %d exited at start: %w", s.n, ch.ExitErr())
	case <-timer.C:
		return fmt.Errorf("worker %d not ready after %v: %s", s.n, startTimeout, ch.Out)
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// startWorkers starts every slot's worker.
func (c *cluster) startWorkers() error {
	for _, s := range c.slots {
		if err := c.startWorker(s); err != nil {
			return err
		}
	}
	return nil
}

// stopWorkers sends sig to every worker and waits for them to exit.
func (c *cluster) stopWorkers(sig syscall.Signal) []error {
	var errs []error
	for _, s := range c.slots {
		if s.child != nil {
			s.child.Signal(sig)
		}
	}
	for _, s := range c.slots {
		if s.child == nil {
			continue
		}
		<-s.child.Done()
		if err := s.child.ExitErr(); err != nil {
			errs = append(errs, fmt.Errorf("worker %d: %w", s.n, err))
		}
	}
	return errs
}

// restartRedis kills Redis (SIGKILL), keeps it down for down, then starts
// it again from dir (its own directory with AOF when dir is empty) with
// args (aofArgs when nil). during runs while it is down.
func (c *cluster) restartRedis(down time.Duration, dir string, args []string, during func()) error {
	c.redisMu.Lock()
	defer c.redisMu.Unlock()
	c.redis.Kill()
	end := time.Now().Add(down)
	if during != nil {
		during()
	}
	if err := sleepUntil(c.ctx, end); err != nil {
		return err
	}
	if dir == "" {
		dir = c.redisDir
	}
	if args == nil {
		args = aofArgs
	}
	r, err := redisproc.StartOn(c.ctx, c.redisPort, dir, args...)
	if err != nil {
		return fmt.Errorf("restart redis-server: %w", err)
	}
	c.redis = r
	return nil
}

// enqueue writes rows rows of batch id as a CSV file and enqueues them
// with `seedbatch enqueue`.
func (c *cluster) enqueue(id string, rows int, requestType string) error {
	path := filepath.Join(c.dir, id+".csv")
	if err := writeCSV(path, id, rows); err != nil {
		return err
	}
	ch, err := proc.Start(c.ctx, c.cfg.Executable, c.dir, c.env(), "", "enqueue", "--batch", id, "--request-type", requestType, path)
	if err != nil {
		return fmt.Errorf("start enqueue: %w", err)
	}
	<-ch.Done()
	if err := ch.ExitErr(); err != nil {
		return fmt.Errorf("enqueue %s: %w", id, err)
	}
	return nil
}

// terminal returns the number of terminal rows of batch id, -1 when Redis
// does not answer.
func (c *cluster) terminal(id string) int {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	_, counts, err := c.store.Get(ctx, id)
	if err != nil {
		return -1
	}
	return counts.Terminal()
}

// created returns the creates the simulator counted for the prompts of
// batch id.
func (c *cluster) created(id string) int {
	n := 0
	for p, k := range c.sim.Stats().CreatedPerPrompt {
		if strings.HasPrefix(p, promptPrefix(id)) {
			n += k
		}
	}
	return n
}

// limiter returns the account's limiter, to read its leases and pause.
func (c *cluster) limiter() (*ratelimit.Limiter, error) {
	return ratelimit.New(c.rdb, ratelimit.Config{Prefix: ratelimit.AccountPrefix, Scope: ratelimit.AccountScope(c.apiKey)}.WithDefaults())
}

// leases returns the holders of the leases in the account's lease set,
// expired or not.
func (c *cluster) leases(ctx context.Context) ([]string, error) {
	key := ratelimit.AccountPrefix + ":{" + ratelimit.AccountScope(c.apiKey) + "}:leases"
	holders, err := c.rdb.ZRange(ctx, key, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	return holders, nil
}

// rows reads every row record of batch id.
func (c *cluster) rows(ctx context.Context, id string) ([]RowRecord, error) {
	var out []RowRecord
	for j, err := range c.store.All(ctx, id) {
		if err != nil {
			return nil, fmt.Errorf("rows of %s: %w", id, err)
		}
		out = append(out, RowRecord{Batch: id, ID: j.Spec.ID, Holder: j.Holder(), Prompt: j.Spec.Prompt, State: j.State,
			FailCode: j.FailCode, FailMsg: j.FailMsg})
	}
	return out, nil
}

// Close stops the workers, the simulator and Redis.
func (c *cluster) Close() {
	c.stopWorkers(syscall.SIGKILL)
	if c.sim != nil {
		c.sim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c.simSrv.Shutdown(ctx)
		cancel()
	}
	if c.rdb != nil {
		c.rdb.Close()
	}
	c.redisMu.Lock()
	if c.redis != nil {
		c.redis.Stop()
	}
	c.redisMu.Unlock()
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

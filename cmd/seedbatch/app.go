package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/term"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/internal/crashpoint"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/redact"
)

// Exit codes, as the README documents them.
const (
	exitOK          = 0 // every row done
	exitRows        = 1 // some rows failed, were rejected or are ambiguous
	exitUsage       = 2 // bad usage, configuration or input file
	exitUnreachable = 3 // Redis unreachable, or the provider refused the key
)

// Main is the program, with its standard streams and environment injected so
// that tests run it in-process.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) (string, bool)
	// Environ lists the environment as "NAME=value" entries, so that a
	// SEEDBATCH_ variable that sets nothing is reported (nil: not looked for).
	Environ func() []string
	// Crash arms the crash points of SEEDBATCH_CRASHPOINT, read once at
	// start (nil: none).
	Crash *crashpoint.Set
}

// exitError carries an exit code up to Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// command is one subcommand. Its run builds its flags with m.flags (or
// m.newFlags, for a command that reads no configuration) and parses them
// with m.parse, m.parseFlags or m.connect before it does anything else:
// that gives it --help, "seedbatch help NAME" (which runs it with --help)
// and the "did you mean" of a mistyped flag.
type command struct {
	name, args, summary string
	run                 func(m *Main, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"run", "FILE.csv", "enqueue a batch, work it in this process and wait for every row", (*Main).runCmd},
		{"enqueue", "FILE.csv", "validate a CSV file and enqueue it as a batch into Redis", (*Main).enqueueCmd},
		{"worker", "", "serve the submit, poll and download queues until stopped", (*Main).workerCmd},
		{"status", "[BATCH]", "show the rows of one or every batch by state, rate and ETA", (*Main).statusCmd},
		{"results", "BATCH", "write every row of a batch with its outcome, as CSV or JSONL", (*Main).resultsCmd},
		{"retry", "BATCH", "resubmit a batch's ambiguous, failed or budget-held rows, on purpose", (*Main).retryCmd},
		{"cancel", "BATCH", "stop submitting a batch's remaining rows (tasks in flight finish)", (*Main).cancelCmd},
		{"purge", "BATCH", "delete a finished batch's records now (--force: one still running)", (*Main).purgeCmd},
		{"recover", "FILE.csv", "rebuild a batch Redis lost, from its file and run's journal", (*Main).recoverCmd},
		{"resume", "", "resume submitting after the provider refused the key (once fixed)", (*Main).resumeCmd},
		{"limits", "", "show the account's limits stored in Redis, or replace them", (*Main).limitsCmd},
		{"dashboard", "", "serve the web dashboard: batches, asynq monitor, /metrics, /healthz", (*Main).dashboardCmd},
		{"scheduler", "", "run the cron entries of the config file (import, reconcile, expiry)", (*Main).schedulerCmd},
		{"import", "[INBOX]", "enqueue every CSV file in the inbox once, then move it away", housekeepingCmd("import")},
		{"reconcile", "", "re-arm lost tasks, end stuck jobs, retire finished batches", housekeepingCmd("reconcile")},
		{"expiry", "", "download again missing videos, before their URLs expire", housekeepingCmd("expiry")},
		{"sim", "", "serve the provider simulator over HTTP", (*Main).simCmd},
		{"bench", "", "measure slot use and enqueue speed next to a naive client", (*Main).benchCmd},
		{"drill", "", "kill workers and Redis, inject provider faults, check every row", (*Main).drillCmd},
		{"config", "", "print the effective configuration (secrets redacted)", (*Main).configCmd},
		{"healthcheck", "[TARGET]", "exit 0 when a worker, dashboard or scheduler is healthy (for containers)", (*Main).healthcheckCmd},
		{"version", "", "print the version, VCS revision and Go version of this binary", (*Main).versionCmd},
		{"help", "[COMMAND]", "list the commands, or show one command's flags", (*Main).helpCmd},
	}
}

// Run runs the command in args and returns the process exit code.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		m.commandList(m.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		return m.exit(m.unknownCommand(name))
	}
	return m.exit(c.run(m, ctx, args[1:]))
}

// exit reports a command's error and returns the exit code it means.
func (m *Main) exit(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(m.Stderr, "seedbatch:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(m.Stderr, "seedbatch:", err)
	return exitRows
}

// common holds the flags every command shares.
type common struct {
	configFile string
	sets       multiFlag
	redisURL   string
	logFormat  string
	logLevel   string
	// overrides are the "section.field=value" of configFlags.
	overrides []string
}

// configFlag defines a flag that sets the configuration field at path,
// over every other layer (--set included); help gives its text.
func (c *common) configFlag(fs *flag.FlagSet, name, path, help string) {
	fs.Var(&fieldFlag{path: path, c: c}, name, help)
}

// fieldFlag is the value of a configFlag.
type fieldFlag struct {
	path string
	c    *common
}

func (f *fieldFlag) String() string { return "" }

// Set checks that the field takes v, so that a bad value names the flag.
func (f *fieldFlag) Set(v string) error {
	cfg := config.Default()
	if err := cfg.Set(f.path, v); err != nil {
		return fmt.Errorf("not a value %s takes", f.path)
	}
	f.c.overrides = append(f.c.overrides, f.path+"="+v)
	return nil
}

type multiFlag []string

func (f *multiFlag) String() string     { return strings.Join(*f, ",") }
func (f *multiFlag) Set(v string) error { *f = append(*f, v); return nil }

// register defines the flags every command shares.
func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, "config", "", "read the configuration from `FILE` (default: "+config.FileDefault+", if present)")
	fs.Var(&c.sets, "set", "set `section.field=value` in the configuration, over the file and the environment (repeatable)")
	fs.StringVar(&c.redisURL, "redis", "", "the Redis server's `URL` (overrides REDIS_URL)")
	fs.StringVar(&c.logFormat, "log-format", "", "write logs as `text|json` (default: text on a terminal, json otherwise)")
	fs.StringVar(&c.logLevel, "log-level", "", "log from `LEVEL` up: debug, info, warn or error (default: log.level)")
}

// flags returns the flag set of a command that reads the configuration:
// the flags every command shares, to which the command adds its own.
func (m *Main) flags(name, args string, c *common) *flag.FlagSet {
	fs := m.newFlags(name, args)
	c.register(fs)
	return fs
}

// parse parses args, then loads the configuration with the flags on top.
func (m *Main) parse(fs *flag.FlagSet, c *common, args []string) (config.Config, error) {
	if err := m.parseFlags(fs, args); err != nil {
		return config.Config{}, err
	}
	sets := append([]string(nil), c.sets...)
	if c.redisURL != "" {
		sets = append(sets, "redis.url="+c.redisURL)
	}
	if c.logFormat != "" {
		sets = append(sets, "log.format="+c.logFormat)
	}
	if c.logLevel != "" {
		sets = append(sets, "log.level="+c.logLevel)
	}
	sets = append(sets, c.overrides...)
	var unknown []string
	cfg, err := config.Load(config.Options{File: c.configFile, Env: m.Getenv, Set: sets,
		Environ: m.Environ, Unknown: func(name string) { unknown = append(unknown, name) }})
	if fe, ok := errors.AsType[*config.SettingError](err); ok {
		// A bad value a flag gave is the flag's.
		for flagName, f := range map[string]struct{ field, value string }{
			"redis": {"redis.url", c.redisURL}, "log-format": {"log.format", c.logFormat}, "log-level": {"log.level", c.logLevel}} {
			if fe.Field == f.field && f.value != "" {
				err = fmt.Errorf("--%s %q: %s", flagName, f.value, fe.Reason)
			}
		}
	}
	if err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	if len(unknown) > 0 {
		log, known := m.logger(cfg), config.EnvNames()
		for _, name := range unknown {
			hint := "it sets nothing: seedbatch ignores it"
			if s := suggest(name, known); s != "" {
				hint += "; did you mean " + s + "?"
			}
			log.Warn("unknown_environment_variable", "variable", name, "hint", hint)
		}
	}
	return cfg, nil
}

// connect parses a command that works on a shared Redis: its flags (extra
// adds its own), then check, which may adjust the configuration and refuses
// bad arguments before anything is opened; then it opens Redis.
func (m *Main) connect(ctx context.Context, name, usage string, args []string,
	extra func(*flag.FlagSet), check func(*flag.FlagSet, *config.Config) error) (*flag.FlagSet, *stack, error) {
	var c common
	fs := m.flags(name, usage, &c)
	if extra != nil {
		extra(fs)
	}
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return nil, nil, err
	}
	if check != nil {
		if err := check(fs, &cfg); err != nil {
			return nil, nil, err
		}
	}
	s, err := m.open(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	s.configFile = c.configFile
	return fs, s, nil
}

// oneArg refuses anything but exactly one argument, what (such as "batch
// id" or "CSV file"), saying what it got.
func oneArg(fs *flag.FlagSet, what string) error {
	switch fs.NArg() {
	case 1:
		return nil
	case 0:
		fs.Usage()
		return fail(exitUsage, "%s: name the %s (seedbatch %s %s)", fs.Name(), what, fs.Name(), commandArgs(fs.Name()))
	}
	fs.Usage()
	return fail(exitUsage, "%s: want one %s, got %d: %s", fs.Name(), what, fs.NArg(), strings.Join(fs.Args(), " "))
}

// parseInterspersed parses flags wherever they stand among the arguments
// ("retry BATCH --state failed" as well as "retry --state failed BATCH");
// "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// logger returns the process's logger: every line passes through the
// configuration's redactor.
func (m *Main) logger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel()}
	var h slog.Handler = slog.NewTextHandler(m.Stderr, opts)
	if cfg.Log.Format == "json" || (cfg.Log.Format == "auto" && !isTerminal(m.Stderr)) {
		h = slog.NewJSONHandler(m.Stderr, opts)
	}
	return slog.New(redactor(cfg).Handler(h))
}

// redactor masks the configuration's secrets and anything shaped like one.
func redactor(cfg config.Config) *redact.Redactor { return redact.New(cfg.Secrets()...) }

// stack is what most commands need: Redis, the records, the limiter.
type stack struct {
	cfg     config.Config
	log     *slog.Logger
	rdb     redis.UniversalClient
	store   *batch.Store
	limiter *ratelimit.Limiter // the first account's
	// accounts are the configured accounts, the first first, each with
	// its limiter.
	accounts []stackAccount
	queues   queue.Names
	mini     *miniredis.Miniredis
	closers  []func()
	// configFile is the --config flag of the command, if given.
	configFile string
	// sim is the namespace of simulated batches, once looked at (see
	// stack.simulated).
	sim *namespace
	// crash arms the process's crash points (nil: none).
	crash *crashpoint.Set
}

// warnDurability logs what in the Redis's settings could lose records; a
// command that creates or submits work calls it. The embedded Redis is
// exempt: run keeps its journal on disk.
func (s *stack) warnDurability(ctx context.Context) {
	if s.mini != nil {
		return
	}
	for _, w := range s.store.DurabilityWarnings(ctx) {
		s.log.Warn("redis_durability", "warning", w)
	}
}

func (s *stack) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// open connects to Redis (or, when embedded is true and no URL is set,
// starts one in this process) and builds the store and limiter. scope names
// the account whose limits are shared.
func (m *Main) open(ctx context.Context, cfg config.Config, embedded bool) (*stack, error) {
	s := &stack{cfg: cfg, log: m.logger(cfg), crash: m.Crash}
	conn := cfg.Redis.Conn()
	if !cfg.Redis.Configured() {
		if !embedded {
			return nil, fail(exitUsage, "no Redis configured: set REDIS_URL (or REDIS_SENTINEL_ADDRS, REDIS_CLUSTER_ADDRS) or pass --redis redis://HOST:PORT")
		}
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fail(exitUnreachable, "start embedded Redis: %v", err)
		}
		mr.ClockTTL(true)
		s.mini = mr
		s.closers = append(s.closers, mr.Close)
		conn.URL = "redis://" + mr.Addr()
	}
	// Each submit waiting for a slot blocks a connection on the free list:
	// keep go-redis's default for everything else on top.
	conn.PoolSize = cfg.Worker.SubmitConcurrency + 10*runtime.GOMAXPROCS(0)
	client, err := conn.Client()
	if err != nil {
		s.Close()
		return nil, fail(exitUsage, "redis: %v", err)
	}
	s.rdb = client
	s.closers = append(s.closers, func() { client.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		s.Close()
		return nil, fail(exitUnreachable, "cannot reach Redis (%s): %v", conn.Describe(), redactor(cfg).Error(err))
	}
	s.store = batch.NewStore(client, cfg.Redis.Prefix)
	s.store.SetRedactor(redactor(cfg).String)
	s.store.SetRetention(cfg.Retention)
	s.store.SetWaitReplicas(cfg.Redis.WaitReplicas)
	s.store.SetLogger(s.log)
	// Closers run last first: finish retiring batches before Redis goes.
	s.closers = append(s.closers, s.store.WaitRetired)
	s.queues = queue.NamesFor(cfg.Redis.Prefix)
	for _, a := range cfg.AccountList() {
		lim, err := ratelimit.New(client, a.Limits)
		if err != nil {
			s.Close()
			return nil, fail(exitUsage, "account %s: %v", a.Name, err)
		}
		s.accounts = append(s.accounts, stackAccount{AccountSettings: a, limiter: lim})
	}
	s.limiter = s.accounts[0].limiter
	return s, nil
}

// stackAccount is a configured account and its limiter.
type stackAccount struct {
	config.AccountSettings
	limiter *ratelimit.Limiter
}

// account returns the stack's account called name, or nil.
func (s *stack) account(name string) *stackAccount {
	for i := range s.accounts {
		if s.accounts[i].Name == name {
			return &s.accounts[i]
		}
	}
	return nil
}

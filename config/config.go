// Package config holds seedbatch's one configuration struct and loads it in
// layers: built-in defaults, then a YAML file, then the environment, then
// explicit settings (command-line flags). The result is validated once, and
// every error names the field it is about.
//
// Environment variables: REDIS_URL (or, for Sentinel, REDIS_MASTER_NAME and
// REDIS_SENTINEL_ADDRS, for Cluster, REDIS_CLUSTER_ADDRS, both with
// REDIS_USERNAME, REDIS_PASSWORD and REDIS_SENTINEL_PASSWORD),
// SEEDANCE_API_KEY and SEEDANCE_BASE_URL,
// plus SEEDBATCH_<SECTION>_<FIELD> for any field, e.g.
// SEEDBATCH_LIMITS_MAX_IN_FLIGHT=200 sets limits.max_in_flight, and
// SEEDBATCH_PRICES_<RESOLUTION> for one price, e.g. SEEDBATCH_PRICES_720P=0.05
// sets prices.720p (as --set prices.720p=0.05 does). A SEEDBATCH_ variable
// that sets nothing (a misspelling) is reported through Options.Unknown.
//
// A secret (every field of type Secret, and redis.url, which may hold a
// password) can also be read from a file, as Docker and Kubernetes secrets
// are mounted: the variable's name with _FILE appended holds the file's path,
// e.g. SEEDANCE_API_KEY_FILE=/run/secrets/seedance_api_key or
// SEEDBATCH_DASHBOARD_TOKEN_FILE. The file's trailing line breaks are
// trimmed. A file that cannot be read is an error naming the variable, and
// so is a variable set (non-empty) together with its _FILE form; an empty
// _FILE variable counts as unset.
//
// Secrets (the API key) have the type Secret, which prints as "[redacted]" in
// fmt, slog, YAML and JSON, so a config dump or a log line never shows them.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/dashboard"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/housekeeping"
	"github.com/seedbatch/seedbatch/internal/hostcheck"
	"github.com/seedbatch/seedbatch/internal/redisconn"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/scheduler"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// FileDefault is the config file read when --config is not given, if present.
const FileDefault = "seedbatch.yaml"

// Config is everything seedbatch can be told. Field comments give defaults.
type Config struct {
	Redis    Redis    `yaml:"redis"`
	Provider Provider `yaml:"provider"`
	// Accounts are further provider accounts (API keys), each with its own
	// limits and budget; see Account. provider.api_key's is "default".
	Accounts  []Account      `yaml:"accounts"`
	Limits    Limits         `yaml:"limits"`
	Worker    Worker         `yaml:"worker"`
	Defaults  tasks.Defaults `yaml:"defaults"`
	Sim       Sim            `yaml:"sim"`
	Callback  Callback       `yaml:"callback"`
	Download  Download       `yaml:"download"`
	Budget    Budget         `yaml:"budget"`
	Dashboard Dashboard      `yaml:"dashboard"`
	Schedule  Schedule       `yaml:"schedule"`
	// Prices is the price of one second of video by resolution (e.g.
	// {480p: 0.02, 720p: 0.05}); when set, dry runs print the estimated cost.
	// Each price is also a setting of its own: prices.480p, prices.720p.
	Prices map[string]float64 `yaml:"prices"`
	// OutDir is where videos are stored (default "out"): a local directory,
	// where run also writes results and its journal, or a bucket URL
	// (s3://, gs://, azblob://, file://; see package objstore).
	OutDir string `yaml:"out_dir"`
	// StateDir is the local directory where run keeps its journal, lock
	// and results.csv when OutDir is a bucket (default "out",
	// OutDirDefault). Unused when OutDir is a local directory.
	StateDir string `yaml:"state_dir"`
	// Retention is how long the records of a finished batch (every row
	// terminal) are kept in Redis (default 720h, batch.RetentionDefault); 0
	// keeps them forever.
	Retention time.Duration `yaml:"retention"`
	Log       Log           `yaml:"log"`
}

// RunDir is the local directory run keeps its batches' journals, locks and
// results files under: OutDir when it is a directory, StateDir when OutDir
// is a bucket.
func (c Config) RunDir() string {
	if objstore.IsURL(c.OutDir) {
		return c.StateDir
	}
	return c.OutDir
}

// Redis says where the queue and the records live: one server (URL), a
// master found through Redis Sentinel (MasterName and SentinelAddrs), or a
// Redis Cluster (ClusterAddrs). Set one of the three; none: run starts an
// embedded Redis, and every other command refuses to start.
type Redis struct {
	// URL of a single Redis server (redis://, rediss:// or unix://), its
	// user and password included. Env: REDIS_URL.
	URL string `yaml:"url"`
	// MasterName is the name under which the sentinels monitor the master
	// (Sentinel mode). Env: REDIS_MASTER_NAME.
	MasterName string `yaml:"master_name"`
	// SentinelAddrs are the sentinels' host:port addresses (Sentinel mode).
	// Env: REDIS_SENTINEL_ADDRS, comma-separated.
	SentinelAddrs []string `yaml:"sentinel_addrs"`
	// SentinelPassword authenticates to the sentinels (Sentinel mode).
	// Env: REDIS_SENTINEL_PASSWORD.
	SentinelPassword Secret `yaml:"sentinel_password"`
	// ClusterAddrs are host:port addresses of some nodes of a Redis
	// Cluster (Cluster mode; the others are discovered). Env:
	// REDIS_CLUSTER_ADDRS, comma-separated.
	ClusterAddrs []string `yaml:"cluster_addrs"`
	// Username and Password authenticate to the Redis servers in Sentinel
	// and Cluster modes (a single server's are in its URL). Env:
	// REDIS_USERNAME, REDIS_PASSWORD.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// WaitReplicas is how many replicas must hold a row's submitting state
	// before its create is sent (Redis WAIT, up to 2s, batch.WaitReplicasTimeout;
	// fewer and the create waits for a later try). 0 (the default) never
	// waits. With Sentinel or Cluster set it to 1, or a failover can lose that
	// state and have the row created twice.
	WaitReplicas int `yaml:"wait_replicas"`
	// Prefix namespaces seedbatch's own keys and queue names (default "seedbatch").
	Prefix string `yaml:"prefix"`
}

// Configured reports whether a Redis is set, in any mode.
func (r Redis) Configured() bool { return r.Conn().Mode() != "" }

// Conn returns the connection settings of r, for the clients of
// internal/redisconn.
func (r Redis) Conn() redisconn.Settings {
	return redisconn.Settings{URL: r.URL, MasterName: r.MasterName, SentinelAddrs: r.SentinelAddrs,
		SentinelPassword: r.SentinelPassword.Reveal(), ClusterAddrs: r.ClusterAddrs,
		Username: r.Username, Password: r.Password.Reveal()}
}

// Describe names the Redis for messages, without its passwords.
func (r Redis) Describe() string { return r.Conn().Describe() }

// SimulatedSuffix ends the key prefix under which run keeps, on a shared
// Redis, the batches it runs with the built-in simulator: apart from real
// work, so that they never mix (see Redis.SimulatedPrefix).
const SimulatedSuffix = "-sim"

// SimulatedPrefix is the key prefix of simulated batches on this Redis:
// Prefix and SimulatedSuffix. It is "" when Prefix is itself one, since
// its batches are the simulated ones.
func (r Redis) SimulatedPrefix() string {
	if strings.HasSuffix(r.Prefix, SimulatedSuffix) {
		return ""
	}
	return r.Prefix + SimulatedSuffix
}

// Provider reaches the video API.
type Provider struct {
	// BaseURL of the API (default https://api.apixo.ai). Env: SEEDANCE_BASE_URL.
	BaseURL string `yaml:"base_url"`
	// APIKey authenticates every request. Empty: run uses the built-in
	// simulator. Env: SEEDANCE_API_KEY.
	APIKey Secret `yaml:"api_key"`
	// Timeout of one HTTP request (default 60s).
	Timeout time.Duration `yaml:"timeout"`
	// NotCreatedCodes are the codes the provider documents as "nothing was
	// created", matched against a create answer's HTTP status and JSON
	// code: such a create is sent again. Default none: a 5xx, a 408 or a 200
	// with an error code other than 400, 401, 402, 403 or 429 makes the row
	// ambiguous instead, since the task may exist (and be billed).
	NotCreatedCodes []int `yaml:"not_created_codes"`
}

// Limits are the provider's account limits as seedbatch holds them across
// every worker process.
type Limits struct {
	// RequestsPerMinute of creates and status reads together (default 9500,
	// under the provider's 10 000 so that the burst fits too).
	RequestsPerMinute int `yaml:"requests_per_minute"`
	// Burst is the depth of the request bucket (default 50).
	Burst int `yaml:"burst"`
	// CreateReserve is the part of the burst only creates may use (default
	// 20): a freed slot is refilled before other tasks' status reads.
	CreateReserve int `yaml:"create_reserve"`
	// MaxInFlight is the number of provider tasks created and not yet ended
	// (default 1000).
	MaxInFlight int `yaml:"max_in_flight"`
	// LeaseTTL frees an in-flight slot whose job stopped renewing it (default 10m).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

// Worker tunes the asynq servers and the poll schedule.
type Worker struct {
	// SubmitConcurrency is the number of submit handlers per process (default 20).
	SubmitConcurrency int `yaml:"submit_concurrency"`
	// PollConcurrency is the number of poll handlers per process (default
	// 1000: a poll waits in place for its planned reads, to the millisecond).
	PollConcurrency int `yaml:"poll_concurrency"`
	// FirstPoll4s, FirstPoll8s and FirstPoll12s: the fastest generation
	// time to expect, by video duration, until enough have been observed
	// for the poll plan (defaults 40s, 60s, 90s: the provider's documented
	// fastest).
	FirstPoll4s  time.Duration `yaml:"first_poll_4s"`
	FirstPoll8s  time.Duration `yaml:"first_poll_8s"`
	FirstPoll12s time.Duration `yaml:"first_poll_12s"`
	// PollInterval is the least time between two status reads of one task
	// (default 1s); the poll plan spaces them as the request budget allows.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxRetry is how often a failing request is retried before its row
	// fails (default 10). Waiting for a limit never counts.
	MaxRetry int `yaml:"max_retry"`
	// MaxUnreadable is how many status answers in a row that cannot be read
	// (an unknown state, a resultJson that is not JSON...) fail a row with
	// PROVIDER_ANSWER_UNREADABLE (default 3).
	MaxUnreadable int `yaml:"max_unreadable"`
	// ShutdownTimeout is how long a stopping worker lets running handlers
	// finish before handing their tasks back (default 30s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TimeScale divides every provider timing above (default 1). Only for
	// the simulator running in compressed time.
	TimeScale float64 `yaml:"time_scale"`
	// Listen is where the worker serves /healthz and /metrics, host:port
	// (default empty: not served; seedbatch worker --listen sets it). Any
	// other than a loopback address needs dashboard.token or dashboard.user
	// and dashboard.password, which /metrics then asks for.
	Listen string `yaml:"listen"`
	// AllowedHosts are further Host names the worker's /metrics answers to
	// (default none; see Dashboard.AllowedHosts for the rule). Env:
	// comma-separated.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Sim configures the provider simulator: the one run starts when no API key
// is set, and seedbatch sim (whose flags override it).
type Sim struct {
	// TimeScale compresses the simulated generation times (default 20, so
	// the example finishes in seconds).
	TimeScale float64 `yaml:"time_scale"`
	// FailRate is the fraction of tasks that end GENERATION_FAILED (default 0).
	FailRate float64 `yaml:"fail_rate"`
	// RequestsPerMinute and MaxInFlight are the simulated account's limits
	// (defaults 10000 and 1000, as the provider's).
	RequestsPerMinute int `yaml:"requests_per_minute"`
	MaxInFlight       int `yaml:"max_in_flight"`
	// Burst is how many requests the simulated limit lets through at once
	// (default 0: one simulated second's worth).
	Burst int `yaml:"burst"`
	// Listen is the address seedbatch sim listens on (default
	// 127.0.0.1:8090); run's own simulator takes a free loopback port.
	Listen string `yaml:"listen"`
}

// Callback configures callback mode, in which the provider posts each
// task's outcome to the worker instead of being polled for it.
type Callback struct {
	// RequestType is the default for new batches: async (seedbatch polls)
	// or callback (default async). enqueue and run take --request-type.
	RequestType string `yaml:"request_type"`
	// Listen is the worker's callback receiver address (default
	// 127.0.0.1:8091; empty turns the receiver off).
	Listen string `yaml:"listen"`
	// PublicURL is how the provider reaches the receiver, e.g.
	// https://hooks.example.com (required for callback batches).
	PublicURL string `yaml:"public_url"`
	// Secret keys the per-job tokens in callback URLs (required for
	// callback batches; every worker needs the same one). Env:
	// SEEDBATCH_CALLBACK_SECRET.
	Secret Secret `yaml:"secret"`
	// Confirm reads a task's status before applying its callback (default
	// true); result URLs are only ever taken from such a read.
	Confirm bool `yaml:"confirm"`
	// SafetyGrace is how long after the slowest expected finish a callback
	// job is polled anyway, in case its callback was lost (default 60s).
	SafetyGrace time.Duration `yaml:"safety_grace"`
	// SafetyInterval separates later safety polls (default 30s).
	SafetyInterval time.Duration `yaml:"safety_interval"`
	// MaxBody is the largest callback body accepted, in bytes (default 64 KiB).
	MaxBody int64 `yaml:"max_body"`
	// AllowedHosts are further Host names the receiver answers to, besides
	// the host of PublicURL, the host of Listen and, on a loopback or
	// unspecified Listen, the loopback names (default none). Exact names,
	// case-insensitive, port ignored. Env: comma-separated.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Download configures how result videos are stored.
type Download struct {
	// Concurrency is the number of downloads per worker process (default 4).
	Concurrency int `yaml:"concurrency"`
	// MaxBytes refuses larger files (default 2 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// Timeout bounds one download (default 10m).
	Timeout time.Duration `yaml:"timeout"`
	// AllowPrivateHosts lets downloads reach addresses that are not public:
	// loopback, private, link-local (the cloud metadata service),
	// unspecified, multicast, broadcast and reserved ones (default false:
	// refused, whether a result URL names them, a host name resolves to
	// them or a redirect leads there). Downloads are allowed them anyway
	// from run's built-in simulator, and when provider.base_url's host is
	// itself such an address (a simulator or stand-in on this network).
	AllowPrivateHosts bool `yaml:"allow_private_hosts"`
	// AllowedHosts, when not empty, are the only hosts result files are
	// downloaded from, redirects included: exact host names or addresses,
	// or "*.example.com" for any name below example.com (default empty: any
	// public host). In the environment and --set, a comma-separated list.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Budget caps the video seconds created, enforced atomically in Redis
// before each create. 0 means no cap.
type Budget struct {
	// TotalSeconds caps every batch in this Redis namespace together;
	// run and enqueue store it in Redis when set.
	TotalSeconds int `yaml:"total_seconds"`
	// BatchSeconds is the default cap of each new batch (--budget overrides).
	BatchSeconds int `yaml:"batch_seconds"`
}

// Dashboard configures seedbatch dashboard.
type Dashboard struct {
	// Listen is the dashboard's address (default 127.0.0.1:8080). Any
	// other than a loopback address needs a token or user and password.
	Listen string `yaml:"listen"`
	// Token is accepted as "Authorization: Bearer TOKEN" or ?token=TOKEN.
	Token Secret `yaml:"token"`
	// User and Password are accepted as HTTP basic auth.
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
	// AllowWrites enables the actions (pause, resume, cancel, retry) and
	// asynqmon's writes, for authenticated requests only (default false).
	AllowWrites bool `yaml:"allow_writes"`
	// AllowedHosts are further Host names the dashboard answers to, such as
	// a reverse proxy's name (default none). Without them it answers only to
	// the host of Listen and, on a loopback or unspecified Listen, to the
	// loopback names (and, unspecified, this machine's addresses). Exact
	// names, case-insensitive, port ignored. Env: comma-separated.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// Schedule configures seedbatch scheduler. The scheduler reads entries from
// its config file again every SyncInterval, so editing the file changes the
// schedule without a restart.
type Schedule struct {
	// Entries are the cron entries.
	Entries []ScheduleEntry `yaml:"entries"`
	// Inbox is the directory import takes CSV files from; they move to
	// Inbox/done or Inbox/failed (default "inbox").
	Inbox string `yaml:"inbox"`
	// SyncInterval is how often the file is read again (default 10s).
	SyncInterval time.Duration `yaml:"sync_interval"`
	// ImportSettle is how long a CSV file in the inbox must go unmodified
	// before import takes it, so that a file still being copied in is not
	// read half-written (default 10s; 0 takes files at once, for an inbox
	// that only receives whole files by rename).
	ImportSettle time.Duration `yaml:"import_settle"`
	// GiveUpAfter ends a job reconcile finds submitted longer than this
	// (default 6h: the provider documents at most 120 s of generation).
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// ScheduleEntry runs one housekeeping task on a cron schedule.
type ScheduleEntry struct {
	// Cron is a 5-field cron spec or "@every 1m".
	Cron string `yaml:"cron"`
	// Task is import, reconcile or expiry.
	Task string `yaml:"task"`
}

// Log chooses the log output.
type Log struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Format is text, json or auto (default auto: text on a terminal, json otherwise).
	Format string `yaml:"format"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Redis:    Redis{Prefix: PrefixDefault},
		Provider: Provider{BaseURL: seedance.BaseURLDefault, Timeout: seedance.TimeoutDefault},
		Limits: Limits{
			RequestsPerMinute: ratelimit.RequestsPerMinuteDefault, Burst: ratelimit.BurstDefault,
			CreateReserve: ratelimit.CreateReserveDefault, MaxInFlight: ratelimit.MaxInFlightDefault,
			LeaseTTL: ratelimit.LeaseTTLDefault,
		},
		Worker: Worker{
			SubmitConcurrency: worker.SubmitConcurrencyDefault, PollConcurrency: worker.PollConcurrencyDefault,
			FirstPoll4s: worker.FirstPollDefault[4], FirstPoll8s: worker.FirstPollDefault[8],
			FirstPoll12s: worker.FirstPollDefault[12], PollInterval: worker.PollIntervalDefault,
			MaxRetry: worker.MaxRetryDefault, MaxUnreadable: worker.MaxUnreadableDefault,
			ShutdownTimeout: worker.ShutdownTimeoutDefault, TimeScale: 1,
		},
		Defaults: tasks.Defaults{}.WithDefaults(),
		Sim: Sim{TimeScale: SimTimeScaleDefault, RequestsPerMinute: sim.RequestsPerMinuteDefault,
			MaxInFlight: sim.MaxInFlightDefault, Listen: SimListenDefault},
		Callback: Callback{RequestType: queue.RequestAsync, Listen: CallbackListenDefault, Confirm: true,
			SafetyGrace: worker.SafetyGraceDefault, SafetyInterval: worker.SafetyIntervalDefault,
			MaxBody: worker.CallbackMaxBodyDefault},
		Download: Download{Concurrency: worker.DownloadConcurrencyDefault, MaxBytes: fetch.MaxBytesDefault,
			Timeout: fetch.TimeoutDefault},
		Dashboard: Dashboard{Listen: dashboard.ListenDefault},
		Schedule: Schedule{Inbox: housekeeping.InboxDefault, SyncInterval: scheduler.SyncIntervalDefault,
			ImportSettle: housekeeping.ImportSettleDefault, GiveUpAfter: housekeeping.GiveUpAfterDefault},
		OutDir:    OutDirDefault,
		StateDir:  OutDirDefault,
		Retention: batch.RetentionDefault,
		Log:       Log{Level: "info", Format: "auto"},
	}
}

// AccountLimits are the limits of the first account of AccountList (the
// configured API key's, when it is set), as the shared limiter holds them
// (see limitsOf).
func (c Config) AccountLimits() ratelimit.Config {
	return c.AccountList()[0].Limits
}

// Defaults this package owns; every other default is its component's.
const (
	// PrefixDefault namespaces seedbatch's keys and queue names.
	PrefixDefault = "seedbatch"
	// OutDirDefault is where run writes results and videos.
	OutDirDefault = "out"
	// SimTimeScaleDefault compresses the built-in simulator's time so that
	// the example finishes in seconds.
	SimTimeScaleDefault = 20
	// SimListenDefault is seedbatch sim's address.
	SimListenDefault = "127.0.0.1:8090"
	// CallbackListenDefault is the worker's callback receiver address.
	CallbackListenDefault = "127.0.0.1:8091"
)

// Options says where Load finds its layers.
type Options struct {
	// File is the YAML file; empty means FileDefault if it exists.
	File string
	// Env looks up environment variables (os.LookupEnv when nil).
	Env func(string) (string, bool)
	// Set are explicit "section.field=value" settings, applied last.
	Set []string
	// Environ lists the environment as "NAME=value" entries (os.Environ
	// when Env is nil too; none otherwise). Load passes the name of each
	// SEEDBATCH_ variable in it that sets nothing to Unknown.
	Environ func() []string
	// Unknown receives each SEEDBATCH_ variable of Environ that names no
	// setting (see UnknownVariables): a misspelt variable would otherwise
	// be ignored in silence. Nil: they are not looked for.
	Unknown func(name string)
}

// Load builds the configuration from its layers and validates it.
func Load(opts Options) (Config, error) {
	cfg := Default()
	if err := loadFile(&cfg, opts.File); err != nil {
		return cfg, err
	}
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	environ := opts.Environ
	if environ == nil && opts.Env == nil {
		environ = os.Environ
	}
	if opts.Unknown != nil && environ != nil {
		for _, name := range UnknownVariables(environ()) {
			opts.Unknown(name)
		}
	}
	for _, s := range opts.Set {
		path, val, ok := strings.Cut(s, "=")
		if !ok {
			return cfg, fmt.Errorf("config: setting %q: want section.field=value", s)
		}
		if err := cfg.Set(strings.TrimSpace(path), val); err != nil {
			return cfg, err
		}
	}
	if err := loadAccountKeys(&cfg, env); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func loadFile(cfg *Config, file string) error {
	explicit := file != ""
	if !explicit {
		file = FileDefault
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config: read %s: %w", file, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %w", file, err)
	}
	return nil
}

// envAliases are the well-known variables that set one field each.
var envAliases = map[string]string{
	"REDIS_URL":               "redis.url",
	"REDIS_MASTER_NAME":       "redis.master_name",
	"REDIS_SENTINEL_ADDRS":    "redis.sentinel_addrs",
	"REDIS_SENTINEL_PASSWORD": "redis.sentinel_password",
	"REDIS_CLUSTER_ADDRS":     "redis.cluster_addrs",
	"REDIS_USERNAME":          "redis.username",
	"REDIS_PASSWORD":          "redis.password",
	"SEEDANCE_API_KEY":        "provider.api_key",
	"SEEDANCE_BASE_URL":       "provider.base_url",
}

func applyEnv(cfg *Config, env func(string) (string, bool)) error {
	fileable := secretPaths()
	for _, path := range Paths() {
		name := EnvName(path)
		v, ok, err := lookupEnv(env, name, fileable[path])
		if err != nil {
			return err
		}
		if ok {
			if err := cfg.Set(path, v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	names := make([]string, 0, len(envAliases))
	for n := range envAliases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok, err := lookupEnv(env, n, fileable[envAliases[n]])
		if err != nil {
			return err
		}
		if ok && v != "" {
			if err := cfg.Set(envAliases[n], v); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
	}
	return nil
}

// EnvName is the environment variable that sets the field at path:
// SEEDBATCH_ and the path in upper case, dots as underscores.
func EnvName(path string) string {
	return "SEEDBATCH_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Paths lists every settable field as "section.field", in struct order;
// prices is followed by the price of each resolution, prices.480p and
// prices.720p.
func Paths() []string {
	var out []string
	walk(reflect.TypeOf(Config{}), "", func(path string, _ []int) {
		out = append(out, path)
		if path == pricesPath {
			for _, r := range tasks.Resolutions {
				out = append(out, pricesPath+"."+r)
			}
		}
	})
	return out
}

// pricesPath is the path of the prices map, whose entries are settings too.
const pricesPath = "prices"

// otherVariables are SEEDBATCH_ variables that are not settings yet are
// known: the compose file's time scale, which it passes on as
// SEEDBATCH_WORKER_TIME_SCALE and the simulator's --time-scale, and those
// of the CI script and the tests.
var otherVariables = []string{"SEEDBATCH_TIME_SCALE", "SEEDBATCH_FUZZTIME", "SEEDBATCH_TEST_ARTIFACTS"}

// EnvNames lists, sorted, every SEEDBATCH_ variable seedbatch knows: one
// per setting (see EnvName), the _FILE form of each secret's, and the few
// that are not settings (the compose file's SEEDBATCH_TIME_SCALE).
func EnvNames() []string {
	var out []string
	for _, p := range Paths() {
		out = append(out, EnvName(p))
	}
	for p := range secretPaths() {
		out = append(out, EnvName(p)+FileSuffix)
	}
	out = append(out, otherVariables...)
	sort.Strings(out)
	return out
}

// UnknownVariables returns, sorted, the names of the SEEDBATCH_ variables
// of environ ("NAME=value" entries) that are not in EnvNames: they set
// nothing.
func UnknownVariables(environ []string) []string {
	known := map[string]bool{}
	for _, n := range EnvNames() {
		known[n] = true
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SEEDBATCH_") && !known[name] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func walk(t reflect.Type, prefix string, fn func(path string, index []int)) {
	var rec func(t reflect.Type, prefix string, index []int)
	rec = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				rec(f.Type, path, idx)
				continue
			}
			fn(path, idx)
		}
	}
	rec(t, prefix, nil)
}

// Set assigns value (YAML syntax: 5s, 200, true, text) to the field at path.
// A list of strings also takes a comma-separated value: a.example,
// *.b.example.
func (c *Config) Set(path, value string) error {
	if res, ok := strings.CutPrefix(path, pricesPath+"."); ok {
		// One price (Validate checks the resolution). The map is copied,
		// so that a copy of c keeps its own.
		var price float64
		if err := yaml.Unmarshal([]byte(value), &price); err != nil {
			return fmt.Errorf("config: %s: cannot use %q: want a price per second of video, such as 0.05", path, value)
		}
		prices := maps.Clone(c.Prices)
		if prices == nil {
			prices = map[string]float64{}
		}
		prices[strings.ToLower(res)] = price
		c.Prices = prices
		return nil
	}
	var index []int
	walk(reflect.TypeOf(*c), "", func(p string, idx []int) {
		if p == path {
			index = idx
		}
	})
	if index == nil {
		return fmt.Errorf("config: unknown setting %q", path)
	}
	field := reflect.ValueOf(c).Elem().FieldByIndex(index)
	if field.Kind() == reflect.String {
		field.SetString(value)
		return nil
	}
	if field.Type() == reflect.TypeOf([]string(nil)) && !strings.HasPrefix(strings.TrimSpace(value), "[") {
		// A comma-separated list, easier to write in the environment than
		// YAML (where "*.example.com" needs quotes).
		var list []string
		for v := range strings.SplitSeq(value, ",") {
			if v = strings.TrimSpace(v); v != "" {
				list = append(list, v)
			}
		}
		field.Set(reflect.ValueOf(list))
		return nil
	}
	ptr := reflect.New(field.Type())
	if err := yaml.Unmarshal([]byte(value), ptr.Interface()); err != nil {
		return fmt.Errorf("config: %s: cannot use %q: %w", path, value, err)
	}
	field.Set(ptr.Elem())
	return nil
}

// SettingError is a validation error about one setting: its field path
// and why the value is refused.
type SettingError struct {
	Field  string
	Reason string
}

func (e *SettingError) Error() string { return "config: " + e.Field + ": " + e.Reason }

// Validate checks every field once; the error names the first bad field.
func (c Config) Validate() error {
	type rule struct {
		field string
		bad   bool
		why   string
	}
	rules := []rule{
		{"redis.prefix", c.Redis.Prefix == "" || strings.ContainsAny(c.Redis.Prefix, "{}: \t"), "must be non-empty without spaces, ':' or braces"},
		{"redis.url", c.Redis.URL != "" && !hasScheme(c.Redis.URL, "redis://", "rediss://", "unix://"), "must start with redis://, rediss:// or unix://"},
		{"redis.url", c.Redis.URL != "" && (len(c.Redis.SentinelAddrs) > 0 || len(c.Redis.ClusterAddrs) > 0),
			"must be empty when redis.sentinel_addrs or redis.cluster_addrs is set (one Redis mode at a time)"},
		{"redis.cluster_addrs", len(c.Redis.ClusterAddrs) > 0 && len(c.Redis.SentinelAddrs) > 0,
			"must be empty when redis.sentinel_addrs is set (Sentinel or Cluster, not both)"},
		{"redis.master_name", len(c.Redis.SentinelAddrs) > 0 && c.Redis.MasterName == "", "must be set with redis.sentinel_addrs (the name the sentinels monitor)"},
		{"redis.sentinel_addrs", c.Redis.MasterName != "" && len(c.Redis.SentinelAddrs) == 0, "must be set with redis.master_name"},
		{"redis.sentinel_addrs", slices.ContainsFunc(c.Redis.SentinelAddrs, func(a string) bool { return !hostPort(a) }), "must be host:port addresses"},
		{"redis.cluster_addrs", slices.ContainsFunc(c.Redis.ClusterAddrs, func(a string) bool { return !hostPort(a) }), "must be host:port addresses"},
		{"redis.wait_replicas", c.Redis.WaitReplicas < 0, "must not be negative"},
		{"redis.sentinel_password", c.Redis.SentinelPassword != "" && len(c.Redis.SentinelAddrs) == 0, "is used only with redis.sentinel_addrs"},
		{"redis.password", (c.Redis.Password != "" || c.Redis.Username != "") && c.Redis.URL != "",
			"and redis.username are for Sentinel and Cluster modes: put a single server's in redis.url (redis://user:password@host:port)"},
		{"provider.base_url", !hasScheme(c.Provider.BaseURL, "http://", "https://"), "must be an http(s) URL"},
		{"provider.timeout", c.Provider.Timeout <= 0, "must be positive"},
		{"provider.not_created_codes", slices.ContainsFunc(c.Provider.NotCreatedCodes, func(code int) bool { return code < 400 }),
			"must list error codes (at least 400)"},
		{"limits.requests_per_minute", c.Limits.RequestsPerMinute <= 0, "must be positive"},
		{"limits.burst", c.Limits.Burst <= 0, "must be positive"},
		{"limits.create_reserve", c.Limits.CreateReserve < 0 || c.Limits.CreateReserve >= c.Limits.Burst, "must be at least 0 and less than limits.burst (lower it with a smaller burst)"},
		{"limits.max_in_flight", c.Limits.MaxInFlight <= 0, "must be positive"},
		{"limits.lease_ttl", c.Limits.LeaseTTL < time.Second, "must be at least 1s"},
		{"worker.submit_concurrency", c.Worker.SubmitConcurrency <= 0, "must be positive"},
		{"worker.poll_concurrency", c.Worker.PollConcurrency <= 0, "must be positive"},
		{"worker.first_poll_4s", c.Worker.FirstPoll4s <= 0, "must be positive"},
		{"worker.first_poll_8s", c.Worker.FirstPoll8s <= 0, "must be positive"},
		{"worker.first_poll_12s", c.Worker.FirstPoll12s <= 0, "must be positive"},
		{"worker.poll_interval", c.Worker.PollInterval <= 0, "must be positive"},
		{"worker.max_retry", c.Worker.MaxRetry < 1, "must be at least 1 (asynq archives a task with no retries left even while it only waits for a limit)"},
		{"worker.max_unreadable", c.Worker.MaxUnreadable < 1, "must be at least 1"},
		{"worker.shutdown_timeout", c.Worker.ShutdownTimeout <= 0, "must be positive"},
		{"worker.time_scale", c.Worker.TimeScale < 1, "must be at least 1"},
		{"worker.listen", c.Worker.Listen != "" && !hostPort(c.Worker.Listen), "must be host:port, e.g. 127.0.0.1:9090 (empty: not served)"},
		{"sim.time_scale", c.Sim.TimeScale < 1, "must be at least 1"},
		{"sim.fail_rate", c.Sim.FailRate < 0 || c.Sim.FailRate > 1, "must be between 0 and 1"},
		{"sim.requests_per_minute", c.Sim.RequestsPerMinute <= 0, "must be positive"},
		{"sim.max_in_flight", c.Sim.MaxInFlight <= 0, "must be positive"},
		{"sim.burst", c.Sim.Burst < 0, "must not be negative"},
		{"sim.listen", c.Sim.Listen == "", "must not be empty"},
		{"callback.request_type", !oneOf(c.Callback.RequestType, queue.RequestAsync, queue.RequestCallback), "must be async or callback"},
		{"callback.public_url", c.Callback.PublicURL != "" && !hasScheme(c.Callback.PublicURL, "http://", "https://"), "must be an http(s) URL"},
		{"callback.safety_grace", c.Callback.SafetyGrace <= 0, "must be positive"},
		{"callback.safety_interval", c.Callback.SafetyInterval <= 0, "must be positive"},
		{"callback.max_body", c.Callback.MaxBody < 1024, "must be at least 1024"},
		{"download.concurrency", c.Download.Concurrency <= 0, "must be positive"},
		{"download.max_bytes", c.Download.MaxBytes <= 0, "must be positive"},
		{"download.timeout", c.Download.Timeout <= 0, "must be positive"},
		{"budget.total_seconds", c.Budget.TotalSeconds < 0, "must not be negative"},
		{"budget.batch_seconds", c.Budget.BatchSeconds < 0, "must not be negative"},
		{"schedule.inbox", c.Schedule.Inbox == "", "must not be empty"},
		{"schedule.sync_interval", c.Schedule.SyncInterval < time.Second, "must be at least 1s"},
		{"schedule.import_settle", c.Schedule.ImportSettle < 0, "must not be negative"},
		{"schedule.give_up_after", c.Schedule.GiveUpAfter < time.Minute, "must be at least 1m"},
		{"out_dir", c.OutDir == "", "must not be empty"},
		{"retention", c.Retention < 0, "must not be negative (0 keeps finished batches forever)"},
		{"log.level", !oneOf(c.Log.Level, "debug", "info", "warn", "error"), "must be debug, info, warn or error"},
		{"log.format", !oneOf(c.Log.Format, "auto", "text", "json"), "must be auto, text or json"},
	}
	for _, r := range rules {
		if r.bad {
			return &SettingError{Field: r.field, Reason: r.why}
		}
	}
	if err := c.validateAccounts(); err != nil {
		return err
	}
	for res, p := range c.Prices {
		if p < 0 || math.IsNaN(p) || math.IsInf(p, 0) || !slices.Contains(tasks.Resolutions, res) {
			return &SettingError{Field: pricesPath + "." + res, Reason: fmt.Sprintf("want a resolution (%s) and a price of at least 0",
				strings.Join(tasks.Resolutions, " or "))}
		}
	}
	if objstore.IsURL(c.OutDir) {
		if err := objstore.Check(c.OutDir); err != nil {
			return &SettingError{Field: "out_dir", Reason: err.Error()}
		}
		if c.StateDir == "" {
			return &SettingError{Field: "state_dir", Reason: "must not be empty when out_dir is a bucket"}
		}
	}
	for i, p := range c.Download.AllowedHosts {
		if err := fetch.CheckHostPattern(p); err != nil {
			return &SettingError{Field: fmt.Sprintf("download.allowed_hosts[%d]", i), Reason: err.Error()}
		}
	}
	for _, l := range []struct {
		field string
		hosts []string
	}{{"callback.allowed_hosts", c.Callback.AllowedHosts}, {"dashboard.allowed_hosts", c.Dashboard.AllowedHosts},
		{"worker.allowed_hosts", c.Worker.AllowedHosts}} {
		for _, h := range l.hosts {
			if err := hostcheck.ValidName(h); err != nil {
				return &SettingError{Field: l.field, Reason: err.Error()}
			}
		}
	}
	for i, e := range c.Schedule.Entries {
		if e.Cron == "" || !oneOf(e.Task, housekeeping.Kinds()...) {
			return &SettingError{Field: fmt.Sprintf("schedule.entries[%d]", i), Reason: "want a cron spec and a task: import, reconcile or expiry"}
		}
	}
	if err := c.Defaults.Validate(); err != nil {
		return &SettingError{Field: "defaults", Reason: err.Error()}
	}
	return nil
}

// RedactURL hides the password of a URL such as redis://:secret@host:6379.
func RedactURL(u string) string { return redisconn.RedactURL(u) }

// Dump renders the configuration as YAML, secrets and passwords redacted.
func (c Config) Dump() string {
	c.Redis.URL = RedactURL(c.Redis.URL)
	b, err := yaml.Marshal(c)
	if err != nil {
		return "# " + err.Error()
	}
	return string(b)
}

// LogLevel returns the configured slog level.
func (c Config) LogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Log.Level)) // validated
	return l
}

func hasScheme(s string, schemes ...string) bool {
	for _, p := range schemes {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

// hostPort reports whether s is host:port with a numeric port (the host may
// be empty: every interface).
func hostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	return err == nil && port != "" && strings.Trim(port, "0123456789") == ""
}

func oneOf(s string, set ...string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

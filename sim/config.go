package sim

import (
	"cmp"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Defaults applied by Config.WithDefaults to zero fields.
const (
	// TimeScaleDefault is the default Config.TimeScale: real provider timings.
	TimeScaleDefault = 1.0
	// RequestsPerMinuteDefault is the provider's request limit per account.
	RequestsPerMinuteDefault = 10000
	// MaxInFlightDefault is the provider's limit of tasks in flight per account.
	MaxInFlightDefault = 1000
	// FileSizeDefault is the default size of a served result file (64 KiB).
	FileSizeDefault = 64 << 10
)

// Config configures a Sim. The zero value of every field but APIKey means
// its default.
type Config struct {
	// APIKey is the bearer key the provider endpoints accept. Required.
	APIKey string
	// TimeScale compresses time: every provider timing (generation times,
	// the request limit's minute) is divided by it. At least 1; default 1.
	TimeScale float64
	// RequestsPerMinute is the number of requests (creates and status reads
	// together) allowed per simulated minute, so the limiter refills at
	// RequestsPerMinute×TimeScale/60 tokens per second. Default 10000.
	RequestsPerMinute int
	// Burst is the size of the request token bucket. Default
	// max(1, RequestsPerMinute/60): one simulated second of requests.
	Burst int
	// MaxInFlight is the number of created tasks not yet succeeded or failed
	// beyond which a create answers 429. Default 1000.
	MaxInFlight int
	// FailRate is the fraction (0 to 1) of tasks that fail at random with
	// GENERATION_FAILED. Default 0.
	FailRate float64
	// Seed seeds the generator of generation times and random failures.
	// Default 0 (still deterministic).
	Seed int64
	// FileSize is the size in bytes of each served result file. Default 64 KiB.
	FileSize int
	// Now is the clock of task lifecycles and of the request limiter.
	// Default time.Now.
	Now func() time.Time
	// Logger receives debug logs of task creations, task ends and callback
	// attempts. Default: discard.
	Logger *slog.Logger

	// CallbackClient sends callback deliveries (see the package doc,
	// Callbacks). Every attempt is also bounded by a context deadline of
	// CallbackTimeout, whatever the client's own Timeout. Default: a client
	// with a CallbackTimeout Timeout.
	CallbackClient *http.Client
	// CallbackTimeout is how long a receiver has to answer a delivery
	// attempt. Default: the provider's 30 s divided by TimeScale.
	CallbackTimeout time.Duration
	// CallbackDropRate is the fraction (0 to 1) of callback-mode tasks whose
	// callback is lost entirely: never sent, never retried (counted in
	// Stats.Callbacks.Dropped and listed in Stats.Callbacks.DroppedTasks).
	// Default 0.
	CallbackDropRate float64
	// CallbackDupRate is the fraction (0 to 1) of callback-mode tasks whose
	// successful delivery is sent a second time shortly after. Default 0.
	CallbackDupRate float64
	// CallbackDelay is an extra delay before the first delivery attempt of
	// every callback, in real time: it is NOT divided by TimeScale. Default 0.
	CallbackDelay time.Duration
	// AdoptUnknown makes a status read of an unknown task id of this
	// simulator's form start that task as if it had just been created (a
	// 4-second video). It lets a client that outlived an earlier simulator,
	// such as a resumed run, finish its tasks. Default off.
	AdoptUnknown bool
	// Faults are the rates of random provider faults (see Faults and the
	// package doc, Faults); change them at run time with Sim.SetFaults or
	// PUT /sim/faults. Default: none.
	Faults Faults
	// Accounts are further API keys the simulator accepts, each with its
	// own limits and tasks in flight; APIKey and the limits above are the
	// account DefaultAccount. Default: none.
	Accounts []Account
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.TimeScale = cmp.Or(c.TimeScale, TimeScaleDefault)
	c.RequestsPerMinute = cmp.Or(c.RequestsPerMinute, RequestsPerMinuteDefault)
	c.Burst = cmp.Or(c.Burst, max(1, c.RequestsPerMinute/60))
	c.MaxInFlight = cmp.Or(c.MaxInFlight, MaxInFlightDefault)
	c.FileSize = cmp.Or(c.FileSize, FileSizeDefault)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Faults = c.Faults.withDefaults()
	accounts := make([]Account, len(c.Accounts))
	for i, a := range c.Accounts {
		accounts[i] = a.withDefaults()
	}
	c.Accounts = accounts
	if c.CallbackTimeout <= 0 && c.TimeScale >= 1 {
		c.CallbackTimeout = callbackTimeout(c.TimeScale)
	}
	if c.CallbackClient == nil {
		c.CallbackClient = &http.Client{Timeout: c.CallbackTimeout}
	}
	return c
}

// validate checks a Config that WithDefaults has filled in.
func (c Config) validate() error {
	switch {
	case c.APIKey == "":
		return errors.New("sim: APIKey is required")
	case !(c.TimeScale >= 1): // also rejects NaN
		return errors.New("sim: TimeScale must be at least 1")
	case c.RequestsPerMinute < 0:
		return errors.New("sim: RequestsPerMinute must be positive")
	case c.Burst < 0:
		return errors.New("sim: Burst must be positive")
	case c.MaxInFlight < 0:
		return errors.New("sim: MaxInFlight must be positive")
	case !(c.FailRate >= 0 && c.FailRate <= 1):
		return errors.New("sim: FailRate must be between 0 and 1")
	case c.FileSize < 0:
		return errors.New("sim: FileSize must be positive")
	case !(c.CallbackDropRate >= 0 && c.CallbackDropRate <= 1):
		return errors.New("sim: CallbackDropRate must be between 0 and 1")
	case !(c.CallbackDupRate >= 0 && c.CallbackDupRate <= 1):
		return errors.New("sim: CallbackDupRate must be between 0 and 1")
	case c.CallbackDelay < 0:
		return errors.New("sim: CallbackDelay must not be negative")
	}
	if err := c.validateAccounts(); err != nil {
		return err
	}
	return c.Faults.validate()
}

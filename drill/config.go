package drill

import (
	"cmp"
	"errors"
	"log/slog"
	"time"

	"github.com/seedbatch/seedbatch/sim"
)

// Defaults of Config, full size and --short.
const (
	// RowsDefault is the size of the main batch.
	RowsDefault = 10_000
	// RowsShort is the main batch of a short drill.
	RowsShort = 1_500
	// TimeScaleDefault compresses the provider's timings 4-fold.
	TimeScaleDefault = 4.0
	// TimeScaleShort compresses them 10-fold.
	TimeScaleShort = 10.0
	// FuzzTimeDefault is how long each fuzz target runs.
	FuzzTimeDefault = time.Minute
	// FuzzTimeShort is a short drill's: fuzzing is skipped.
	FuzzTimeShort = 0
	// maxInFlightShort is the provider's in-flight limit in a short drill,
	// so that its small batch still runs in several waves.
	maxInFlightShort = 200
	// workers is the number of worker processes.
	workers = 3
	// killsPer10k is the number of worker kills per 10 000 rows.
	killsPer10k = 22
)

// Config configures a drill. Zero fields take their defaults (those of
// Short when it is set); Executable is required.
type Config struct {
	// Rows is the number of rows of the main (polling) batch; a callback
	// batch of a fifth as many runs beside it. Default 10 000 (1 500 short).
	Rows int
	// TimeScale divides the provider's timings and multiplies its request
	// limit, for the simulator and the workers alike. Default 4 (10 short).
	TimeScale float64
	// Short is the CI size: fewer rows, kills and faults, shorter Redis
	// downtimes, a provider in-flight limit of 200, no fuzzing.
	Short bool
	// FuzzTime is how long each fuzz target runs; negative skips fuzzing.
	// Default 1m (skipped when Short).
	FuzzTime time.Duration
	// Executable is the seedbatch binary run as worker, enqueue and
	// reconcile.
	Executable string
	// SourceDir is the module's source tree, for fuzzing; empty: fuzzing is
	// not run.
	SourceDir string
	// Seed seeds the random kill moments and the simulator. Default: the
	// clock.
	Seed int64
	// Command is the command line, shown in the report.
	Command string
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Short {
		c.Rows = cmp.Or(c.Rows, RowsShort)
		c.TimeScale = cmp.Or(c.TimeScale, TimeScaleShort)
		if c.FuzzTime == 0 {
			c.FuzzTime = -1
		}
	}
	c.Rows = cmp.Or(c.Rows, RowsDefault)
	c.TimeScale = cmp.Or(c.TimeScale, TimeScaleDefault)
	c.FuzzTime = cmp.Or(c.FuzzTime, FuzzTimeDefault)
	c.Seed = cmp.Or(c.Seed, time.Now().UnixNano())
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Rows < 100:
		return errors.New("drill: Rows must be at least 100")
	case !(c.TimeScale >= 1):
		return errors.New("drill: TimeScale must be at least 1")
	case c.Executable == "":
		return errors.New("drill: Executable is required")
	}
	return nil
}

// maxInFlight is the provider's in-flight limit, the workers' too.
func (c Config) maxInFlight() int {
	if c.Short {
		return maxInFlightShort
	}
	return sim.MaxInFlightDefault
}

// kills is the number of worker kills: killsPer10k per 10 000 rows, at
// least 3.
func (c Config) kills() int {
	return max(3, (killsPer10k*c.Rows+9_999)/10_000)
}

// redisDowns are the Redis downtimes, in order.
func (c Config) redisDowns() []time.Duration {
	if c.Short {
		return []time.Duration{time.Second, 3 * time.Second, 6 * time.Second}
	}
	return []time.Duration{2 * time.Second, 10 * time.Second, 45 * time.Second}
}

// window is how long each provider fault is on; settle the quiet time
// after it.
func (c Config) window() (on, settle time.Duration) {
	if c.Short {
		return 3 * time.Second, 2 * time.Second
	}
	return 8 * time.Second, 5 * time.Second
}

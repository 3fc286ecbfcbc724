package bench

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// Scenario names, in the order they run.
const (
	// ScenarioBaseline is the naive client.
	ScenarioBaseline = "baseline"
	// ScenarioPolling is seedbatch enqueue and workers, async request type.
	ScenarioPolling = "polling"
	// ScenarioCallback is seedbatch enqueue and workers, callback request type.
	ScenarioCallback = "callback"
)

// Defaults of Config.
const (
	// JobsDefault is the number of jobs of each scenario.
	JobsDefault = 3000
	// TimeScaleDefault compresses the provider's timings 4-fold.
	TimeScaleDefault = 4.0
	// DurationDefault is the video length of every job, in seconds.
	DurationDefault = 4
	// EnqueueRowsDefault is the size of the enqueue measurement; Config
	// takes 0 as "skip it", so a command's flag starts from this value.
	EnqueueRowsDefault = 100_000
)

// ScenariosDefault are the scenarios run when Config.Scenarios is empty.
func ScenariosDefault() []string {
	return []string{ScenarioBaseline, ScenarioPolling, ScenarioCallback}
}

// WorkersDefault are the worker process counts run when Config.Workers is
// empty.
func WorkersDefault() []int { return []int{1, 3} }

// Config configures a benchmark run. The zero value of every field but
// Executable and EnqueueRows means its default.
type Config struct {
	// Jobs is the number of jobs of each scenario. Default 3000.
	Jobs int
	// TimeScale divides every provider timing and multiplies the request
	// limit, for the simulator, the naive client and the workers alike.
	// At least 1; default 4.
	TimeScale float64
	// Duration is the video length of every job: 4, 8 or 12 seconds.
	// Default 4.
	Duration int
	// Scenarios are the scenarios to run, among ScenarioBaseline,
	// ScenarioPolling and ScenarioCallback; they run in that order.
	// Default all three.
	Scenarios []string
	// Workers are the worker process counts of the polling and callback
	// scenarios, each at least 1. Default 1 and 3.
	Workers []int
	// EnqueueRows is the number of rows of the enqueue measurement; 0 skips
	// it (EnqueueRowsDefault is the usual size).
	EnqueueRows int
	// Executable is the seedbatch binary run as `enqueue` and `worker`.
	// Required when a seedbatch scenario or the enqueue line runs.
	Executable string
	// RedisURL is the Redis to use. Empty: a redis-server on PATH, started
	// for the run; without one, the embedded miniredis.
	RedisURL string
	// Command is the command line, shown in the report's header.
	Command string
	// Logger receives progress. Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Jobs = cmp.Or(c.Jobs, JobsDefault)
	c.TimeScale = cmp.Or(c.TimeScale, TimeScaleDefault)
	c.Duration = cmp.Or(c.Duration, DurationDefault)
	if len(c.Scenarios) == 0 {
		c.Scenarios = ScenariosDefault()
	}
	if len(c.Workers) == 0 {
		c.Workers = WorkersDefault()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks a Config that WithDefaults has filled in.
func (c Config) validate() error {
	switch {
	case c.Jobs < 1:
		return errors.New("bench: Jobs must be at least 1")
	case !(c.TimeScale >= 1): // also rejects NaN
		return errors.New("bench: TimeScale must be at least 1")
	case c.Duration != 4 && c.Duration != 8 && c.Duration != 12:
		return fmt.Errorf("bench: Duration must be 4, 8 or 12, got %d", c.Duration)
	case c.EnqueueRows < 0:
		return errors.New("bench: EnqueueRows must not be negative")
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(ScenariosDefault(), s) {
			return fmt.Errorf("bench: Scenarios: unknown scenario %q (want baseline, polling or callback)", s)
		}
	}
	for _, n := range c.Workers {
		if n < 1 {
			return fmt.Errorf("bench: Workers: %d worker processes (want at least 1)", n)
		}
	}
	if c.Executable == "" && (c.EnqueueRows > 0 || c.runsSeedbatch()) {
		return errors.New("bench: Executable is required to run seedbatch")
	}
	return nil
}

// runsSeedbatch reports whether a polling or callback scenario is chosen.
func (c Config) runsSeedbatch() bool {
	return slices.Contains(c.Scenarios, ScenarioPolling) || slices.Contains(c.Scenarios, ScenarioCallback)
}

// scenario is one row of the report.
type scenario struct {
	name    string
	workers int // 0 for the baseline
}

// scenarios returns the scenarios to run, in their fixed order.
func (c Config) scenarios() []scenario {
	var out []scenario
	for _, name := range ScenariosDefault() {
		if !slices.Contains(c.Scenarios, name) {
			continue
		}
		if name == ScenarioBaseline {
			out = append(out, scenario{name: name})
			continue
		}
		for _, n := range c.Workers {
			out = append(out, scenario{name: name, workers: n})
		}
	}
	return out
}

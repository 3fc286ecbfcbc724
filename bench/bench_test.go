package bench

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/sim"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"defaults", Config{Executable: "seedbatch"}, ""},
		{"baseline needs no executable", Config{Scenarios: []string{ScenarioBaseline}}, ""},
		{"seedbatch needs the executable", Config{Scenarios: []string{ScenarioPolling}}, "Executable"},
		{"the enqueue line needs it too", Config{Scenarios: []string{ScenarioBaseline}, EnqueueRows: 10}, "Executable"},
		{"unknown scenario", Config{Scenarios: []string{"pollling"}}, `"pollling"`},
		{"no workers", Config{Executable: "x", Workers: []int{1, 0}}, "Workers"},
		{"duration", Config{Executable: "x", Duration: 5}, "Duration"},
		{"time scale", Config{Executable: "x", TimeScale: 0.5}, "TimeScale"},
		{"jobs", Config{Executable: "x", Jobs: -1}, "Jobs"},
		{"enqueue rows", Config{Executable: "x", EnqueueRows: -1}, "EnqueueRows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.WithDefaults().validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("validate: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestScenarioOrder(t *testing.T) {
	t.Parallel()
	cfg := Config{Scenarios: []string{ScenarioCallback, ScenarioBaseline, ScenarioPolling}, Workers: []int{3, 1}}
	got := cfg.WithDefaults().scenarios()
	want := []scenario{{ScenarioBaseline, 0}, {ScenarioPolling, 3}, {ScenarioPolling, 1}, {ScenarioCallback, 3}, {ScenarioCallback, 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios %v, want %v", got, want)
	}
}

func TestPrompt(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := range 2000 {
		p := prompt(i)
		if len(p) != promptChars || strings.ContainsAny(p, "\",\n") || seen[p] {
			t.Fatalf("prompt %d: %q", i, p)
		}
		seen[p] = true
	}
}

// TestDrop checks that dropping a namespace deletes its seedbatch keys, its
// account's limit keys and its asynq queues, and nothing else.
func TestDrop(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	r := &benchRedis{client: rs.Client}
	ns := newNamespace("drop")
	other := namespace{prefix: rs.Prefix, apiKey: "other-key"}
	write := func(n namespace, extra string) []string {
		keys := []string{n.prefix + ":batches", n.prefix + ":b:{bench}:meta",
			ratelimit.AccountPrefix + ":{" + ratelimit.AccountScope(n.apiKey) + "}:leases"}
		for _, q := range n.queues(extra) {
			keys = append(keys, "asynq:{"+q+"}:pending", "asynq:{"+q+"}:t:row-1")
			rs.Client.SAdd(ctx, "asynq:queues", q)
		}
		for _, k := range keys {
			if err := rs.Client.Set(ctx, k, "x", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		return keys
	}
	mine := write(ns, ns.prefix+"-asynq")
	kept := write(other, other.prefix+"-asynq")
	t.Cleanup(func() {
		rs.Client.Del(ctx, kept...)
		for _, q := range other.queues(other.prefix + "-asynq") {
			rs.Client.SRem(ctx, "asynq:queues", q)
		}
	})
	if err := r.drop(ctx, ns, ns.prefix+"-asynq"); err != nil {
		t.Fatal(err)
	}
	if n := rs.Client.Exists(ctx, mine...).Val(); n != 0 {
		t.Errorf("%d keys of the namespace left", n)
	}
	if n := rs.Client.Exists(ctx, kept...).Val(); n != int64(len(kept)) {
		t.Errorf("%d of %d keys of another namespace left", n, len(kept))
	}
	queues := rs.Client.SMembers(ctx, "asynq:queues").Val()
	for _, q := range ns.queues(ns.prefix + "-asynq") {
		if slices.Contains(queues, q) {
			t.Errorf("queue %s still listed", q)
		}
	}
	if !slices.Contains(queues, other.prefix+"-asynq") {
		t.Errorf("another namespace's queue was removed")
	}
}

func TestWriteMarkdown(t *testing.T) {
	t.Parallel()
	st := sim.Stats{BusyUtilization: 0.9123, BusyWindow: 100, RequestsPerJob: 3.456, PeakInFlight: 1000,
		DetectionLag: sim.LagStats{P50: 2.25, P99: 9.5, NeverNoticed: 2}}
	rep := &Report{
		Machine: Machine{CPU: "Test CPU", CPUs: 2, GOMAXPROCS: 2, GoVersion: "go1.26", OS: "linux/amd64"},
		Redis:   "redis-server 7", Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Config: Config{Jobs: 3000, TimeScale: 4, Duration: 4, Command: "seedbatch bench"}.WithDefaults(),
		Rows: []Row{
			{Scenario: ScenarioBaseline, Jobs: 3000, Stats: st, WorkerCPU: -1, RedisCommands: -1, RedisBytes: -1, Wall: 90 * time.Second},
			{Scenario: ScenarioPolling, Workers: 3, Jobs: 3000, Stats: sim.Stats{RequestsPerJob: 2},
				WorkerCPU: 6 * time.Second, RedisCommands: 300_000, RedisBytes: 30_000_000, Wall: 50 * time.Second},
			{Scenario: ScenarioCallback, Workers: 1, Jobs: 3000, Err: errors.New("worker 1 exited:\nbad | thing")},
		},
		Enqueue:   &EnqueueLine{Rows: 1000, Seedbatch: 2 * time.Second, MaxRSS: 64 << 20, Asynq: time.Second},
		LoadStart: "0.50 0.40 0.30", LoadEnd: "1.50 0.80 0.40",
	}
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Test CPU, 2 CPUs, GOMAXPROCS 2, go1.26",
		"Load average (1, 5, 15 min): 0.50 0.40 0.30 at the start, 1.50 0.80 0.40 at the end",
		"| baseline | – | 3000 | 0.912 | 3.46 | 2.2 / 9.5 (2 never) | 0.0 / 0.0 | 1000 | 0 | 0 | – | – | – | 90.0 s |",
		"| polling | 3 | 3000 | n/a | 2.00 | 0.0 / 0.0 | 0.0 / 0.0 | 0 | 0 | 0 | 2.00 | 100.0 | 10000 | 50.0 s |",
		"| callback | 1 | 3000 | error: worker 1 exited: bad / thing | – |",
		"500 rows/s", "max RSS 64 MiB", "1000 tasks/s", "seedbatch / asynq = 0.50",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n| "); n != 4 {
		t.Errorf("%d table lines, want a header and 3 rows", n)
	}
	if !rep.Failed() {
		t.Error("a failed row does not fail the report")
	}
}

// TestRunBaseline runs the baseline scenario alone through Run, on the
// Redis of REDIS_URL (or one Run starts).
func TestRunBaseline(t *testing.T) {
	t.Parallel()
	rep, err := Run(t.Context(), Config{Jobs: 30, TimeScale: 1000, Scenarios: []string{ScenarioBaseline},
		RedisURL: os.Getenv("REDIS_URL")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Failed() || rep.Enqueue != nil {
		t.Fatalf("report %+v", rep)
	}
	st := rep.Rows[0].Stats
	if st.Created != 30 || st.Succeeded != 30 || st.DuplicateCreates != 0 || st.RateLimited != 0 {
		t.Fatalf("baseline stats: created %d, succeeded %d, duplicates %d, 429s %d",
			st.Created, st.Succeeded, st.DuplicateCreates, st.RateLimited)
	}
}

// TestRunScenarioFails checks that a scenario that fails (here its workers
// exit at once) shows its error in its row while the others still run.
func TestRunScenarioFails(t *testing.T) {
	t.Parallel()
	exe, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false command")
	}
	rep, err := Run(t.Context(), Config{Jobs: 10, TimeScale: 1000, Executable: exe,
		Scenarios: []string{ScenarioPolling, ScenarioBaseline}, Workers: []int{2}, RedisURL: os.Getenv("REDIS_URL")})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || !rep.Failed() {
		t.Fatalf("rows %+v", rep.Rows)
	}
	if base, polling := rep.Rows[0], rep.Rows[1]; base.Err != nil || polling.Err == nil ||
		!strings.Contains(polling.Err.Error(), "exited at start") {
		t.Fatalf("baseline error %v, polling error %v", base.Err, polling.Err)
	}
}

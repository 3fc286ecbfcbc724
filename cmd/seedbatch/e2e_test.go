package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/syncbuf"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/sim"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the seedbatch command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "seedbatch-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "seedbatch")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a seedbatch process started by a test.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	done   chan error
}

// start runs the binary with args and env; the test's cleanup kills it.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s output:\n%s", filepath.Base(cmd.Path), strings.Join(args, " "), tail(p.stderr.String(), 3000))
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop(t *testing.T, within time.Duration) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(within):
		t.Errorf("%s did not stop within %v after SIGTERM", p.cmd.Args[1], within)
		return nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

var simAddr = regexp.MustCompile(`listening on (http://\S+)`)

// startSimProcess runs `seedbatch sim` and returns its base URL.
func startSimProcess(t *testing.T, key string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"sim", "--addr", "127.0.0.1:0", "--api-key", key}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := simAddr.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("simulator did not start")
		return ""
	}
}

func simStats(t *testing.T, base string) sim.Stats {
	t.Helper()
	resp, err := http.Get(base + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st sim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestThreeWorkerProcesses is the acceptance run of the core pipeline: 2000
// rows, three separate worker processes sharing one Redis, and the
// simulator enforcing limits lowered to 50 tasks in flight and 600 requests
// per simulated minute. Every row must end, without a single 429 and with
// exactly one created task per row.
func TestThreeWorkerProcesses(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end run of 2000 rows")
	}
	rows := 2000
	if !redistest.Real() {
		// An embedded Redis shared by four processes is the bottleneck;
		// CI runs the full size against a real server.
		rows = 500
	}
	rs := redistest.New(t)
	res := e2eRun{rows: rows, env: []string{"REDIS_URL=" + rs.URL}, rdb: rs.Client, prefix: rs.Prefix}.run(t)
	res.check(t, true)
}

// e2eRun is one acceptance run of the core pipeline: rows rows, three
// separate worker processes sharing one Redis (env says which, rdb reaches
// it), and the simulator enforcing limits lowered to 50 tasks in flight and
// 600 requests per simulated minute.
type e2eRun struct {
	rows   int
	env    []string
	rdb    redis.UniversalClient
	prefix string
	// midway, when set, runs once a third of the rows are terminal.
	midway func(t *testing.T)
}

// e2e run's limits.
const (
	e2eTimeScale = 50
	e2eInFlight  = 50
	e2eSimRPM    = 600
)

// e2eResult is what an e2eRun ended with.
type e2eResult struct {
	rows   int
	counts batch.Counts
	stats  sim.Stats
}

func (r e2eRun) run(t *testing.T) e2eResult {
	t.Helper()
	key := "e2e-" + randomHex(8)
	simURL := startSimProcess(t, key, "--time-scale", fmt.Sprint(e2eTimeScale), "--rpm", fmt.Sprint(e2eSimRPM),
		"--max-in-flight", fmt.Sprint(e2eInFlight),
		// A burst of 3 simulated seconds (60 ms here): what a gateway tolerates
		// of requests that the workers spaced out but the network (or a
		// loaded 2-core machine) delivered together.
		"--burst", "30")

	var csv strings.Builder
	csv.WriteString("id,prompt,duration,resolution\n")
	for i := range r.rows {
		dur, res := 4, "720p"
		if i%10 == 0 {
			dur = 8
		}
		if i%3 == 0 {
			res = "480p"
		}
		fmt.Fprintf(&csv, "clip-%04d,\"variant %d of a product shot, studio light\",%d,%s\n", i, i, dur, res)
	}
	path := filepath.Join(t.TempDir(), "e2e.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(r.env,
		"SEEDBATCH_REDIS_PREFIX="+r.prefix,
		"SEEDANCE_API_KEY="+key,
		"SEEDANCE_BASE_URL="+simURL,
		"SEEDBATCH_WORKER_TIME_SCALE="+fmt.Sprint(e2eTimeScale),
		"SEEDBATCH_LIMITS_MAX_IN_FLIGHT="+fmt.Sprint(e2eInFlight),
		// 80% of the simulator's 600, leaving its bucket room to refill.
		"SEEDBATCH_LIMITS_REQUESTS_PER_MINUTE=480",
		"SEEDBATCH_LIMITS_BURST=5",
		"SEEDBATCH_LIMITS_CREATE_RESERVE=2",
		"SEEDBATCH_LOG_LEVEL=warn",
		"SEEDBATCH_OUT_DIR="+t.TempDir(),
	)
	enq := exec.Command(binary(t), "enqueue", "--batch", "e2e", path)
	enq.Env = append(os.Environ(), env...)
	out, err := enq.CombinedOutput()
	if err != nil {
		t.Fatalf("enqueue: %v\n%s", err, out)
	}
	var workers []*proc
	for range 3 {
		workers = append(workers, start(t, env, "worker"))
	}

	store := batch.NewStore(r.rdb, r.prefix)
	started := time.Now()
	var counts batch.Counts
	testwait.Until(t, 4*time.Minute, func() error {
		if _, counts, err = store.Get(t.Context(), "e2e"); err != nil {
			// A failover or a cluster's moved slot answers an error once.
			return fmt.Errorf("read the batch: %w", err)
		}
		if r.midway != nil && counts.Terminal() >= r.rows/3 {
			r.midway(t)
			r.midway = nil
		}
		if counts.Terminal() != r.rows {
			return fmt.Errorf("not finished after %v: %v", time.Since(started), counts)
		}
		return nil
	})
	elapsed := time.Since(started)
	for _, w := range workers {
		if err := w.stop(t, 30*time.Second); err != nil {
			t.Errorf("worker exit: %v", err)
		}
	}
	st := simStats(t, simURL)
	t.Logf("%d rows in %v with 3 workers: %v; simulator: created %d, peak in flight %d, 429s %d, requests %v",
		r.rows, elapsed.Round(time.Millisecond), counts, st.Created, st.PeakInFlight, st.RateLimited, st.Requests)
	return e2eResult{rows: r.rows, counts: counts, stats: st}
}

// check checks a run: the in-flight limit held, no row created twice, every
// row terminal. Without a failover (allDone), every row is done, once, and
// no answer was 429. Through a failover, rows whose create may have left
// end ambiguous, and the new master may have missed the request bucket's
// last writes, so the provider may refuse a few requests with 429 (which
// cost nothing and are retried): they are logged, not failed.
func (res e2eResult) check(t *testing.T, allDone bool) {
	t.Helper()
	st, rows, counts := res.stats, res.rows, res.counts
	if st.PeakInFlight > e2eInFlight {
		t.Errorf("peak in flight %d > %d", st.PeakInFlight, e2eInFlight)
	}
	switch {
	case st.RateLimited != 0 && allDone:
		t.Errorf("%d answers were 429", st.RateLimited)
	case st.RateLimited != 0:
		t.Logf("%d answers were 429 after the failover", st.RateLimited)
	}
	if st.MaxCreatesPerPrompt() > 1 {
		t.Errorf("a row was created %d times", st.MaxCreatesPerPrompt())
	}
	if counts.Terminal() != rows {
		t.Errorf("%d of %d rows terminal: %v", counts.Terminal(), rows, counts)
	}
	if !allDone {
		return
	}
	if counts["done"] != rows {
		t.Errorf("done %d of %d: %v", counts["done"], rows, counts)
	}
	if got := st.Count("file", 200); got != rows {
		t.Errorf("%d videos downloaded, want %d", got, rows)
	}
	if st.Created != rows || len(st.CreatedPerPrompt) != rows {
		t.Errorf("created %d tasks for %d prompts, want exactly one per row", st.Created, len(st.CreatedPerPrompt))
	}
}

// runMain runs the command in-process.
func runMain(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code := m.Run(ctx, args)
	return code, stdout.String(), stderr.String()
}

// TestRunExample is the README's first command: the example file, the
// embedded Redis and the simulator.
func TestRunExample(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"SEEDBATCH_OUT_DIR": dir}
	code, stdout, stderr := runMain(t, env, "run", "--batch", "example", filepath.Join("..", "..", "examples", "prompts.csv"))
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "built-in provider simulator") || !strings.Contains(stderr, "embedded Redis") {
		t.Errorf("the simulator and embedded Redis were not announced:\n%s", stderr)
	}
	records, col := readResults(t, filepath.Join(dir, "example", "results.csv"), 12, stderr)
	for _, r := range records {
		if r[col["state"]] != "done" || r[col["task_id"]] == "" || r[col["result_urls"]] == "" || r[col["sha256"]] == "" {
			t.Errorf("row %s: state %s, task %q, urls %q, sha256 %q", r[col["id"]], r[col["state"]], r[col["task_id"]], r[col["result_urls"]], r[col["sha256"]])
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, r[col["files"]]))
		if err != nil || fmt.Sprint(len(data)) != r[col["sizes"]] {
			t.Errorf("row %s: file %s: %v (%d bytes, results say %s)", r[col["id"]], r[col["files"]], err, len(data), r[col["sizes"]])
		}
	}
}

// TestExitCodes checks the documented exit codes on bad input.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "prompt\na scene that works\n")
	bad := write("bad.csv", "id,prompt,duration\na,a scene that works,4\nb,a scene of five seconds,5\n")
	open := write("open.csv", "prompt\n\"never closed\nmore\n")
	env := map[string]string{"SEEDBATCH_OUT_DIR": filepath.Join(dir, "out")}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no command", env, nil, exitUsage, "Usage"},
		{"unknown command", env, []string{"launch"}, exitUsage, "unknown command"},
		{"missing file", env, []string{"run", filepath.Join(dir, "nope.csv")}, exitUsage, "no such file"},
		{"unterminated quote", env, []string{"run", open}, exitUsage, "line 2"},
		{"bad config", map[string]string{"SEEDBATCH_LIMITS_MAX_IN_FLIGHT": "-3"}, []string{"run", good}, exitUsage, "limits.max_in_flight"},
		{"strict refuses a bad row", env, []string{"run", "--strict", bad}, exitUsage, "--strict"},
		{"a bad row fails the run", env, []string{"run", bad}, exitRows, "line 3"},
		{"enqueue needs redis", env, []string{"enqueue", good}, exitUsage, "no Redis configured"},
		{"unreachable redis", map[string]string{"REDIS_URL": "redis://127.0.0.1:1"}, []string{"status"}, exitUnreachable, "cannot reach Redis"},
		{"dry run", env, []string{"run", "--dry-run", bad}, exitOK, "dry run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tt.code, tt.want, stdout, stderr)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		pos  string
		st   string
	}{
		{[]string{"b1", "--state", "failed"}, "b1", "failed"},
		{[]string{"--state", "failed", "b1"}, "b1", "failed"},
		{[]string{"--state=ambiguous", "b1", "b2"}, "b1 b2", "ambiguous"},
		{[]string{"--", "--state"}, "--state", ""},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		st := fs.String("state", "", "")
		if err := parseInterspersed(fs, tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if got := strings.Join(fs.Args(), " "); got != tt.pos || *st != tt.st {
			t.Errorf("%v: args %q state %q, want %q %q", tt.args, got, *st, tt.pos, tt.st)
		}
	}
}

// TestRunCallbackMode runs the example in callback mode: the simulator
// posts each result to run's own receiver.
func TestRunCallbackMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, stdout, stderr := runMain(t, map[string]string{"SEEDBATCH_OUT_DIR": dir},
		"run", "--request-type", "callback", "--batch", "cb", filepath.Join("..", "..", "examples", "prompts.csv"))
	if code != exitOK || !strings.Contains(stdout, "done 12") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// readResults reads a results file of rows rows: the records after the
// header, and each column's index by name. It fails the test, showing
// output (the run's), when the file is missing or has another length.
func readResults(t *testing.T, path string, rows int, output string) ([][]string, map[string]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no results: %v\n%s", err, tail(output, 2000))
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil || len(records) != rows+1 {
		t.Fatalf("results: %d records, want a header and %d rows (%v)", len(records), rows, err)
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	return records[1:], col
}

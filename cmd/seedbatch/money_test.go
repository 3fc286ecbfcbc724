package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/tasks"
)

// writeCSV writes rows 4-second prompts named by tag and returns the path.
func writeCSV(t *testing.T, tag string, rows int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,prompt,duration,resolution\n")
	for i := range rows {
		res := "720p"
		if i%2 == 0 {
			res = "480p"
		}
		fmt.Fprintf(&b, "%s-%03d,%s scene number %d,4,%s\n", tag, i, tag, i, res)
	}
	path := filepath.Join(t.TempDir(), tag+".csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs the binary to completion and returns its exit code and output.
func cli(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// TestBudgetRetryCancel races three workers on a batch larger than its
// budget, then raises the budget with retry and cancels the rest.
func TestBudgetRetryCancel(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const rows = 120
	rs := redistest.New(t)
	key := "budget-" + randomHex(8)
	simURL := startSimProcess(t, key, "--time-scale", "100")
	env := []string{
		"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix,
		"SEEDANCE_API_KEY=" + key, "SEEDANCE_BASE_URL=" + simURL,
		"SEEDBATCH_WORKER_TIME_SCALE=100", "SEEDBATCH_LOG_LEVEL=warn",
		"SEEDBATCH_OUT_DIR=" + t.TempDir(), "SEEDBATCH_CALLBACK_LISTEN=",
	}
	path := writeCSV(t, "budget", rows)

	// A dry run prints seconds and cost and creates nothing.
	code, out := cli(t, append(env, "SEEDBATCH_PRICES={480p: 0.02, 720p: 0.05}"), "enqueue", "--dry-run", "--batch", "b", path)
	if code != 0 || !strings.Contains(out, "480p") || !strings.Contains(out, "240 video seconds") || !strings.Contains(out, "16.80 estimated") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if st := simStats(t, simURL); st.Created != 0 || st.Count("create", 200) != 0 {
		t.Fatalf("a dry run created %d tasks", st.Created)
	}

	if code, out := cli(t, env, "enqueue", "--batch", "b", "--budget", "40", path); code != 0 {
		t.Fatalf("enqueue: exit %d\n%s", code, out)
	}
	var workers []*proc
	for range 3 {
		workers = append(workers, start(t, env, "worker"))
	}
	store := batch.NewStore(rs.Client, rs.Prefix)
	settled := func(want map[string]int) batch.Counts {
		t.Helper()
		var c batch.Counts
		testwait.Until(t, 60*time.Second, func() error {
			var err error
			if _, c, err = store.Get(t.Context(), "b"); err != nil {
				return err
			}
			for st, n := range want {
				if c[tasks.State(st)] != n {
					return fmt.Errorf("counts %v, want %v", c, want)
				}
			}
			return nil
		})
		return c
	}
	settled(map[string]int{"done": 10, "budget": rows - 10})
	if st := simStats(t, simURL); st.CreatedSeconds != 40 || st.Created != 10 {
		t.Errorf("with a budget of 40 s the simulator created %d tasks, %d s", st.Created, st.CreatedSeconds)
	}
	code, out = cli(t, env, "status", "b")
	if code != 0 || !strings.Contains(out, "40 video seconds created of a budget of 40") || !strings.Contains(out, fmt.Sprintf("%d held by the budget", rows-10)) {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	if code, out := cli(t, env, "retry", "b", "--state", "budget", "--budget", "80"); code != 0 || !strings.Contains(out, "110 budget rows queued again") {
		t.Fatalf("retry: exit %d\n%s", code, out)
	}
	settled(map[string]int{"done": 20, "budget": rows - 20})
	if code, out := cli(t, env, "cancel", "b"); code != 0 || !strings.Contains(out, "canceled 100 rows") {
		t.Fatalf("cancel: exit %d\n%s", code, out)
	}
	settled(map[string]int{"done": 20, "canceled": rows - 20})
	for _, w := range workers {
		_ = w.stop(t, 30*time.Second)
	}
	// results lists every input row once, in input order.
	code, out = cli(t, env, "results", "b", "--format", "jsonl")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != rows {
		t.Fatalf("results: exit %d, %d lines", code, len(lines))
	}
	for i, l := range lines {
		var r struct {
			Row   int    `json:"row"`
			ID    string `json:"id"`
			State string `json:"state"`
			Files []struct {
				SHA256 string `json:"sha256"`
			} `json:"files"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Row != i || r.ID != fmt.Sprintf("budget-%03d", i) {
			t.Fatalf("results line %d: %v %+v", i, err, r)
		}
		if r.State == "done" && (len(r.Files) != 1 || len(r.Files[0].SHA256) != 64) {
			t.Errorf("done row %s without its file: %s", r.ID, l)
		}
	}
	st := simStats(t, simURL)
	if st.CreatedSeconds != 80 || st.Created != 20 || st.MaxCreatesPerPrompt() != 1 {
		t.Errorf("after raising the budget to 80 s: created %d tasks, %d s, max %d per prompt", st.Created, st.CreatedSeconds, st.MaxCreatesPerPrompt())
	}
}

// TestRunKilledAndResumed kills `run` (embedded Redis, simulator in its own
// process so that it remembers every create) with SIGKILL at several points
// and starts it again each time: the batch must finish with no row created
// twice.
func TestRunKilledAndResumed(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	for _, mode := range []string{"async", "callback"} {
		t.Run(mode, func(t *testing.T) { runKilledAndResumed(t, mode) })
	}
}

func runKilledAndResumed(t *testing.T, mode string) {
	const rows = 150
	key := "resume-" + randomHex(8)
	simURL := startSimProcess(t, key, "--time-scale", "40")
	out := t.TempDir()
	env := []string{
		"SEEDANCE_API_KEY=" + key, "SEEDANCE_BASE_URL=" + simURL,
		"SEEDBATCH_WORKER_TIME_SCALE=40", "SEEDBATCH_OUT_DIR=" + out,
		"SEEDBATCH_WORKER_SUBMIT_CONCURRENCY=10", "SEEDBATCH_LIMITS_MAX_IN_FLIGHT=40",
	}
	env = append(env, "REDIS_URL=") // the embedded Redis, whatever the test's environment says
	if mode == "callback" {
		// The receiver keeps its address across restarts, as a real one would.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		env = append(env, "SEEDBATCH_CALLBACK_REQUEST_TYPE=callback", "SEEDBATCH_CALLBACK_LISTEN="+addr,
			"SEEDBATCH_CALLBACK_PUBLIC_URL=http://"+addr)
	}
	path := writeCSV(t, "resume", rows)
	for i, after := range []time.Duration{300 * time.Millisecond, 900 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond} {
		p := start(t, env, "run", "--batch", "r", path)
		time.Sleep(after)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.done <- nil
		st := simStats(t, simURL)
		t.Logf("kill %d after %v: %d tasks created so far", i+1, after, st.Created)
	}
	code, output := cli(t, env, "run", "--batch", "r", path)
	if !strings.Contains(output, "resuming") {
		t.Errorf("the last run did not resume:\n%s", output)
	}
	st := simStats(t, simURL)
	if st.MaxCreatesPerPrompt() > 1 {
		t.Fatalf("a row was created %d times", st.MaxCreatesPerPrompt())
	}
	records, col := readResults(t, filepath.Join(out, "r", "results.csv"), rows, fmt.Sprintf("exit %d\n%s", code, output))
	states := map[string]int{}
	for _, r := range records {
		states[r[col["state"]]]++
		switch r[col["state"]] {
		case "done":
		case "ambiguous":
			// Killed between recording the intent and hearing the answer: the
			// task may exist, so the row is never created again.
			if r[col["fail_code"]] != "CREATE_INTERRUPTED" {
				t.Errorf("row %s ambiguous with %s", r[col["id"]], r[col["fail_code"]])
			}
		default:
			t.Errorf("row %s ended %s (%s)", r[col["id"]], r[col["state"]], r[col["fail_msg"]])
		}
	}
	t.Logf("exit %d; rows %v; simulator created %d, adopted %d", code, states, st.Created, st.Adopted)
	if states["done"]+states["ambiguous"] != rows || st.Created < states["done"] {
		t.Errorf("rows %v, %d created", states, st.Created)
	}
	if states["ambiguous"] > 20 {
		t.Errorf("%d rows ambiguous after 4 kills: the window between intent and answer is too wide", states["ambiguous"])
	}
}

// TestRunStoppedBySIGTERM stops `run` with SIGTERM mid-batch: it must say
// where the batch stands and how to resume, and the same command must then
// finish the batch without creating any row again.
func TestRunStoppedBySIGTERM(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const rows = 80
	key := "term-" + randomHex(8)
	simURL := startSimProcess(t, key, "--time-scale", "20")
	env := []string{
		"SEEDANCE_API_KEY=" + key, "SEEDANCE_BASE_URL=" + simURL, "REDIS_URL=",
		"SEEDBATCH_WORKER_TIME_SCALE=20", "SEEDBATCH_OUT_DIR=" + t.TempDir(),
		"SEEDBATCH_LIMITS_MAX_IN_FLIGHT=30", "SEEDBATCH_WORKER_SHUTDOWN_TIMEOUT=5s",
	}
	path := writeCSV(t, "term", rows)
	p := start(t, env, "run", "--batch", "t", path)
	testwait.Until(t, 30*time.Second, func() error { // mid-batch
		if st := simStats(t, simURL); st.Created < rows/4 {
			return fmt.Errorf("%d of %d rows created", st.Created, rows)
		}
		return nil
	})
	err := p.stop(t, 20*time.Second)
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	out := p.stderr.String()
	if code != exitRows || !strings.Contains(out, "run the same command again to resume") {
		t.Fatalf("after SIGTERM: exit %d (%v)\n%s", code, err, tail(out, 2000))
	}
	before := simStats(t, simURL).Created
	if before == 0 || before == rows {
		t.Fatalf("%d of %d rows created before SIGTERM: the stop was not mid-batch", before, rows)
	}
	code, out = cli(t, env, "run", "--batch", "t", path)
	st := simStats(t, simURL)
	if code != 0 || st.Created != rows || st.MaxCreatesPerPrompt() != 1 {
		t.Errorf("resumed run: exit %d, %d created (%d before the stop), max %d per prompt\n%s", code, st.Created, before, st.MaxCreatesPerPrompt(), tail(out, 2000))
	}
}

// TestDashboardCommand starts `seedbatch dashboard` as a user would and
// checks its health, its token and its refusal of an open address.
func TestDashboardCommand(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	env := []string{"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix}
	code, out := cli(t, append(env, "SEEDBATCH_DASHBOARD_LISTEN=0.0.0.0:0"), "dashboard")
	if code != exitUsage || !strings.Contains(out, "dashboard.listen") {
		t.Errorf("an open address without credentials: exit %d\n%s", code, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := start(t, append(env, "SEEDBATCH_DASHBOARD_LISTEN="+addr, "SEEDBATCH_DASHBOARD_TOKEN=let-me-in",
		"SEEDBATCH_DASHBOARD_ALLOWED_HOSTS=dash.example.test,other.example.test"), "dashboard")
	get := func(path, token string, host ...string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if len(host) > 0 {
			req.Host = host[0]
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testwait.Until(t, 20*time.Second, func() error {
		if code, body := get("/healthz", ""); code != 200 {
			return fmt.Errorf("dashboard not started: /healthz answers %d %s", code, body)
		}
		return nil
	})
	for _, tt := range []struct {
		path, token string
		code        int
		want        string
	}{
		{"/readyz", "", 200, ""},
		{"/", "", 401, ""},
		{"/", "wrong", 401, ""},
		{"/", "let-me-in", 200, "seedbatch"},
		{"/metrics", "let-me-in", 200, "seedbatch_redis_up 1"},
	} {
		code, body := get(tt.path, tt.token)
		if code != tt.code || !strings.Contains(body, tt.want) || strings.Contains(body, "let-me-in") {
			t.Errorf("GET %s (token %q): %d, want %d with %q", tt.path, tt.token, code, tt.code, tt.want)
		}
	}
	// Host names: the listen address's, the allowed ones, no other.
	for _, tt := range []struct {
		host string
		code int
	}{
		{"localhost", 200},
		{"dash.example.test:8443", 200},
		{"OTHER.example.test", 200},
		{"rebind.attacker.example", 421},
	} {
		if code, body := get("/", "let-me-in", tt.host); code != tt.code {
			t.Errorf("GET / with Host %s: %d, want %d: %s", tt.host, code, tt.code, body)
		}
	}
	if code, _ := get("/healthz", "", "rebind.attacker.example"); code != 200 {
		t.Errorf("/healthz with any Host: %d, want 200", code)
	}
	if err := p.stop(t, 10*time.Second); err != nil {
		t.Errorf("dashboard exit after SIGTERM: %v", err)
	}
}

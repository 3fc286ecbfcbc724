package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/internal/redistest"
)

// TestRecoverAfterRedisLostItsData runs a batch on a Redis server, kills it
// mid-way and deletes every key of the namespace and of the account's
// limits (Redis restarted empty), and rebuilds the batch with seedbatch
// recover from the file and the run's journal: running it again then
// finishes it with no prompt created twice and every row terminal. Before
// the recover, running it again is refused, since it would start over.
func TestRecoverAfterRedisLostItsData(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const rows = 40
	key := "recover-" + randomHex(8)
	simURL := startSimProcess(t, key, "--time-scale", "40")
	rs := redistest.New(t)
	t.Cleanup(func() { deleteAccountKeys(t, rs, key) })
	env := []string{
		"SEEDANCE_API_KEY=" + key, "SEEDANCE_BASE_URL=" + simURL, "REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix,
		"SEEDBATCH_WORKER_TIME_SCALE=40", "SEEDBATCH_OUT_DIR=" + t.TempDir(),
		"SEEDBATCH_WORKER_SUBMIT_CONCURRENCY=4", "SEEDBATCH_LIMITS_MAX_IN_FLIGHT=10", "SEEDBATCH_WORKER_SHUTDOWN_TIMEOUT=2s",
	}
	path := writeCSV(t, "lost", rows)
	p := start(t, env, "run", "--batch", "l", path)
	waitFor(t, 30*time.Second, "12 creates", func() bool { return simStats(t, simURL).Created >= 12 })
	// The machine goes down with Redis, which comes back empty. (Deleting
	// keys one by one under a live writer would leave whatever it wrote
	// after the scan passed: not what a restart does.)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.done <- <-p.done
	flushNamespace(t, rs, key)
	before := simStats(t, simURL).Created
	t.Logf("Redis emptied with %d tasks created", before)

	if code, out := cli(t, env, "run", "--batch", "l", path); code != exitUsage || !strings.Contains(out, "seedbatch recover") {
		t.Fatalf("run again before recover: exit %d, want 2 pointing at recover\n%s", code, tail(out, 2000))
	}
	code, out := cli(t, env, "recover", "--batch", "l", path)
	if code != 0 || !strings.Contains(out, "batch l recovered from") {
		t.Fatalf("recover: exit %d\n%s", code, out)
	}
	t.Logf("recover: %s", out)
	if simStats(t, simURL).Created != before {
		t.Errorf("recover created tasks")
	}
	if code, out := cli(t, env, "recover", "--batch", "l", path); code != exitUsage || !strings.Contains(out, "nothing to recover") {
		t.Errorf("recover twice: exit %d\n%s", code, out)
	}
	code, out = runWithin(t, env, time.Minute, "run", "--batch", "l", path)
	st := simStats(t, simURL)
	t.Logf("finished: exit %d, %d created in all", code, st.Created)
	if n := st.MaxCreatesPerPrompt(); n > 1 {
		t.Fatalf("a prompt was created %d times", n)
	}
	var dir string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "SEEDBATCH_OUT_DIR="); ok {
			dir = v
		}
	}
	states := checkCrashResults(t, filepath.Join(dir, "l", "results.csv"), rows, out)
	if states["done"] < rows/2 || states["done"] > st.Created {
		t.Errorf("rows %v, %d created", states, st.Created)
	}
	checkLeases(t, rs, key, "l", states["ambiguous"])
}

// flushNamespace deletes every key of a test's namespace, its asynq queues
// and its account's limits, as a Redis restarted without its data would
// have lost them.
func flushNamespace(t *testing.T, rs *redistest.Server, key string) {
	t.Helper()
	ctx := context.Background()
	for _, pat := range []string{rs.Prefix + "*", "*{" + rs.Prefix + "-*", accountKeys(key)} {
		iter := rs.Client.Scan(ctx, 0, pat, 1000).Iterator()
		for iter.Next(ctx) {
			if err := rs.Client.Del(ctx, iter.Val()).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// runWithin runs the binary to its end, failing the test with the end of
// its output if it takes longer than within.
func runWithin(t *testing.T, env []string, within time.Duration, args ...string) (int, string) {
	t.Helper()
	p := start(t, env, args...)
	select {
	case err := <-p.done:
		p.done <- err
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, p.stderr.String()
	case <-time.After(within):
		t.Fatalf("%s did not end within %v:\n%s", strings.Join(args, " "), within, tail(p.stderr.String(), 3000))
		return 0, ""
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/internal/redistest"
)

// runMainEnviron runs the command in-process with env as its whole
// environment, listed too (so that unknown variables are reported).
func runMainEnviron(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Environ: func() []string { return environ }}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code := m.Run(ctx, args)
	return code, stdout.String(), stderr.String()
}

// TestDryRunPrices sets prices the ways the README names them, and checks
// that seconds without a price are named rather than left out in silence.
func TestDryRunPrices(t *testing.T) {
	t.Parallel()
	path := writeCSV(t, "priced", 4) // two rows of 4 s at 480p, two at 720p
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   []string
		stderr string
	}{
		{"--set one price", nil, []string{"--set", "prices.720p=0.05"},
			[]string{"720p        8 video seconds        0.40", "480p        8 video seconds  (no price: set prices.480p)",
				"total      16 video seconds        0.40 estimated, not counting the 8 seconds at 480p, which have no price"}, ""},
		{"environment, one price", map[string]string{"SEEDBATCH_PRICES_720P": "0.05"}, nil,
			[]string{"0.40 estimated, not counting the 8 seconds at 480p"}, ""},
		{"environment, both prices", map[string]string{"SEEDBATCH_PRICES_720P": "0.05", "SEEDBATCH_PRICES_480P": "0.02"}, nil,
			[]string{"total      16 video seconds        0.56 estimated\n"}, ""},
		{"a misspelt variable", map[string]string{"SEEDBATCH_PRICE_720P": "0.05"}, nil,
			[]string{"total      16 video seconds\n"}, "SEEDBATCH_PRICE_720P"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SEEDBATCH_OUT_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			args := append([]string{"run", "--dry-run"}, tt.args...)
			code, stdout, stderr := runMainEnviron(t, env, append(args, path)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			flat := strings.Join(strings.Fields(stdout), " ")
			for _, w := range tt.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) || (strings.HasSuffix(w, "\n") && !strings.Contains(flat, strings.Join(strings.Fields(w), " ")+" dry run")) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if tt.stderr == "" && strings.Contains(stderr, "unknown_environment_variable") {
				t.Errorf("a known variable reported unknown:\n%s", stderr)
			}
			if tt.stderr != "" && (!strings.Contains(stderr, tt.stderr) || !strings.Contains(stderr, "did you mean SEEDBATCH_PRICES_720P?")) {
				t.Errorf("stderr does not warn about %s:\n%s", tt.stderr, stderr)
			}
		})
	}
}

// TestInputMessages runs the binary on the bad input a new user gives
// run, enqueue, results, retry and cancel: each message names the file or
// the batch and the fix, in the user's words, and exits 2.
func TestInputMessages(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "prompts.csv")
	if err := os.WriteFile(good, []byte("prompt\na scene that works\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "locked.csv")
	if err := os.WriteFile(unreadable, []byte("prompt\na scene\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nonexistent.csv")
	env := []string{"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix, "SEEDBATCH_OUT_DIR=" + filepath.Join(dir, "out"),
		"SEEDANCE_API_KEY="}
	if code, out := cli(t, env, "enqueue", "--batch", "known", good); code != exitOK {
		t.Fatalf("enqueue: exit %d\n%s", code, out)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"run, missing file", []string{"run", missing}, missing + ": no such file: check the name"},
		{"run, misspelt file", []string{"run", filepath.Join(dir, "prompt.csv")}, "no such file; did you mean " + good + "?"},
		{"run, missing directory", []string{"run", filepath.Join(dir, "nope", "x.csv")}, "(the directory " + filepath.Join(dir, "nope") + " does not exist either)"},
		{"run, a file for a directory", []string{"run", filepath.Join(good, "x.csv")}, "a part of the path before its last is a file, not a directory"},
		{"run, a directory", []string{"run", dir}, dir + " is a directory, not a CSV file: name a .csv file such as "},
		{"run, unreadable file", []string{"run", unreadable}, unreadable + ": permission denied: this user"},
		{"run, no file", []string{"run"}, "run: name the CSV file (seedbatch run FILE.csv)"},
		{"run, two files", []string{"run", good, good}, "run: want one CSV file, got 2"},
		{"run, bad batch id", []string{"run", "--batch", "my batch", good}, `--batch "my batch": a batch id is 1-64 letters`},
		{"run, bad budget", []string{"run", "--budget", "ten", good}, `--budget "ten": want a whole number`},
		{"run, bad request type", []string{"run", "--request-type", "sync", good}, `--request-type "sync": want async`},
		{"run, bad redis url", []string{"run", "--redis", "localhost:6379", good}, `--redis "localhost:6379": must start with redis://`},
		{"enqueue, missing file", []string{"enqueue", missing}, missing + ": no such file"},
		{"enqueue, a directory", []string{"enqueue", dir}, "is a directory, not a CSV file"},
		{"enqueue, bad flag value", []string{"enqueue", "--strict=maybe", good}, `--strict "maybe": want true or false`},
		{"results, unknown batch", []string{"results", "nope"}, "no batch nope in the Redis at " + rs.URL + " (key prefix " + rs.Prefix + "): seedbatch status lists the batches"},
		{"results, a file name", []string{"results", "prompts.csv"}, "it takes a batch id, which seedbatch run and enqueue print, not a file name"},
		{"results, bad batch id", []string{"results", "a/b"}, `"a/b" is not a batch id`},
		{"results, no batch", []string{"results"}, "results: name the batch id (seedbatch results BATCH)"},
		{"results, bad format", []string{"results", "--format", "xlsx", "nope"}, `--format "xlsx": want csv or jsonl`},
		{"results, --out in a missing directory", []string{"results", "known", "--out", filepath.Join(dir, "nope", "r.csv")},
			"--out " + filepath.Join(dir, "nope", "r.csv") + ": the directory " + filepath.Join(dir, "nope") + " does not exist"},
		{"results, --out a directory", []string{"results", "known", "--out", dir}, "--out " + dir + " is a directory: name a file in it"},
		{"retry, unknown batch", []string{"retry", "nope", "--state", "failed"}, "no batch nope in the Redis at"},
		{"retry, no state", []string{"retry", "nope"}, "retry: say which rows to create again with --state ambiguous, failed or budget"},
		{"retry, bad state", []string{"retry", "nope", "--state", "done"}, `--state "done": want ambiguous, failed or budget`},
		{"cancel, unknown batch", []string{"cancel", "nope"}, "no batch nope in the Redis at"},
		{"cancel, two batches", []string{"cancel", "a", "b"}, "cancel: want one batch id, got 2: a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(tt.name, "unreadable") && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			code, stdout, stderr := cliStreams(t, env, tt.args...)
			last := strings.TrimSpace(stderr)
			if i := strings.LastIndex(last, "\n"); i >= 0 {
				last = last[i+1:]
			}
			if code != exitUsage || !strings.Contains(last, tt.want) {
				t.Errorf("exit %d, want %d with %q on the last line\nstdout:\n%s\nstderr:\n%s", code, exitUsage, tt.want, stdout, stderr)
			}
			for _, internal := range []string{"plan:", ": open ", "read batch", ": not found", "parse error", "flag -"} {
				if strings.Contains(last, internal) {
					t.Errorf("the message shows %q: %s", internal, last)
				}
			}
		})
	}
}

// resultsOf reads a results file into records keyed by column.
func resultsOf(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// TestRejectedRowsCanBeFixedInTheResults runs a file with two bad rows:
// the results name them with their cells as written, and the results
// file, once corrected, runs the two rows and skips the others.
func TestRejectedRowsCanBeFixedInTheResults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"SEEDBATCH_OUT_DIR": filepath.Join(dir, "out"), "SEEDBATCH_SIM_TIME_SCALE": "200"}
	path := filepath.Join(dir, "fix.csv")
	text := "id,prompt,duration,resolution\n" +
		"h1,a first good scene,4,720p\n" +
		"h9,ab,4,720p\n" +
		"h10,a scene of five seconds,5,480p\n" +
		",a row without an id, ten ,720p\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runMain(t, env, "run", "--batch", "fix", path)
	if code != exitRows {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitRows, stdout, stderr)
	}
	results := filepath.Join(dir, "out", "fix", "results.csv")
	rows := resultsOf(t, results)
	want := []struct{ id, prompt, duration, state string }{
		{"h1", "a first good scene", "4", "done"},
		{"h9", "ab", "4", "rejected"},
		{"h10", "a scene of five seconds", "5", "rejected"},
		{"row-5", "a row without an id", " ten ", "rejected"},
	}
	for i, w := range want {
		r := rows[i]
		if r["id"] != w.id || r["prompt"] != w.prompt || r["duration"] != w.duration || r["state"] != w.state {
			t.Errorf("row %d: id %q prompt %q duration %q state %q, want %+v", i, r["id"], r["prompt"], r["duration"], r["state"], w)
		}
	}

	// Corrected in place, the results file is a new input: the done row is
	// skipped, the three others run.
	b, _ := os.ReadFile(results)
	fixed := strings.NewReplacer("h9,,ab,", "h9,,a better scene,", ",5,480p,", ",8,480p,", `" ten "`, "12").Replace(string(b))
	again := filepath.Join(dir, "fixed.csv")
	if err := os.WriteFile(again, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runMain(t, env, "run", "--batch", "fixed", again)
	if code != exitOK || !strings.Contains(stderr, "1 rows already ran") || !strings.Contains(stdout, "done 3") {
		t.Fatalf("the corrected results: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, r := range resultsOf(t, filepath.Join(dir, "out", "fixed", "results.csv")) {
		if r["state"] != "done" || r["file_check"] != "ok" {
			t.Errorf("row %s: %s, file_check %q", r["id"], r["state"], r["file_check"])
		}
	}
}

// TestSpreadsheetExportsFromTheCommandLine runs files as spreadsheets
// export them: UTF-16 with tabs is read; Windows-1252 and a header alone
// are refused once, before anything is enqueued.
func TestSpreadsheetExportsFromTheCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	utf16 := []byte{0xFF, 0xFE}
	for _, r := range "id\tprompt\r\nc1\tun café à l'aube\r\nc2\tune deuxième scène\r\n" {
		utf16 = append(utf16, byte(r), byte(r>>8))
	}
	tests := []struct {
		name, file string
		code       int
		want       string
	}{
		{"utf-16, tab-separated", write("unicode.txt.csv", string(utf16)), exitOK, "done 2"},
		{"windows-1252", write("cp1252.csv", "id,prompt\na,un caf\xe9 \xe0 l'aube\nb,une deuxi\xe8me sc\xe8ne\nc,une autre sc\xe8ne\n"),
			exitUsage, "line 2: the file is not UTF-8"},
		{"header only", write("empty.csv", "id,prompt\r\n"), exitUsage, "no rows: the file has a header line but no data rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SEEDBATCH_OUT_DIR": filepath.Join(dir, "out-"+tt.name), "SEEDBATCH_SIM_TIME_SCALE": "200"}
			code, stdout, stderr := runMain(t, env, "run", tt.file)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("exit %d, want %d with %q\n%s\n%s", code, tt.code, tt.want, stdout, stderr)
			}
			if tt.code == exitUsage {
				if n := strings.Count(stderr, "seedbatch:"); n != 1 || strings.Contains(stderr, "rows (") {
					t.Errorf("want one error and nothing enqueued:\n%s", stderr)
				}
				if tt.name == "windows-1252" && !strings.Contains(stderr, "save it as UTF-8") {
					t.Errorf("no fix given:\n%s", stderr)
				}
			}
		})
	}
}

// checkFilesMatch checks that every row of a results file describes the
// file next to it: its size and sha256, and a file_check of ok.
func checkFilesMatch(t *testing.T, outDir, results string) {
	t.Helper()
	rows := resultsOf(t, results)
	if len(rows) == 0 {
		t.Fatalf("%s has no rows", results)
	}
	for _, r := range rows {
		b, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(r["files"])))
		if err != nil {
			t.Errorf("row %s: %v", r["id"], err)
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != r["sha256"] || fmt.Sprint(len(b)) != r["sizes"] || r["file_check"] != "ok" {
			t.Errorf("row %s: results say %s bytes, sha256 %.12s, file_check %q; the file is %d bytes, sha256 %.12x",
				r["id"], r["sizes"], r["sha256"], r["file_check"], len(b), sum)
		}
	}
}

// TestRunsOnAnotherStore runs the example without Redis, with --redis,
// and without Redis again, in one directory: no run replays the journal of
// a run on another store over the videos a later run wrote, and each
// results file describes the files on disk.
func TestRunsOnAnotherStore(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	out := filepath.Join(t.TempDir(), "out")
	embedded := map[string]string{"SEEDBATCH_OUT_DIR": out, "SEEDBATCH_SIM_TIME_SCALE": "200"}
	shared := map[string]string{"REDIS_URL": rs.URL, "SEEDBATCH_REDIS_PREFIX": rs.Prefix}
	for k, v := range embedded {
		shared[k] = v
	}
	example := filepath.Join("..", "..", "examples", "prompts.csv")
	results := filepath.Join(out, "ex", "results.csv")
	steps := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"embedded", embedded, ""},
		{"--redis", shared, "batch ex ran before on an embedded Redis with the simulator; this run starts it over on the Redis at"},
		{"embedded again", embedded, "batch ex ran before on the Redis at " + rs.URL + " (key prefix " + rs.Prefix + "-sim) with the simulator; " +
			"this run starts it over on an embedded Redis"},
	}
	for _, st := range steps {
		code, stdout, stderr := runMain(t, st.env, "run", "--batch", "ex", example)
		if code != exitOK || !strings.Contains(stderr, st.want) || !strings.Contains(stdout, "done 12") {
			t.Fatalf("%s: exit %d, want 0 and %q\n%s\n%s", st.name, code, st.want, stdout, stderr)
		}
		if strings.Contains(stderr, "resuming:") {
			t.Errorf("%s: a journal was replayed:\n%s", st.name, stderr)
		}
		checkFilesMatch(t, out, results)
	}
	retired, _ := filepath.Glob(filepath.Join(out, "ex", ".run", "retired-*", "journal.jsonl"))
	if len(retired) != 2 {
		// The embedded run's journal, and the --redis run's copy of its creates.
		t.Errorf("retired journals: %v, want the first two runs'", retired)
	}
}

// TestRunsOnAnotherStoreWithAKey checks that a batch run with an API key
// is not started over on another store, which would create and bill every
// row again, unless asked with --allow-duplicates.
func TestRunsOnAnotherStoreWithAKey(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	key := "switch-" + randomHex(8)
	simURL := startSimProcess(t, key, "--time-scale", "200")
	out := filepath.Join(t.TempDir(), "out")
	embedded := map[string]string{"SEEDBATCH_OUT_DIR": out, "SEEDANCE_API_KEY": key, "SEEDANCE_BASE_URL": simURL,
		"SEEDBATCH_WORKER_TIME_SCALE": "200"}
	shared := map[string]string{"REDIS_URL": rs.URL, "SEEDBATCH_REDIS_PREFIX": rs.Prefix}
	for k, v := range embedded {
		shared[k] = v
	}
	path := writeCSV(t, "keyed", 4)
	if code, stdout, stderr := runMain(t, embedded, "run", "--batch", "k", path); code != exitOK {
		t.Fatalf("first run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	results := filepath.Join(out, "k", "results.csv")
	before, _ := os.ReadFile(results)
	code, _, stderr := runMain(t, shared, "run", "--batch", "k", path)
	if code != exitUsage || !strings.Contains(stderr, "batch k ran before on an embedded Redis with an API key") ||
		!strings.Contains(stderr, "To resume it, run it again without --redis or REDIS_URL and with the same SEEDANCE_API_KEY") ||
		!strings.Contains(stderr, "--allow-duplicates") {
		t.Fatalf("--redis after an embedded run with a key: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(results); string(after) != string(before) {
		t.Errorf("the refused run changed the results")
	}
	if st := simStats(t, simURL); st.Created != 4 {
		t.Errorf("%d tasks created, want the first run's 4", st.Created)
	}
	if code, stdout, stderr := runMain(t, shared, "run", "--batch", "k", "--allow-duplicates", path); code != exitOK ||
		!strings.Contains(stderr, "kept in") {
		t.Fatalf("--allow-duplicates: exit %d\n%s\n%s", code, stdout, stderr)
	}
	checkFilesMatch(t, out, results)
}

// TestResultsReportAFileWrittenOver runs a batch, writes over one of its
// videos and runs it again: the results say which file is not the one
// recorded, and the run exits 1.
func TestResultsReportAFileWrittenOver(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "out")
	env := map[string]string{"SEEDBATCH_OUT_DIR": out, "SEEDBATCH_SIM_TIME_SCALE": "200"}
	path := writeCSV(t, "over", 3)
	if code, stdout, stderr := runMain(t, env, "run", "--batch", "over", path); code != exitOK {
		t.Fatalf("first run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	results := filepath.Join(out, "over", "results.csv")
	video := resultsOf(t, results)[1]["files"]
	if err := os.WriteFile(filepath.Join(out, filepath.FromSlash(video)), []byte("another video"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMain(t, env, "run", "--batch", "over", path)
	if code != exitRows || !strings.Contains(stderr, "1 of 3 rows' files on disk are not the ones recorded") {
		t.Fatalf("exit %d, want %d\n%s", code, exitRows, stderr)
	}
	rows := resultsOf(t, results)
	if !strings.HasPrefix(rows[1]["file_check"], video+" is not the file recorded: 13 bytes") || rows[0]["file_check"] != "ok" {
		t.Errorf("file_check: %q, %q", rows[0]["file_check"], rows[1]["file_check"])
	}
}

// TestSimulatedRunOnRedisIsFound runs the example on a shared Redis
// without an API key: run says where the batch lives, status lists it apart
// from real batches, results finds it and says it is simulated.
func TestSimulatedRunOnRedisIsFound(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	env := []string{"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix, "SEEDANCE_API_KEY=",
		"SEEDBATCH_OUT_DIR=" + t.TempDir(), "SEEDBATCH_SIM_TIME_SCALE=200"}
	real := writeCSV(t, "real", 2)
	if code, out := cli(t, env, "enqueue", "--batch", "real-one", real); code != exitOK {
		t.Fatalf("enqueue: exit %d\n%s", code, out)
	}
	example := filepath.Join("..", "..", "examples", "prompts.csv")
	code, out := cli(t, env, "run", "--batch", "tryout", example)
	where := "batch tryout is simulated: it is kept apart from real batches, under the key prefix " + rs.Prefix + "-sim"
	if code != exitOK || !strings.Contains(out, where) {
		t.Fatalf("run: exit %d, want it to say %q\n%s", code, where, out)
	}

	code, stdout, stderr := cliStreams(t, env, "status")
	head := "simulated batches (run without an API key: placeholder videos, nothing billed; key prefix " + rs.Prefix + "-sim):"
	i, j, k := strings.Index(stdout, "real-one"), strings.Index(stdout, head), strings.Index(stdout, "tryout")
	if code != exitOK || i < 0 || j < 0 || k < j || i > j {
		t.Errorf("status: exit %d: want real-one, then %q, then tryout\n%s%s", code, head, stdout, stderr)
	}
	code, stdout, _ = cliStreams(t, env, "status", "tryout")
	if code != exitOK || !strings.Contains(stdout, head) || !regexp.MustCompile(`(?m)^tryout\s+12\s`).MatchString(stdout) {
		t.Errorf("status tryout: exit %d\n%s", code, stdout)
	}

	code, stdout, stderr = cliStreams(t, env, "results", "tryout")
	recs, _ := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if code != exitOK || !strings.Contains(stderr, "batch tryout is simulated") || len(recs) != 13 {
		t.Errorf("results tryout: exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	code, _, stderr = cliStreams(t, env, "cancel", "tryout")
	if code != exitUsage || !strings.Contains(stderr, "batch tryout is a simulated batch") || !strings.Contains(stderr, "--set redis.prefix="+rs.Prefix+"-sim") {
		t.Errorf("cancel tryout: exit %d\n%s", code, stderr)
	}
}

func TestRunStoreHow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		store runStore
		want  string
	}{
		{runStore{}, "without --redis or REDIS_URL and with the same SEEDANCE_API_KEY"},
		{runStore{Simulated: true}, "without --redis or REDIS_URL and without SEEDANCE_API_KEY"},
		{runStore{Redis: "redis://h:6379/0", Prefix: "seedbatch"}, "with --redis redis://h:6379/0 and with the same SEEDANCE_API_KEY"},
		{runStore{Redis: "redis://h:6379/0", Prefix: "seedbatch-sim", Simulated: true}, "with --redis redis://h:6379/0 and without SEEDANCE_API_KEY"},
		{runStore{Redis: "redis://h:6379/0", Prefix: "team-sim", Simulated: true},
			"with --redis redis://h:6379/0 and --set redis.prefix=team and without SEEDANCE_API_KEY"},
	}
	for _, tt := range tests {
		if got := tt.store.how(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.store, got, tt.want)
		}
	}
}

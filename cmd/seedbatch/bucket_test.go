package main

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/s3test"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestRunToBucket runs a batch with out_dir on an S3 server: every video
// ends in the bucket with the size and sha256 the results record, the
// results link to each object with a presigned URL, and results.csv is
// kept in state_dir and uploaded beside the videos.
func TestRunToBucket(t *testing.T) {
	const rows = 36
	srv := s3test.New(t, "videos")
	dir := t.TempDir()
	var in strings.Builder
	in.WriteString("id,prompt\n")
	for i := range rows {
		fmt.Fprintf(&in, "clip-%02d,a scene kept in a bucket number %d\n", i, i)
	}
	file := filepath.Join(dir, "bucket.csv")
	if err := os.WriteFile(file, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	env := map[string]string{"SEEDBATCH_OUT_DIR": srv.URL("videos", "runs"), "SEEDBATCH_STATE_DIR": state}
	code, stdout, stderr := runMain(t, env, "run", "--batch", "b1", file)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "results: "+filepath.Join(state, "b1", "results.csv")+" and s3://videos/runs/b1/results.csv") {
		t.Errorf("the summary does not name both results files:\n%s", stdout)
	}
	local, err := os.ReadFile(filepath.Join(state, "b1", "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if uploaded, ok := srv.Object("videos", "runs/b1/results.csv"); !ok || string(uploaded) != string(local) {
		t.Errorf("results.csv in the bucket (exists %v) differs from the local one", ok)
	}
	if _, err := os.Stat(filepath.Join(state, "b1", ".run", "journal.jsonl")); err != nil {
		t.Errorf("the journal is not in state_dir: %v", err)
	}
	records, err := csv.NewReader(strings.NewReader(string(local))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != rows+1 {
		t.Fatalf("results has %d records, want a header and %d rows", len(records), rows)
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	var want []string
	for _, r := range records[1:] {
		key := "runs/" + r[col["files"]]
		want = append(want, key)
		data, ok := srv.Object("videos", key)
		sum := sha256.Sum256(data)
		if r[col["state"]] != "done" || !ok || hex.EncodeToString(sum[:]) != r[col["sha256"]] ||
			fmt.Sprint(len(data)) != r[col["sizes"]] || r[col["file_check"]] != "ok" {
			t.Errorf("row %s: state %s, object %s exists %v with %d bytes, results say %s bytes, sha256 %.12s, check %q",
				r[col["id"]], r[col["state"]], key, ok, len(data), r[col["sizes"]], r[col["sha256"]], r[col["file_check"]])
			continue
		}
		link := r[col["file_urls"]]
		if !strings.HasPrefix(link, srv.Endpoint+"/videos/"+key+"?") || !strings.Contains(link, "X-Amz-Signature=") {
			t.Errorf("row %s: file_urls %q, want a presigned URL of %s", r[col["id"]], link, key)
			continue
		}
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != string(data) {
			t.Errorf("row %s: GET its link = %d, %d bytes", r[col["id"]], resp.StatusCode, len(got))
		}
	}
	want = append(want, "runs/b1/results.csv")
	slices.Sort(want)
	if got := srv.Keys("videos", "runs/"); !slices.Equal(got, want) {
		t.Errorf("bucket holds %v, want the videos and results.csv only", got)
	}
}

// TestResultsLinkObjects: seedbatch results, anywhere, links each video in
// the bucket with a presigned URL, and checks nothing.
func TestResultsLinkObjects(t *testing.T) {
	srv := s3test.New(t, "videos")
	rs := redistest.New(t)
	ctx := t.Context()
	store := batch.NewStore(rs.Client, rs.Prefix)
	if _, err := store.CreateBatch(ctx, batch.Meta{ID: "b2", Rows: 2}); err != nil {
		t.Fatal(err)
	}
	jobs := []batch.Job{
		{Batch: "b2", Row: 0, Line: 2, State: tasks.StateQueued, Spec: tasks.Spec{ID: "kept", Prompt: "a kept scene", Duration: 4}},
		{Batch: "b2", Row: 1, Line: 3, State: tasks.StateQueued, Spec: tasks.Spec{ID: "gone", Prompt: "a gone scene", Duration: 4}},
	}
	if _, err := store.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for row, id := range []string{"kept", "gone"} {
		f := batch.File{Path: "b2/" + id + ".mp4", Size: 5, SHA256: strings.Repeat("0", 64)}
		if _, err := store.Transition(ctx, "b2", row, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateDone,
			Files: []batch.File{f}}); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"REDIS_URL": rs.URL, "SEEDBATCH_REDIS_PREFIX": rs.Prefix, "SEEDBATCH_OUT_DIR": srv.URL("videos", "runs")}
	code, stdout, stderr := runMain(t, env, "results", "b2", "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("results:\n%s", stdout)
	}
	for i, id := range []string{"kept", "gone"} {
		prefix := `"file_urls":["` + srv.Endpoint + "/videos/runs/b2/" + id + ".mp4?"
		if !strings.Contains(lines[i], prefix) || !strings.Contains(lines[i], "X-Amz-Signature=") || strings.Contains(lines[i], "file_check") {
			t.Errorf("row %d: %s\nwant a presigned link to runs/b2/%s.mp4 and no file check", i, lines[i], id)
		}
	}
}

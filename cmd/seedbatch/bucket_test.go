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

	"github.com/seedbatch/seedbatch/internal/s3test"
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

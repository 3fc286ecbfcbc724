package batch_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/tasks"
)

// readResults parses a CSV results file into records keyed by column.
func readResults(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
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

// TestResultsOfRejectedRows checks that a rejected row keeps its id (or
// row-<line>) and its cells as written in the results, and that the results
// file, once corrected, can be run again.
func TestResultsOfRejectedRows(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	path := writeFile(t, "fix.csv", "id,prompt,duration,resolution\n"+
		"h1,a good prompt,4,720p\n"+
		"h9,ab,4,720p\n"+
		"h10,a fine scene,5,480p\n"+
		",no id and ten seconds, ten ,720p\n"+
		"h12,a \"quoted\" scene,4,720p\n"+
		"h13,a short row\n")
	plan, err := batch.PlanFile(path, batch.PlanOptions{BatchID: "fix"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, &fakeSubmitter{}, plan, batch.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := s.WriteResults(ctx, &out, "fix", batch.ResultsOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := readResults(t, out.Bytes())
	want := []struct{ id, prompt, duration, resolution, state string }{
		{"h1", "a good prompt", "4", "720p", "queued"},
		{"h9", "ab", "4", "720p", "rejected"},
		{"h10", "a fine scene", "5", "480p", "rejected"},
		{"row-5", "no id and ten seconds", " ten ", "720p", "rejected"},
		{"h12", `a "quoted" scene`, "4", "720p", "rejected"},
		{"h13", "a short row", "", "", "rejected"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), out.String())
	}
	for i, w := range want {
		r := rows[i]
		if r["id"] != w.id || r["prompt"] != w.prompt || r["duration"] != w.duration || r["resolution"] != w.resolution || r["state"] != w.state {
			t.Errorf("row %d: id %q prompt %q duration %q resolution %q state %q; want %+v", i, r["id"], r["prompt"], r["duration"], r["resolution"], r["state"], w)
		}
		if w.state == "rejected" && (r["fail_code"] != tasks.CodeInvalidRow || r["fail_msg"] == "") {
			t.Errorf("row %d: fail %q %q", i, r["fail_code"], r["fail_msg"])
		}
	}
	for _, h := range readHeader(t, out.Bytes()) {
		if !slices.Contains(tasks.Columns, h) && !slices.Contains(tasks.ResultColumns, h) {
			t.Errorf("results column %q is neither an input column nor a results column: the file could not be read again", h)
		}
	}

	// JSONL keeps the typed fields and the cells as written.
	out.Reset()
	if _, err := s.WriteResults(ctx, &out, "fix", batch.ResultsOptions{Format: batch.FormatJSONL}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var h10 batch.Result
	if err := json.Unmarshal([]byte(lines[2]), &h10); err != nil {
		t.Fatal(err)
	}
	if h10.ID != "h10" || h10.Prompt != "a fine scene" || h10.Duration != 5 || h10.Input["duration"] != "5" {
		t.Errorf("jsonl h10: %+v", h10)
	}

	// Corrected in the results file, the rejected rows run again; the row
	// that was queued is skipped.
	out.Reset()
	if _, err := s.WriteResults(ctx, &out, "fix", batch.ResultsOptions{}); err != nil {
		t.Fatal(err)
	}
	fixed := strings.NewReplacer(",ab,", ",a better prompt,", ",5,480p,", ",8,480p,", `," ten ",`, ",12,", `a ""quoted"" scene`, `a quoted scene`).Replace(out.String())
	fixed = strings.Replace(fixed, "a short row,,,,,,,,,rejected", "a short row,,4,720p,,,,,,rejected", 1)
	again := writeFile(t, "results.csv", fixed)
	plan2, err := batch.PlanFile(again, batch.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan2.Rows != 5 || plan2.Skipped != 1 || plan2.Invalid != 0 {
		t.Errorf("the corrected results: %d rows (%d bad: %v), %d skipped; want 5 good rows, 1 skipped\n%s", plan2.Rows, plan2.Invalid, plan2.Errors, plan2.Skipped, fixed)
	}
}

func readHeader(t *testing.T, b []byte) []string {
	t.Helper()
	h, err := csv.NewReader(bytes.NewReader(b)).Read()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestResultsCheckFiles checks that results written with FilesDir say
// whether each row's file on disk is the one recorded.
func TestResultsCheckFiles(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	dir := t.TempDir()
	seedFiles(t, s, dir)
	var out bytes.Buffer
	rep, err := s.WriteResults(ctx, &out, "b", batch.ResultsOptions{FilesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 4 || rep.Checked != 3 || rep.Mismatched != 2 {
		t.Errorf("report %+v, want 4 rows, 3 checked, 2 mismatched", rep)
	}
	rows := readResults(t, out.Bytes())
	for i, want := range []string{"ok", "b/changed.mp4 is not the file recorded: 19 bytes with sha256", "b/gone.mp4 is missing", ""} {
		if got := rows[i]["file_check"]; (want == "" && got != "") || !strings.HasPrefix(got, want) {
			t.Errorf("row %d: file_check %q, want %q", i, got, want)
		}
		if got := rows[i]["file_urls"]; got != "" {
			t.Errorf("row %d: file_urls %q for files in a directory, want none", i, got)
		}
	}
	// Without FilesDir nothing is checked.
	out.Reset()
	if rep, _ := s.WriteResults(ctx, &out, "b", batch.ResultsOptions{}); rep.Checked != 0 || readResults(t, out.Bytes())[1]["file_check"] != "" {
		t.Errorf("checked without FilesDir: %+v", rep)
	}
}

// TestResultsCheckObjects: with the files in a bucket, each row links to
// its objects, and with CheckObjects says whether each is the one recorded.
func TestResultsCheckObjects(t *testing.T) {
	s, ctx := setup(t)
	dir := t.TempDir()
	seedFiles(t, s, dir)
	bucket, err := objstore.Open(ctx, "file://"+filepath.ToSlash(dir)+"?metadata=skip")
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	var out bytes.Buffer
	rep, err := s.WriteResults(ctx, &out, "b", batch.ResultsOptions{Objects: bucket, CheckObjects: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 4 || rep.Checked != 3 || rep.Mismatched != 2 {
		t.Errorf("report %+v, want 4 rows, 3 checked, 2 mismatched", rep)
	}
	rows := readResults(t, out.Bytes())
	base := "file://" + filepath.ToSlash(dir) + "/"
	for i, want := range []struct{ check, link string }{
		{"ok", "b/same.mp4"}, {"b/changed.mp4 is not the file recorded: 19 bytes with sha256", "b/changed.mp4"},
		{"b/gone.mp4 is missing", "b/gone.mp4"}, {"", ""},
	} {
		if got := rows[i]["file_check"]; (want.check == "" && got != "") || !strings.Contains(got, want.check) {
			t.Errorf("row %d: file_check %q, want %q", i, got, want.check)
		}
		if got := rows[i]["file_urls"]; (want.link == "" && got != "") || (want.link != "" && got != base+want.link) {
			t.Errorf("row %d: file_urls %q, want %q", i, got, base+want.link)
		}
	}
	// Links without checks, as seedbatch results writes them.
	out.Reset()
	rep, err = s.WriteResults(ctx, &out, "b", batch.ResultsOptions{Format: batch.FormatJSONL, Objects: bucket})
	if err != nil || rep.Checked != 0 || !strings.Contains(out.String(), `"file_urls":["`+base+`b/same.mp4"]`) {
		t.Errorf("JSONL with links: %+v, %v\n%s", rep, err, out.String())
	}
}

// seedFiles records batch b of 4 rows, 3 of them done with a file under
// dir: the first as recorded, the second written over since, the third
// gone.
func seedFiles(t *testing.T, s *batch.Store, dir string) {
	t.Helper()
	ctx := t.Context()
	write := func(name, content string) batch.File {
		if err := os.MkdirAll(filepath.Join(dir, "b"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "b", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		return batch.File{Path: "b/" + name, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	}
	same := write("same.mp4", "video one")
	changed := write("changed.mp4", "video two")
	gone := write("gone.mp4", "video three")
	write("changed.mp4", "another run's video")
	os.Remove(filepath.Join(dir, "b", "gone.mp4"))
	if _, err := s.CreateBatch(ctx, batch.Meta{ID: "b", Rows: 4}); err != nil {
		t.Fatal(err)
	}
	var jobs []batch.Job
	for i := range 4 {
		jobs = append(jobs, batch.Job{Batch: "b", Row: i, Line: i + 2, Spec: spec("a scene " + string(rune('a'+i))), State: tasks.StateQueued})
	}
	if _, err := s.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for row, f := range []batch.File{same, changed, gone} {
		if _, err := s.Transition(ctx, "b", row, batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateDone, Files: []batch.File{f}}); err != nil {
			t.Fatal(err)
		}
	}
}

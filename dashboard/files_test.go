package dashboard

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/s3test"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/tasks"
)

func TestFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, withToken)
	b.seed(t, "b1", 20)
	cases := []struct {
		name, method, path string
		hdr                http.Header
		code               int
		body               string
	}{
		{"a file", "GET", "/files/b1/3/0", bearer(), 200, "video b1/clip-0003.mp4"},
		{"head", "HEAD", "/files/b1/3/0", bearer(), 200, ""},
		{"needs credentials", "GET", "/files/b1/3/0", nil, 401, ""},
		{"the old form", "GET", "/files/b1/clip-0003.mp4", bearer(), 404, ""},
		{"past the row's files", "GET", "/files/b1/3/1", bearer(), 404, ""},
		{"a row without files", "GET", "/files/b1/12/0", bearer(), 404, ""},
		{"a row past the batch", "GET", "/files/b1/20/0", bearer(), 404, ""},
		{"an unknown batch", "GET", "/files/nope/3/0", bearer(), 404, ""},
		{"not a batch id", "GET", "/files/b1%7D/3/0", bearer(), 404, ""},
		{"negative row", "GET", "/files/b1/-1/0", bearer(), 404, ""},
		{"row with a sign", "GET", "/files/b1/+3/0", bearer(), 404, ""},
		{"row with a leading zero", "GET", "/files/b1/03/0", bearer(), 404, ""},
		{"index with a leading zero", "GET", "/files/b1/3/00", bearer(), 404, ""},
		{"a name for an index", "GET", "/files/b1/3/clip-0003.mp4", bearer(), 404, ""},
		{"one segment more", "GET", "/files/b1/3/0/x", bearer(), 404, ""},
		{"directory", "GET", "/files/b1/", bearer(), 404, ""},
		{"root", "GET", "/files/", bearer(), 404, ""},
		{"encoded traversal", "GET", "/files/b1/%2e%2e/%2e%2e/etc/passwd", bearer(), 404, ""},
		{"post", "POST", "/files/b1/3/0", bearer(), 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := b.do(t, tc.method, tc.path, nil, tc.hdr)
			if w.Code != tc.code {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, w.Code, tc.code)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body = %q, want %q", w.Body, tc.body)
			}
			h := w.Header()
			if tc.code == 200 && (!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") || h.Get("X-Content-Type-Options") != "nosniff") {
				t.Errorf("file served without its headers: %v", h)
			}
		})
	}
}

// TestFilesServeOnlyRecordedVideos fills a batch's directory with what
// run and the workers leave there, recorded videos among them, then asks
// for every file in the output directory under every URL form: only the
// videos recorded on job rows may ever be served.
func TestFilesServeOnlyRecordedVideos(t *testing.T) {
	t.Parallel()
	b := setup(t, nil) // no credentials: the dashboard is open to read
	ctx := t.Context()
	const id = "b1"
	dir := filepath.Join(b.outDir, id)
	outside := filepath.Join(t.TempDir(), "outside.mp4")
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(b.outDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Recorded videos, by row.
	recorded := map[int][]string{
		0: {id + "/clip-a.mp4"},
		1: {id + "/clip-b.mp4", id + "/clip-b-2.mp4"},
	}
	for _, files := range recorded {
		for _, p := range files {
			write(p, "VIDEO "+p)
		}
	}
	// Everything else: run's private files (old and new places), results,
	// a video no row records, another batch's directory, a symbolic link.
	for _, p := range []string{
		id + "/results.csv", id + "/journal.jsonl", id + "/callback.secret", id + "/sim.addr", id + "/callback.addr",
		id + "/.run/journal.jsonl", id + "/.run/callback.secret", id + "/.run/lock", id + "/.run/sim.addr",
		id + "/other.mp4", id + "/.tmp-clip-c.mp4", "b2/clip-a.mp4", "results.csv", ".secret",
	} {
		write(p, "PRIVATE "+p)
	}
	if err := os.WriteFile(outside, []byte("PRIVATE outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.mp4")); err != nil {
		t.Fatal(err)
	}

	// Rows: 0 and 1 done with their videos; 2 failed; 3 to 6 done with
	// records no download makes, which must not be served either: run's
	// secret by a dot path, a path leading out, a symbolic link out, a
	// missing file.
	if _, err := b.store.CreateBatch(ctx, batch.Meta{ID: id, Source: "p.csv", Rows: 7, Created: time.Now(), RequestType: "async"}); err != nil {
		t.Fatal(err)
	}
	jobs := make([]batch.Job, 7)
	for i := range jobs {
		jobs[i] = batch.Job{Batch: id, Row: i, Line: i + 2, State: tasks.StateQueued, Spec: tasks.Spec{ID: fmt.Sprintf("r%d", i), Prompt: "a cat", Duration: 4}}
	}
	if _, err := b.store.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	bad := map[int]string{3: id + "/.run/callback.secret", 4: "../" + filepath.Base(outside), 5: id + "/link.mp4", 6: id + "/missing.mp4"}
	for row := range jobs {
		c := batch.Change{From: []tasks.State{tasks.StateQueued}, To: tasks.StateDone, TaskID: fmt.Sprintf("task-%d", row)}
		for _, p := range recorded[row] {
			c.Files = append(c.Files, batch.File{Path: p, Size: int64(len("VIDEO " + p))})
		}
		if p, ok := bad[row]; ok {
			c.Files = []batch.File{{Path: p, Size: 1}}
		}
		if row == 2 {
			c.To, c.FailCode = tasks.StateFailed, "GENERATION_FAILED"
		}
		if _, err := b.store.Transition(ctx, id, row, c); err != nil {
			t.Fatal(err)
		}
	}

	// want maps each URL that may serve a file to its content.
	want := map[string][]byte{}
	for row, files := range recorded {
		for n, p := range files {
			content, err := os.ReadFile(filepath.Join(b.outDir, filepath.FromSlash(p)))
			if err != nil {
				t.Fatal(err)
			}
			want[fileHref(id, row, n)] = content
		}
	}

	// Every URL form, for every file in the output directory.
	urls := map[string]bool{}
	err := filepath.WalkDir(b.outDir, func(full string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(b.outDir, full)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		segs := strings.Split(rel, "/")
		escaped := make([]string, len(segs))
		for i, s := range segs {
			escaped[i] = url.PathEscape(s)
		}
		base := path.Base(rel)
		for _, u := range []string{
			"/files/" + rel,
			"/files/" + strings.Join(escaped, "/"),
			"/files/" + url.PathEscape(rel),
			"/files/" + base,
			"/files/" + id + "/" + base,
			"/files/" + id + "/0/" + base,
			"/files/" + id + "/0/0/" + base,
			"/files/" + id + "/" + rel,
			"/" + rel,
			"/static/" + rel,
		} {
			urls[u] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every job and index, and some that are not.
	for _, bid := range []string{id, "b2", "nope"} {
		for _, row := range []string{"-1", "0", "1", "2", "3", "4", "5", "6", "7", "00", "+1", "0x1", "1.0"} {
			for _, n := range []string{"-1", "0", "1", "2", "01", "+0"} {
				urls["/files/"+bid+"/"+row+"/"+n] = true
			}
		}
	}

	var privates [][]byte
	_ = filepath.WalkDir(b.outDir, func(full string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if c, err := os.ReadFile(full); err == nil && bytes.HasPrefix(c, []byte("PRIVATE")) {
				privates = append(privates, c)
			}
		}
		return nil
	})
	privates = append(privates, []byte("PRIVATE outside"))

	served := map[string]bool{}
	for u := range urls {
		for _, method := range []string{"GET", "HEAD"} {
			w := b.do(t, method, u, nil, nil)
			body := w.Body.Bytes()
			for _, p := range privates {
				if bytes.Contains(body, p) {
					t.Errorf("%s %s served %q", method, u, p)
				}
			}
			content, ok := want[u]
			switch {
			case ok && w.Code != http.StatusOK:
				t.Errorf("%s %s = %d, want 200", method, u, w.Code)
			case ok && method == "GET" && !bytes.Equal(body, content):
				t.Errorf("GET %s = %q, want %q", u, body, content)
			case ok:
				served[u] = true
			case w.Code != http.StatusNotFound:
				t.Errorf("%s %s = %d, want 404", method, u, w.Code)
			}
		}
	}
	if len(served) != len(want) || len(want) != 3 {
		t.Errorf("served %d recorded videos of %d", len(served), len(want))
	}

	// The batch page links exactly the recorded videos.
	page := b.do(t, "GET", "/batches/"+id, nil, nil).Body.String()
	links := map[string]bool{}
	for _, m := range hrefPattern.FindAllStringSubmatch(page, -1) {
		if strings.HasPrefix(m[1], "/files/") {
			links[m[1]] = true
		}
	}
	for u := range want {
		if !links[u] {
			t.Errorf("the batch page does not link %s", u)
		}
	}
	for u := range links {
		if _, ok := want[u]; !ok && u != fileHref(id, 5, 0) && u != fileHref(id, 6, 0) {
			t.Errorf("the batch page links %s", u)
		}
	}
}

// TestFilesFromBucket: with the files in a bucket, /files/ redirects to a
// signed URL of the object (S3) or serves the object itself (file://, which
// signs nothing).
func TestFilesFromBucket(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *Config) {
			withToken(c)
			bucket, err := objstore.Open(t.Context(), "file://"+filepath.ToSlash(c.OutDir)+"?metadata=skip")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bucket.Close() })
			c.Objects, c.OutDir = bucket, ""
		})
		b.seed(t, "b1", 20)
		if err := os.Remove(filepath.Join(b.outDir, "b1", "clip-0004.mp4")); err != nil {
			t.Fatal(err)
		}
		w := b.do(t, "GET", "/files/b1/3/0", nil, bearer())
		if w.Code != 200 || w.Body.String() != "video b1/clip-0003.mp4" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "sandbox") {
			t.Errorf("GET a file = %d %q %v, want the object's content, sandboxed", w.Code, w.Body, w.Header())
		}
		if w := b.do(t, "GET", "/files/b1/4/0", nil, bearer()); w.Code != 404 {
			t.Errorf("GET a missing object = %d, want 404", w.Code)
		}
		if w := b.do(t, "GET", "/files/b1/3/0", nil, nil); w.Code != 401 {
			t.Errorf("GET without credentials = %d, want 401", w.Code)
		}
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.New(t, "videos")
		var bucket *objstore.Bucket
		b := setup(t, func(c *Config) {
			withToken(c)
			var err error
			if bucket, err = objstore.Open(t.Context(), srv.URL("videos", "out")); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bucket.Close() })
			c.Objects, c.OutDir = bucket, ""
		})
		b.seed(t, "b1", 20)
		if err := bucket.Put(t.Context(), "b1/clip-0003.mp4", strings.NewReader("video b1/clip-0003.mp4")); err != nil {
			t.Fatal(err)
		}
		w := b.do(t, "GET", "/files/b1/3/0", nil, bearer())
		loc := w.Header().Get("Location")
		if w.Code != http.StatusFound || !strings.HasPrefix(loc, srv.Endpoint+"/videos/out/b1/clip-0003.mp4?") ||
			!strings.Contains(loc, "X-Amz-Signature=") || !strings.Contains(loc, "X-Amz-Expires=900") {
			t.Fatalf("GET a file = %d to %q, want a redirect to a 15-minute signed URL of the object", w.Code, loc)
		}
		resp, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got bytes.Buffer
		_, _ = got.ReadFrom(resp.Body)
		if resp.StatusCode != 200 || got.String() != "video b1/clip-0003.mp4" {
			t.Errorf("GET the signed URL = %d %q", resp.StatusCode, got.String())
		}
	})
}

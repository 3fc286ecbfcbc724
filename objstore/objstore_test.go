package objstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/internal/s3test"
	"github.com/seedbatch/seedbatch/objstore"
)

func TestIsURLAndCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		loc    string
		isURL  bool
		badURL bool
	}{
		{"out", false, false},
		{"/srv/videos", false, false},
		{"./a://b", false, false},
		{"s3://videos/prefix?region=eu-west-1", true, false},
		{"gs://videos", true, false},
		{"azblob://container/p", true, false},
		{"file:///srv/videos", true, false},
		{"file://", true, true},
		{"s3:///prefix", true, true},
		{"ftp://host/dir", true, true},
	}
	for _, tt := range tests {
		if got := objstore.IsURL(tt.loc); got != tt.isURL {
			t.Errorf("IsURL(%q) = %v, want %v", tt.loc, got, tt.isURL)
		}
		if !tt.isURL {
			continue
		}
		if err := objstore.Check(tt.loc); (err != nil) != tt.badURL {
			t.Errorf("Check(%q) = %v, want error %v", tt.loc, err, tt.badURL)
		}
	}
}

// buckets opens the same kinds of bucket the tests below run against: S3
// (an in-memory server on loopback) under a prefix, and file://. It returns
// the bucket and a function reading an object's content straight from the
// store behind it.
func buckets(t *testing.T) map[string]func(t *testing.T) (*objstore.Bucket, func(key string) ([]byte, bool)) {
	return map[string]func(t *testing.T) (*objstore.Bucket, func(string) ([]byte, bool)){
		"s3": func(t *testing.T) (*objstore.Bucket, func(string) ([]byte, bool)) {
			srv := s3test.New(t, "videos")
			b := open(t, srv.URL("videos", "runs/a"))
			return b, func(key string) ([]byte, bool) { return srv.Object("videos", "runs/a/"+key) }
		},
		"file": func(t *testing.T) (*objstore.Bucket, func(string) ([]byte, bool)) {
			dir := t.TempDir()
			b := open(t, "file://"+filepath.ToSlash(dir)+"?metadata=skip")
			return b, func(key string) ([]byte, bool) {
				data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
				return data, err == nil
			}
		},
	}
}

func open(t *testing.T, loc string) *objstore.Bucket {
	t.Helper()
	b, err := objstore.Open(context.Background(), loc)
	if err != nil {
		t.Fatalf("Open(%s): %v", loc, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func TestCommitAbortVerify(t *testing.T) {
	for name, mk := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b, read := mk(t)
			data := []byte(strings.Repeat("video bytes ", 100_000)) // 1.2 MB

			w, err := b.Create(ctx, "batch/row-1.mp4")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, strings.NewReader(string(data))); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if got, ok := read("batch/row-1.mp4"); !ok || sum(got) != sum(data) {
				t.Fatalf("stored object: %d bytes (exists %v), want %d bytes with the same sha256", len(got), ok, len(data))
			}
			if ok, err := b.Exists(ctx, "batch/row-1.mp4"); !ok || err != nil {
				t.Errorf("Exists = %v, %v; want true", ok, err)
			}
			if err := b.Verify(ctx, "batch/row-1.mp4", int64(len(data)), sum(data)); err != nil {
				t.Errorf("Verify of the object as stored: %v", err)
			}
			if err := b.Verify(ctx, "batch/row-1.mp4", int64(len(data)), sum([]byte("other"))); !errors.Is(err, objstore.ErrMismatch) {
				t.Errorf("Verify with another sha256 = %v, want ErrMismatch", err)
			}
			if err := b.Verify(ctx, "batch/none.mp4", 1, sum(nil)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Verify of a missing object = %v, want fs.ErrNotExist", err)
			}

			// An upload given up (its context canceled before Close) leaves nothing.
			actx, cancel := context.WithCancel(ctx)
			w, err = b.Create(actx, "batch/row-2.mp4")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := w.Close(); err == nil {
				t.Error("Close after cancel = nil, want an error")
			}
			if _, ok := read("batch/row-2.mp4"); ok {
				t.Error("an aborted upload left an object")
			}
			if ok, err := b.Exists(ctx, "batch/row-2.mp4"); ok || err != nil {
				t.Errorf("Exists after abort = %v, %v; want false", ok, err)
			}
			if _, err := b.Open(ctx, "batch/row-2.mp4"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open of a missing object = %v, want fs.ErrNotExist", err)
			}
		})
	}
}

func TestLink(t *testing.T) {
	ctx := context.Background()
	t.Run("s3 signs", func(t *testing.T) {
		srv := s3test.New(t, "videos")
		b := open(t, srv.URL("videos", "p"))
		if err := b.Put(ctx, "b/r.mp4", strings.NewReader("content")); err != nil {
			t.Fatal(err)
		}
		link, err := b.Link(ctx, "b/r.mp4", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(link, srv.Endpoint+"/videos/p/b/r.mp4?") || !strings.Contains(link, "X-Amz-Signature=") {
			t.Fatalf("Link = %s, want a presigned URL of the object", link)
		}
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(got) != "content" {
			t.Errorf("GET link: %d %q", resp.StatusCode, got)
		}
	})
	t.Run("file names the object", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		b := open(t, "file://"+filepath.ToSlash(dir)+"?metadata=skip")
		link, err := b.Link(ctx, "b/r.mp4", time.Hour)
		if err != nil || link != "file://"+filepath.ToSlash(dir)+"/b/r.mp4" {
			t.Errorf("Link = %q, %v; want the object's file URL", link, err)
		}
	})
}

// sink is what fetch asks of a store.
type sink interface {
	Create(ctx context.Context, key string) (io.WriteCloser, error)
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
}

var _ sink = (*objstore.Bucket)(nil)

package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/internal/s3test"
	"github.com/seedbatch/seedbatch/objstore"
)

var _ Sink = (*objstore.Bucket)(nil)

// TestGetSink downloads into buckets: S3 (an in-memory server on loopback)
// and file://. A download or an upload that fails leaves no object.
func TestGetSink(t *testing.T) {
	body := strings.Repeat("frame ", 2<<20) // 12 MiB: several upload parts
	srv := s3test.New(t, "videos")
	dir := t.TempDir()
	stores := []struct {
		name string
		loc  string
		read func(key string) ([]byte, bool)
	}{
		{"s3", srv.URL("videos", "pre"), func(key string) ([]byte, bool) { return srv.Object("videos", "pre/"+key) }},
		{"file", "file://" + filepath.ToSlash(dir) + "?metadata=skip", func(key string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
			return b, err == nil
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			bucket, err := objstore.Open(ctx, st.loc)
			if err != nil {
				t.Fatal(err)
			}
			defer bucket.Close()
			withSink := func(c *Config) { c.Dir, c.Sink = "", bucket }

			b := setup(t, serve(body), withSink)
			got, err := b.f.Get(ctx, b.url("/v.mp4"), "batch/v.mp4", File{})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.Size != int64(len(body)) || got.SHA256 != sum(body) || got.Path != "batch/v.mp4" {
				t.Errorf("Get = %+v, want %d bytes with sha256 %s", got, len(body), sum(body))
			}
			if stored, ok := st.read("batch/v.mp4"); !ok || sum(string(stored)) != got.SHA256 {
				t.Errorf("stored object: %d bytes (exists %v), want the body", len(stored), ok)
			}
			// want matching the stored object: no request.
			if again, err := b.f.Get(ctx, b.url("/v.mp4"), "batch/v.mp4", got); err != nil || again != got || b.hits.Load() != 1 {
				t.Errorf("Get(want) = %+v, %v after %d requests; want the object without a request", again, err, b.hits.Load())
			}

			// A body cut short: nothing stored.
			b = setup(t, truncated, withSink)
			if _, err := b.f.Get(ctx, b.url("/t.mp4"), "batch/t.mp4", File{}); !errors.Is(err, ErrTransient) {
				t.Errorf("Get of a truncated body = %v, want ErrTransient", err)
			}
			if _, ok := st.read("batch/t.mp4"); ok {
				t.Error("a truncated download left an object")
			}
		})
	}
	t.Run("s3 upload fails", func(t *testing.T) {
		ctx := context.Background()
		bucket, err := objstore.Open(ctx, srv.URL("videos", "pre"))
		if err != nil {
			t.Fatal(err)
		}
		defer bucket.Close()
		srv.FailUploads(true)
		defer srv.FailUploads(false)
		b := setup(t, serve(body), func(c *Config) { c.Dir, c.Sink = "", bucket })
		_, err = b.f.Get(ctx, b.url("/f.mp4"), "batch/f.mp4", File{})
		if !errors.Is(err, ErrTransient) {
			t.Fatalf("Get with failing uploads = %v, want ErrTransient", err)
		}
		checkNoSecret(t, err)
		if _, ok := srv.Object("videos", "pre/batch/f.mp4"); ok {
			t.Error("a failed upload left an object")
		}
	})
}

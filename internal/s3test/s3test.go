// Package s3test serves an S3 protocol server for tests: gofakes3 with its
// in-memory backend, on a loopback port, with a switch that makes uploads
// fail.
package s3test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Region is the region the bucket URLs name.
const Region = "us-east-1"

// Server is an in-memory S3 server.
type Server struct {
	// Endpoint is the server's base URL (http://127.0.0.1:PORT).
	Endpoint string
	backend  *s3mem.Backend
	failPuts atomic.Bool
	puts     atomic.Int64
}

// New starts a server holding one empty bucket per name, stopped when the
// test ends. It sets dummy AWS credentials in the environment (the S3
// driver reads them from there), so tests that use it cannot be parallel.
func New(t testing.TB, buckets ...string) *Server {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test-access-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	s := &Server{backend: s3mem.New()}
	for _, b := range buckets {
		if err := s.backend.CreateBucket(b); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}
	faker := gofakes3.New(s.backend, gofakes3.WithAutoBucket(false))
	srv := httptest.NewServer(s.handler(faker.Server()))
	t.Cleanup(srv.Close)
	s.Endpoint = srv.URL
	return s
}

// URL is an s3:// location of bucket and prefix on this server.
func (s *Server) URL(bucket, prefix string) string {
	q := url.Values{"region": {Region}, "endpoint": {s.Endpoint}, "use_path_style": {"true"},
		// As for most S3-compatible stores: no checksums beyond those S3 requires.
		"request_checksum_calculation": {"when_required"}, "response_checksum_validation": {"when_required"}}
	return "s3://" + bucket + "/" + strings.Trim(prefix, "/") + "?" + q.Encode()
}

// FailUploads makes every upload request (PUT of an object or a part, and
// the completion of a multipart upload) answer 500 while on is true.
func (s *Server) FailUploads(on bool) { s.failPuts.Store(on) }

// Uploads counts the upload requests served (failed ones included).
func (s *Server) Uploads() int64 { return s.puts.Load() }

// Object returns the content of an object, and whether it exists.
func (s *Server) Object(bucket, key string) ([]byte, bool) {
	obj, err := s.backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, false
	}
	defer obj.Contents.Close()
	b, err := io.ReadAll(obj.Contents)
	return b, err == nil
}

// Keys lists the keys of a bucket under prefix.
func (s *Server) Keys(bucket, prefix string) []string {
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.backend.ListBucket(bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		return nil
	}
	var keys []string
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

func (s *Server) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upload := r.Method == http.MethodPut || (r.Method == http.MethodPost && r.URL.Query().Has("uploadId"))
		if upload {
			s.puts.Add(1)
		}
		if upload && s.failPuts.Load() {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.Copy(w, bytes.NewReader([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>InternalError</Code><Message>uploads are failing (test switch)</Message></Error>`)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// secret is a canary token: it must never appear in an error text.
const secret = "SECRET-canary-9d41"

// bundle is what a test needs: a Fetcher writing to dir, and a server
// counting its requests.
type bundle struct {
	f    *Fetcher
	srv  *httptest.Server
	dir  string
	hits *atomic.Int64
}

// url returns the server URL of p with a secret query string.
func (b *bundle) url(p string) string { return b.srv.URL + p + "?token=" + secret }

// setup starts a server running h and returns a Fetcher for a fresh
// directory. The server is on loopback, so the Config allows private
// addresses; opts adjust it.
func setup(t *testing.T, h http.HandlerFunc, opts ...func(*Config)) *bundle {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := Config{Dir: dir, Timeout: 5 * time.Second, AllowPrivate: true}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &bundle{f: f, srv: srv, dir: dir, hits: hits}
}

// serve answers 200 with body and its Content-Length.
func serve(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = io.WriteString(w, body)
	}
}

// status answers code with a short page.
func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, http.StatusText(code), code)
	}
}

// truncated promises 1000 bytes, sends 100, then drops the connection.
func truncated(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, strings.Repeat("x", 100))
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// chunked streams n bytes without a Content-Length.
func chunked(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 1024))
		for sent := 0; sent < n; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// hang waits until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// files lists the regular files under dir, slash-separated and relative.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// checkNoSecret fails when err's text in any common format holds the
// canary.
func checkNoSecret(t *testing.T, err error) {
	t.Helper()
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%q", err)} {
		if strings.Contains(text, secret) || strings.Contains(text, "token=") {
			t.Errorf("error text leaks the query string: %s", text)
		}
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		relPath string
		body    string
	}{
		{"top level", "video.mp4", "not really a video"},
		{"parent dirs created", "batch-1/row-0007/video.mp4", strings.Repeat("frame", 100_000)},
		{"empty body", "empty.mp4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, serve(tt.body))
			got, err := b.f.Get(t.Context(), b.url("/v/1.mp4"), tt.relPath, File{})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			want := File{Path: tt.relPath, Size: int64(len(tt.body)), SHA256: sum(tt.body)}
			if got != want {
				t.Errorf("Get = %+v, want %+v", got, want)
			}
			name := filepath.Join(b.dir, filepath.FromSlash(tt.relPath))
			content, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if string(content) != tt.body {
				t.Errorf("content is %d bytes, want %d", len(content), len(tt.body))
			}
			info, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != fileMode {
				t.Errorf("mode = %v, want %v", info.Mode().Perm(), fileMode)
			}
			if fs := files(t, b.dir); len(fs) != 1 || fs[0] != tt.relPath {
				t.Errorf("files = %q, want only %q", fs, tt.relPath)
			}
		})
	}
}

func TestGetWant(t *testing.T) {
	t.Parallel()
	const body = "the video"
	b := setup(t, serve(body))
	ctx := t.Context()

	first, err := b.f.Get(ctx, b.url("/v.mp4"), "out/v.mp4", File{})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	// Matching want: no request.
	for _, want := range []File{first, {SHA256: strings.ToUpper(first.SHA256)}} {
		got, err := b.f.Get(ctx, b.url("/v.mp4"), "out/v.mp4", want)
		if err != nil {
			t.Fatalf("Get(want %+v): %v", want, err)
		}
		if got != first {
			t.Errorf("Get(want %+v) = %+v, want %+v", want, got, first)
		}
	}
	if n := b.hits.Load(); n != 1 {
		t.Errorf("server hits = %d, want 1 (matching want must skip the request)", n)
	}

	// Size or hash mismatch, or no hash given: download again and replace.
	for i, want := range []File{
		{},
		{Size: first.Size + 1, SHA256: first.SHA256},
		{Size: first.Size, SHA256: sum("something else")},
	} {
		if err := os.WriteFile(filepath.Join(b.dir, "out", "v.mp4"), []byte("stale"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := b.f.Get(ctx, b.url("/v.mp4"), "out/v.mp4", want)
		if err != nil {
			t.Fatalf("Get(want %+v): %v", want, err)
		}
		if got != first {
			t.Errorf("Get(want %+v) = %+v, want %+v", want, got, first)
		}
		if n := b.hits.Load(); n != int64(i+2) {
			t.Errorf("server hits = %d, want %d", n, i+2)
		}
		content, _ := os.ReadFile(filepath.Join(b.dir, "out", "v.mp4"))
		if string(content) != body {
			t.Errorf("content = %q, want %q", content, body)
		}
	}
}

func TestGetErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		h        http.HandlerFunc
		maxBytes int64
		kind     error
		status   int
	}{
		{"403 expired", status(403), 0, ErrExpired, 403},
		{"404 expired", status(404), 0, ErrExpired, 404},
		{"410 expired", status(410), 0, ErrExpired, 410},
		{"500 transient", status(500), 0, ErrTransient, 500},
		{"502 transient", status(502), 0, ErrTransient, 502},
		{"503 transient", status(503), 0, ErrTransient, 503},
		{"429 transient", status(429), 0, ErrTransient, 429},
		{"408 transient", status(408), 0, ErrTransient, 408},
		{"400 permanent", status(400), 0, ErrPermanent, 400},
		{"401 permanent", status(401), 0, ErrPermanent, 401},
		{"204 permanent", status(204), 0, ErrPermanent, 204},
		{"closed mid-body transient", truncated, 0, ErrTransient, 200},
		{"too large by Content-Length", serve(strings.Repeat("z", 2000)), 1000, ErrTooLarge, 200},
		{"too large while streaming", chunked(64 << 10), 10 << 10, ErrTooLarge, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.h, func(c *Config) { c.MaxBytes = tt.maxBytes })
			got, err := b.f.Get(t.Context(), b.url("/v/1.mp4"), "out/video.mp4", File{})
			if err == nil {
				t.Fatalf("Get = %+v, want an error", got)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("Get error %v, want kind %v", err, tt.kind)
			}
			if k := Classify(err); k != tt.kind {
				t.Errorf("Classify = %v, want %v", k, tt.kind)
			}
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", e.StatusCode, tt.status)
			}
			if !strings.Contains(err.Error(), b.srv.URL+"/v/1.mp4") {
				t.Errorf("error %q does not name scheme://host/path", err)
			}
			checkNoSecret(t, err)
			if got != (File{}) {
				t.Errorf("Get returned %+v with an error", got)
			}
			if fs := files(t, b.dir); len(fs) != 0 {
				t.Errorf("files left behind: %q", fs)
			}
		})
	}
}

func TestGetSecretsInTransportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		h     http.HandlerFunc
		close bool // close the server before the request: connection refused
		cause error
	}{
		{name: "connection refused", h: serve("x"), close: true},
		{name: "timeout", h: hang, cause: context.DeadlineExceeded},
		{name: "redirect loop", h: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/loop?token="+secret+"&n=1", http.StatusFound)
		}},
		{name: "truncated", h: truncated, cause: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.h, func(c *Config) { c.Timeout = 300 * time.Millisecond })
			if tt.close {
				b.srv.Close()
			}
			_, err := b.f.Get(t.Context(), "http://user:"+secret+"@"+strings.TrimPrefix(b.url("/v.mp4"), "http://"), "v.mp4", File{})
			if err == nil {
				t.Fatal("Get succeeded, want an error")
			}
			t.Log(err)
			checkNoSecret(t, err)
			if !errors.Is(err, ErrTransient) {
				t.Errorf("Get error %v, want ErrTransient", err)
			}
			if e, ok := errors.AsType[*Error](err); !ok || e.Err == nil {
				t.Errorf("want an *Error with a cause, got %#v", err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("Get error %v does not match %v", err, tt.cause)
			}
			if fs := files(t, b.dir); len(fs) != 0 {
				t.Errorf("files left behind: %q", fs)
			}
		})
	}
}

func TestGetCanceled(t *testing.T) {
	t.Parallel()
	b := setup(t, hang)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := b.f.Get(ctx, b.url("/v.mp4"), "v.mp4", File{})
	if !errors.Is(err, ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get error %v, want ErrTransient and context.DeadlineExceeded", err)
	}
}

func TestGetBadRelPath(t *testing.T) {
	t.Parallel()
	tests := []string{"../x", "/abs", "", "a/../../b", "a/../b", ".", "./a", "a//b", "a/", "..", ".hidden", "a/.fetch-1.part", `a\..\..\b\`}
	b := setup(t, serve("x"))
	for _, rel := range tests {
		t.Run(fmt.Sprintf("%q", rel), func(t *testing.T) {
			_, err := b.f.Get(t.Context(), b.url("/v.mp4"), rel, File{})
			if !errors.Is(err, ErrPermanent) {
				t.Errorf("Get(%q) error %v, want ErrPermanent", rel, err)
			}
		})
	}
	if n := b.hits.Load(); n != 0 {
		t.Errorf("server hits = %d, want 0", n)
	}
	if fs := files(t, b.dir); len(fs) != 0 {
		t.Errorf("files written: %q", fs)
	}
}

func TestGetBadURL(t *testing.T) {
	t.Parallel()
	b := setup(t, serve("x"))
	for _, u := range []string{"", "not a url", "/relative?token=" + secret, "ftp://host/v.mp4?token=" + secret, "file:///etc/passwd", "http://%zz/?token=" + secret} {
		t.Run(fmt.Sprintf("%q", u), func(t *testing.T) {
			_, err := b.f.Get(t.Context(), u, "v.mp4", File{})
			if !errors.Is(err, ErrPermanent) {
				t.Errorf("Get(%q) error %v, want ErrPermanent", u, err)
			}
			checkNoSecret(t, err)
		})
	}
}

func TestCleanTemp(t *testing.T) {
	t.Parallel()
	b := setup(t, serve("x"))
	old := time.Now().Add(-2 * time.Hour)
	write := func(rel string, mtime time.Time) {
		t.Helper()
		name := filepath.Join(b.dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(".fetch-111.part", old)
	write("a/b/.fetch-222.part", old)
	write("a/.fetch-333.part", time.Now()) // a download in progress
	write("a/.keep", old)                  // not ours
	write("a/video.mp4", old)              // a finished file

	n, err := b.f.CleanTemp(time.Hour)
	if err != nil {
		t.Fatalf("CleanTemp: %v", err)
	}
	if n != 2 {
		t.Errorf("CleanTemp removed %d files, want 2", n)
	}
	got := strings.Join(files(t, b.dir), " ")
	if want := "a/.fetch-333.part a/.keep a/video.mp4"; got != want {
		t.Errorf("files = %q, want %q", got, want)
	}

	// Temp files made by a real Get match what CleanTemp removes.
	tmp, err := os.CreateTemp(b.dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		t.Fatal(err)
	}
	_ = tmp.Close()
	if n, err := b.f.CleanTemp(0); err != nil || n != 2 {
		t.Errorf("CleanTemp(0) = %d, %v; want 2, nil", n, err)
	}

	missing, err := New(Config{Dir: filepath.Join(b.dir, "missing")})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := missing.CleanTemp(time.Hour); n != 0 || err != nil {
		t.Errorf("CleanTemp on a missing Dir = %d, %v; want 0, nil", n, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Dir: "x"}, ""},
		{"no dir", Config{}, "Config.Dir"},
		{"negative max", Config{Dir: "x", MaxBytes: -1}, "Config.MaxBytes"},
		{"negative timeout", Config{Dir: "x", Timeout: -time.Second}, "Config.Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if f.maxBytes != MaxBytesDefault || f.timeout != TimeoutDefault || f.client == nil {
					t.Errorf("defaults not applied: %+v", f)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"foreign", errors.New("boom"), nil},
		{"context", context.Canceled, nil},
		{"error", &Error{Kind: ErrExpired, StatusCode: 404}, ErrExpired},
		{"wrapped error", fmt.Errorf("row 7: %w", &Error{Kind: ErrTooLarge, Err: io.EOF}), ErrTooLarge},
		{"sentinel", fmt.Errorf("x: %w", ErrPermanent), ErrPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGetRedactsCauseText(t *testing.T) {
	t.Parallel()
	errProxy := errors.New("proxy refused")
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		// A transport error that repeats the URL in its own text.
		return nil, fmt.Errorf("%w: %s (query %s, token %s)", errProxy, r.URL, r.URL.RawQuery, r.URL.Query().Get("token"))
	})}
	f, err := New(Config{Dir: t.TempDir(), HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Get(t.Context(), "https://cdn.example/v/1.mp4?token="+secret+"&expires=1700000000", "v.mp4", File{})
	if err == nil {
		t.Fatal("Get succeeded, want an error")
	}
	t.Log(err)
	checkNoSecret(t, err)
	if !errors.Is(err, ErrTransient) || !errors.Is(err, errProxy) {
		t.Errorf("Get error %v, want ErrTransient wrapping the transport's error", err)
	}
	if !strings.Contains(err.Error(), "GET https://cdn.example/v/1.mp4: ") {
		t.Errorf("error %q does not name scheme://host/path", err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b", "v.mp4"), []byte("video"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("video"))
	good := File{Path: "b/v.mp4", Size: 5, SHA256: hex.EncodeToString(sum[:])}
	other := sha256.Sum256([]byte("other"))
	tests := []struct {
		name string
		want File
		is   error
	}{
		{"same", good, nil},
		{"missing", File{Path: "b/gone.mp4", Size: 5, SHA256: good.SHA256}, fs.ErrNotExist},
		{"other size", File{Path: good.Path, Size: 6, SHA256: good.SHA256}, ErrMismatch},
		{"other content", File{Path: good.Path, Size: 5, SHA256: hex.EncodeToString(other[:])}, ErrMismatch},
		{"a directory", File{Path: "b", Size: 5, SHA256: good.SHA256}, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(dir, tt.want)
			if (tt.is == nil) != (err == nil) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("Verify = %v, want %v", err, tt.is)
			}
		})
	}
}

package fetch

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/seedbatch/seedbatch/internal/crashpoint"
)

// Defaults of [Config].
const (
	// MaxBytesDefault is the default largest body accepted: 2 GiB.
	MaxBytesDefault int64 = 2 << 30
	// TimeoutDefault is the default time limit of one whole download.
	TimeoutDefault = 10 * time.Minute
)

// Temporary files are named tempPrefix + random + tempSuffix, in the
// directory of their final file.
const (
	tempPrefix = ".fetch-"
	tempSuffix = ".part"
)

// fileMode is the permission of a downloaded file.
const fileMode fs.FileMode = 0o644

// Config configures a [Fetcher]. The zero value of a field means its
// default.
type Config struct {
	// Dir is the root directory files are stored under. Required unless
	// Sink is set. It is created, with any missing parents, by the first
	// Get.
	Dir string
	// Sink, when set, stores files in place of Dir: in a bucket
	// (objstore.Bucket), each under its relative path as the key.
	Sink Sink
	// MaxBytes refuses bodies larger than this many bytes, checked against
	// Content-Length before reading and again while streaming; default
	// MaxBytesDefault (2 GiB).
	MaxBytes int64
	// Timeout limits one whole download, from the request to the rename;
	// default TimeoutDefault (10 min).
	Timeout time.Duration
	// AllowPrivate lets downloads reach addresses that are not public:
	// loopback, private, link-local (the cloud metadata service),
	// unspecified, multicast, broadcast and reserved ones (see [NonPublic]).
	// Default false: such addresses are refused, whether a URL names them
	// or a host name resolves to them, on the first request and on every
	// redirect. Set it for a provider or a stand-in on this machine or
	// network, whose result URLs point there too.
	AllowPrivate bool
	// AllowedHosts, when not empty, are the only hosts downloads may
	// request, on the first request and on every redirect: exact host names
	// or IP addresses, or "*.example.com" patterns that match any name below
	// example.com (see [CheckHostPattern]). Default empty: any host, public
	// ones only unless AllowPrivate is set. The two checks add up: an
	// allowed host must still resolve to a public address unless
	// AllowPrivate is set.
	AllowedHosts []string
	// HTTPClient sends the requests; default a client with its own
	// Transport: no proxy (an HTTP proxy would connect on the download's
	// behalf, beyond the address check; HTTP_PROXY and HTTPS_PROXY are
	// ignored), 10s dial and TLS handshake timeouts, a 60s
	// ResponseHeaderTimeout, no transparent decompression, redirects
	// followed up to 10, and, unless AllowPrivate is set, a dialer that
	// refuses addresses that are not public at connect time. The Fetcher
	// uses a copy of a client given here whose CheckRedirect also applies
	// the scheme, host and IP-literal checks; the check of resolved
	// addresses is the default Transport's, which a client given here
	// replaces with its own.
	HTTPClient *http.Client
	// Crash arms crashpoint.MidDownload, reached once per download after
	// the first part of its body was written to the temporary file, for
	// tests and drills; nil arms none.
	Crash *crashpoint.Set
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.MaxBytes = cmp.Or(c.MaxBytes, MaxBytesDefault)
	c.Timeout = cmp.Or(c.Timeout, TimeoutDefault)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: newTransport(c.AllowPrivate)}
	}
	return c
}

// validate checks a Config that has its defaults. Its errors name the
// field.
func (c Config) validate() error {
	switch {
	case c.Dir == "" && c.Sink == nil:
		return errors.New("fetch: Config.Dir or Config.Sink is required")
	case c.MaxBytes < 0:
		return errors.New("fetch: Config.MaxBytes must not be negative")
	case c.Timeout < 0:
		return errors.New("fetch: Config.Timeout must not be negative")
	}
	return nil
}

// newTransport returns the Transport of the default client. Unless
// allowPrivate is set, its dialer refuses every address that is not public
// (see dialControl).
func newTransport(allowPrivate bool) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if !allowPrivate {
		dialer.Control = dialControl
		dial = guardedDial(dial)
	}
	return &http.Transport{
		// No proxy: it would make the connections the dialer checks.
		Proxy:                 nil,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		// Store and hash the bytes the server sends.
		DisableCompression: true,
	}
}

// Sink stores downloaded files elsewhere than in a local directory
// (objstore.Bucket).
type Sink interface {
	// Create starts storing the file key. Close of the writer commits it,
	// complete; when ctx is canceled before Close, nothing is left under
	// key.
	Create(ctx context.Context, key string) (io.WriteCloser, error)
	// Open reads the stored file key.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
}

// Fetcher downloads files into one directory, or into a Sink. It is safe
// for concurrent use; concurrent Gets of the same path each write a
// complete file, and the last rename (or upload) wins.
type Fetcher struct {
	dir      string
	sink     Sink
	maxBytes int64
	timeout  time.Duration
	policy   policy
	// client is a copy of Config.HTTPClient whose CheckRedirect applies
	// policy.
	client *http.Client
	crash  *crashpoint.Set
	// writeFault, when set (by tests), fails every write of a body with it.
	writeFault error
}

// New returns a Fetcher for cfg, or an error naming the first invalid
// field.
func New(cfg Config) (*Fetcher, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pol, err := newPolicy(cfg)
	if err != nil {
		return nil, err
	}
	client := *cfg.HTTPClient
	client.CheckRedirect = pol.checkRedirect(cfg.HTTPClient.CheckRedirect)
	return &Fetcher{
		dir:      filepath.Clean(cfg.Dir),
		sink:     cfg.Sink,
		maxBytes: cfg.MaxBytes,
		timeout:  cfg.Timeout,
		policy:   pol,
		client:   &client,
		crash:    cfg.Crash,
	}, nil
}

// File describes a stored file.
type File struct {
	// Path is the file's path relative to Config.Dir, slash-separated.
	Path string
	// Size is the file's length in bytes.
	Size int64
	// SHA256 is the hex-encoded SHA-256 of the file's content.
	SHA256 string
}

// Get downloads url to Dir/relPath and returns what it stored.
//
// The body is streamed into a temporary dot file in the destination's
// directory (parents are created with mode 0755), hashed as it is written,
// synced, closed and renamed onto the final name, whose mode is 0644. The
// temporary file is removed on any failure, so the final name only ever
// holds a complete file.
//
// relPath must be a clean, slash-separated relative path inside Dir (see
// [io/fs.ValidPath]) without backslashes, whose last element does not start
// with a dot.
//
// The URL's host, each redirect's and each address connected to must pass
// the checks of Config.AllowPrivate and Config.AllowedHosts (see "Which
// hosts" in the package documentation); a refusal is an ErrPermanent.
//
// want is optional. When want.SHA256 is set and the final file already
// exists with that SHA-256 (and with want.Size, when it is not 0), Get
// returns the file without a request. Otherwise want is ignored: a
// downloaded file is not checked against it.
//
// Every error is an [*Error]; see the package documentation for its kinds.
func (f *Fetcher) Get(ctx context.Context, rawURL, relPath string, want File) (File, error) {
	final, err := f.localPath(relPath)
	if err != nil {
		return File{}, &Error{Kind: ErrPermanent, Err: err}
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Print nothing of a URL that did not parse: it may hold a token.
		return File{}, &Error{Kind: ErrPermanent, detail: "URL must be an absolute http or https URL"}
	}

	if err := f.policy.checkHost(u.Hostname()); err != nil {
		return File{}, &Error{Kind: ErrPermanent, Err: err, url: safeURL(u)}
	}

	if want.SHA256 != "" {
		if got, ok := f.existing(ctx, final, relPath, want); ok {
			return got, nil
		}
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	fail := func(kind error, status int, detail string, cause error) (File, error) {
		return File{}, &Error{Kind: kind, StatusCode: status, Err: cleanCause(cause, u), url: safeURL(u), detail: detail}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(ErrPermanent, 0, "building request", err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if refused, ok := errors.AsType[*refusedError](err); ok {
			// Refused by policy, at a redirect or at connect time (where
			// another host than the URL's is a redirect's).
			if refused.host != "" && refused.host != u.Hostname() {
				refused.redirect = true
			}
			return fail(ErrPermanent, 0, "", refused)
		}
		return fail(ErrTransient, 0, "", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		// Read a little so a short error page does not cost the connection.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		return fail(kindForStatus(resp.StatusCode), resp.StatusCode, "", nil)
	}
	if resp.ContentLength > f.maxBytes {
		return fail(ErrTooLarge, resp.StatusCode,
			fmt.Sprintf("Content-Length %d exceeds the limit of %d bytes", resp.ContentLength, f.maxBytes), nil)
	}

	out, detail, err := f.create(ctx, final, relPath)
	if err != nil {
		return fail(storageKind(err), resp.StatusCode, detail, err)
	}
	committed := false
	defer func() {
		if !committed {
			out.abort()
		}
	}()

	h := sha256.New()
	var w io.Writer = out
	if f.writeFault != nil {
		w = faultyWriter{f.writeFault}
	}
	dst := &recordingWriter{w: w, afterFirst: func() { f.crash.Hit(crashpoint.MidDownload) }}
	n, err := io.CopyBuffer(io.MultiWriter(dst, h), io.LimitReader(resp.Body, f.maxBytes+1), make([]byte, 256<<10))
	switch {
	case dst.err != nil:
		return fail(storageKind(dst.err), resp.StatusCode, "writing file", dst.err)
	case err != nil:
		// A read error: a reset, a truncated body (io.ErrUnexpectedEOF when
		// the body ends before its Content-Length) or a timeout.
		return fail(ErrTransient, resp.StatusCode, fmt.Sprintf("reading body after %d bytes", n), err)
	case n > f.maxBytes:
		return fail(ErrTooLarge, resp.StatusCode, fmt.Sprintf("body exceeds the limit of %d bytes", f.maxBytes), nil)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return fail(ErrTransient, resp.StatusCode,
			fmt.Sprintf("body is %d bytes, Content-Length is %d", n, resp.ContentLength), nil)
	}

	committed, detail, err = out.commit()
	if err != nil {
		kind := storageKind(err)
		if committed { // the file is in place; only its directory's sync failed
			kind = ErrTransient
		}
		return fail(kind, resp.StatusCode, detail, err)
	}
	return File{Path: relPath, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// output is where Get writes a body: a temporary file renamed into place
// (localOutput) or an upload to Config.Sink (sinkOutput).
type output interface {
	io.Writer
	// commit puts the file in place. It reports whether it did (a local
	// file is in place before its directory is synced), and on failure
	// what it was doing.
	commit() (committed bool, detail string, err error)
	// abort discards what was written; nothing is left under the final name.
	abort()
}

// create starts the output of relPath, at final when storing locally. On
// failure it says what it was doing.
func (f *Fetcher) create(ctx context.Context, final, relPath string) (output, string, error) {
	if f.sink != nil {
		ctx, cancel := context.WithCancel(ctx)
		w, err := f.sink.Create(ctx, relPath)
		if err != nil {
			cancel()
			return nil, "starting upload", err
		}
		return &sinkOutput{w: w, cancel: cancel}, "", nil
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "creating directory", err
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return nil, "creating temporary file", err
	}
	return &localOutput{File: tmp, final: final}, "", nil
}

// localOutput is a temporary file beside final, renamed onto it by commit.
type localOutput struct {
	*os.File
	final string
}

func (o *localOutput) commit() (bool, string, error) {
	if err := o.Chmod(fileMode); err != nil {
		return false, "setting file mode", err
	}
	if err := o.Sync(); err != nil {
		return false, "syncing file", err
	}
	if err := o.Close(); err != nil {
		return false, "closing file", err
	}
	if err := os.Rename(o.Name(), o.final); err != nil {
		return false, "renaming file", err
	}
	// Make the rename durable. The file is complete and in place either way.
	if err := syncDir(filepath.Dir(o.final)); err != nil {
		return true, "syncing directory", err
	}
	return true, "", nil
}

func (o *localOutput) abort() {
	_ = o.Close()
	_ = os.Remove(o.Name())
}

// sinkOutput is an upload to a Sink, committed by closing its writer and
// discarded by canceling its context first.
type sinkOutput struct {
	w      io.WriteCloser
	cancel context.CancelFunc
	closed bool
}

func (o *sinkOutput) Write(p []byte) (int, error) { return o.w.Write(p) }

func (o *sinkOutput) commit() (bool, string, error) {
	defer o.cancel()
	o.closed = true
	if err := o.w.Close(); err != nil {
		return false, "committing upload", err
	}
	return true, "", nil
}

func (o *sinkOutput) abort() {
	o.cancel()
	if !o.closed {
		o.closed = true
		_ = o.w.Close()
	}
}

// localPath checks relPath and returns it as a path under f.dir.
func (f *Fetcher) localPath(relPath string) (string, error) {
	if !fs.ValidPath(relPath) || relPath == "." {
		return "", fmt.Errorf("invalid path %q: must be a clean relative path inside Dir", relPath)
	}
	if strings.ContainsRune(relPath, '\\') {
		// A separator on Windows, a file-name character elsewhere: refuse
		// the ambiguity.
		return "", fmt.Errorf("invalid path %q: must not contain a backslash", relPath)
	}
	if strings.HasPrefix(path.Base(relPath), ".") {
		return "", fmt.Errorf("invalid path %q: file name must not start with a dot", relPath)
	}
	local, err := filepath.Localize(relPath)
	if err != nil {
		return "", fmt.Errorf("invalid path %q: %w", relPath, err)
	}
	return filepath.Join(f.dir, local), nil
}

// existing reports whether the stored file (at name, or relPath in the
// Sink) matches want, returning its description when it does. Any error
// means no match.
func (f *Fetcher) existing(ctx context.Context, name, relPath string, want File) (File, bool) {
	var file io.ReadCloser
	if f.sink != nil {
		r, err := f.sink.Open(ctx, relPath)
		if err != nil {
			return File{}, false
		}
		file = r
	} else {
		local, err := os.Open(name)
		if err != nil {
			return File{}, false
		}
		info, err := local.Stat()
		if err != nil || !info.Mode().IsRegular() || (want.Size != 0 && info.Size() != want.Size) {
			local.Close()
			return File{}, false
		}
		file = local
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return File{}, false
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(sum, want.SHA256) || (want.Size != 0 && n != want.Size) {
		return File{}, false
	}
	return File{Path: relPath, Size: n, SHA256: sum}, true
}

// ErrMismatch is returned (wrapped) by Verify for a file whose size or
// content is not the one recorded.
var ErrMismatch = errors.New("not the file recorded")

// Verify checks that the file want describes is on disk as described: that
// dir/want.Path is a regular file of want.Size bytes whose SHA-256 is
// want.SHA256. It returns nil when it is; an error wrapping fs.ErrNotExist
// when the file is missing; one wrapping ErrMismatch, saying what is on
// disk, when it differs; and the error met when it cannot be read.
func Verify(dir string, want File) error {
	fail := func(kind error, format string, args ...any) error {
		return &verifyError{msg: want.Path + " " + fmt.Sprintf(format, args...), kind: kind}
	}
	local, err := filepath.Localize(want.Path)
	if err != nil {
		return fail(err, "is not a local path")
	}
	f, err := os.Open(filepath.Join(dir, local))
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fs.ErrNotExist, "is missing")
	}
	if err != nil {
		return fail(err, "cannot be read: %v", errors.Unwrap(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fail(err, "cannot be read: %v", err)
	}
	if !info.Mode().IsRegular() {
		return fail(ErrMismatch, "is not a regular file")
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fail(err, "cannot be read: %v", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != want.Size || !strings.EqualFold(sum, want.SHA256) {
		return fail(ErrMismatch, "is not the file recorded: %d bytes with sha256 %.12s… on disk, %d bytes with sha256 %.12s… recorded (another run wrote it?)",
			n, sum, want.Size, want.SHA256)
	}
	return nil
}

// verifyError is an error of Verify: its message, and the kind errors.Is
// matches.
type verifyError struct {
	msg  string
	kind error
}

func (e *verifyError) Error() string { return e.msg }
func (e *verifyError) Unwrap() error { return e.kind }

// syncDir flushes a directory's entries (a rename) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}

// recordingWriter keeps the first write error, to tell a full disk from a
// network failure after io.Copy.
type recordingWriter struct {
	w   io.Writer
	err error
	// afterFirst, if set, runs once after the first bytes were written.
	afterFirst func()
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	if n > 0 && r.afterFirst != nil {
		r.afterFirst()
		r.afterFirst = nil
	}
	return n, err
}

// faultyWriter fails every write with its error.
type faultyWriter struct{ err error }

func (w faultyWriter) Write([]byte) (int, error) { return 0, w.err }

// CleanTemp removes the temporary files that Get leaves behind only when the
// process dies mid-download: files anywhere under Dir named like Get's
// temporary files (a dot, then "fetch-", ending ".part") and last modified
// more than age ago. Keep age well above Config.Timeout so that downloads
// in progress are not removed. It returns how many files were removed, and
// the errors met, joined; a missing Dir is no error.
func (f *Fetcher) CleanTemp(age time.Duration) (int, error) {
	cutoff := time.Now().Add(-age)
	removed := 0
	var errs []error
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == f.dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			errs = append(errs, err)
			return nil
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasPrefix(name, tempPrefix) || !strings.HasSuffix(name, tempSuffix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return nil
		}
		if !info.ModTime().Before(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		removed++
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("fetch: cleaning temporary files: %w", err)
	}
	return removed, nil
}

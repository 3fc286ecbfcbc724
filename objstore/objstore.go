package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	_ "gocloud.dev/blob/fileblob"  // file://
	_ "gocloud.dev/blob/gcsblob"   // gs://
	_ "gocloud.dev/blob/s3blob"    // s3://
	"gocloud.dev/gcerrors"
)

// Schemes are the URL schemes a bucket location may have.
var Schemes = []string{"s3", "gs", "azblob", "file"}

// Upload sizes: each upload buffers at most uploadConcurrency parts of
// uploadPartSize bytes, whatever the object's size.
const (
	uploadPartSize    = 8 << 20
	uploadConcurrency = 2
)

// ErrMismatch is returned (wrapped) by [Bucket.Verify] for an object whose
// size or content is not the one recorded.
var ErrMismatch = errors.New("not the file recorded")

// IsURL reports whether location names a bucket (it has a URL scheme such as
// s3://) rather than a local directory.
func IsURL(location string) bool {
	scheme, _, ok := strings.Cut(location, "://")
	return ok && scheme != "" && !strings.ContainsAny(scheme, `/\`)
}

// Check reports whether location is a bucket URL this package can open, by
// its form only: a known scheme and a bucket name (for file://, a
// directory).
func Check(location string) error {
	u, err := url.Parse(location)
	if err != nil {
		return fmt.Errorf("not a URL: %w", errors.Unwrap(err))
	}
	if !slices.Contains(Schemes, u.Scheme) {
		return fmt.Errorf("unknown scheme %q (want one of %s://)", u.Scheme, strings.Join(Schemes, "://, "))
	}
	if u.Scheme == "file" {
		if u.Path == "" || u.Path == "/" {
			return errors.New("file:// needs a directory, e.g. file:///srv/videos")
		}
		return nil
	}
	if u.Host == "" {
		return fmt.Errorf("%s:// needs a bucket name, e.g. %s://my-bucket/prefix", u.Scheme, u.Scheme)
	}
	return nil
}

// Bucket is a bucket, or a prefix within one, holding result files under
// slash-separated keys such as "<batch>/<row>.mp4". It is safe for
// concurrent use.
type Bucket struct {
	b *blob.Bucket
	// where is the location without its query, for messages and links.
	where string
}

// Open opens the bucket a URL names (see the package documentation). It
// makes no request: a bucket that does not exist or refuses the
// credentials shows at the first use.
func Open(ctx context.Context, location string) (*Bucket, error) {
	if err := Check(location); err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	u, err := url.Parse(location)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	prefix := ""
	if u.Scheme != "file" {
		// The path is a prefix; the driver knows only the bucket.
		prefix = strings.Trim(u.Path, "/")
		u.Path, u.RawPath = "", ""
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("objstore: opening %s: %w", where(location), err)
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return &Bucket{b: b, where: strings.TrimSuffix(where(location), "/")}, nil
}

// where is a location without its query (which may name endpoints or
// profiles, never credentials, but has no place in a message).
func where(location string) string {
	s, _, _ := strings.Cut(location, "?")
	return s
}

// String returns the bucket's URL without its query.
func (b *Bucket) String() string { return b.where }

// Close releases the bucket's resources.
func (b *Bucket) Close() error { return b.b.Close() }

// Create starts the upload of the object key. Write its content, then Close
// commits it: the object is visible, complete, only once Close returned nil.
// To give up, cancel ctx before calling Close: the upload is discarded and
// nothing is left under key. The content is streamed in parts: at most a few
// parts of 8 MiB are held in memory, whatever the object's size.
func (b *Bucket) Create(ctx context.Context, key string) (io.WriteCloser, error) {
	w, err := b.b.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType:    contentType(key),
		BufferSize:     uploadPartSize,
		MaxConcurrency: uploadConcurrency,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: uploading %s: %w", b.name(key), err)
	}
	return w, nil
}

// contentType is the Content-Type an object is stored with.
func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".mp4"):
		return "video/mp4"
	case strings.HasSuffix(key, ".csv"):
		return "text/csv; charset=utf-8"
	}
	return "application/octet-stream"
}

// Put stores r's content as the object key, streaming it.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return fmt.Errorf("objstore: uploading %s: %w", b.name(key), err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("objstore: uploading %s: %w", b.name(key), err)
	}
	return nil
}

// Open returns a reader of the object key, which can seek (for ranges);
// an object that does not exist gives an error wrapping fs.ErrNotExist.
func (b *Bucket) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	r, err := b.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, b.wrap("reading", key, err)
	}
	return r, nil
}

// Exists reports whether the object key exists.
func (b *Bucket) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := b.b.Exists(ctx, key)
	if err != nil {
		return false, b.wrap("checking", key, err)
	}
	return ok, nil
}

// Verify checks that the object key holds size bytes whose SHA-256 is sum
// (hex), reading it whole. It returns nil when it does; an error wrapping
// fs.ErrNotExist when the object is missing; one wrapping ErrMismatch,
// saying what is stored, when it differs; and the error met otherwise.
func (b *Bucket) Verify(ctx context.Context, key string, size int64, sum string) error {
	r, err := b.b.NewReader(ctx, key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return &verifyError{msg: b.name(key) + " is missing", kind: fs.ErrNotExist}
	}
	if err != nil {
		return &verifyError{msg: fmt.Sprintf("%s cannot be read: %v", b.name(key), err), kind: err}
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return &verifyError{msg: fmt.Sprintf("%s cannot be read: %v", b.name(key), err), kind: err}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != size || !strings.EqualFold(got, sum) {
		return &verifyError{kind: ErrMismatch, msg: fmt.Sprintf(
			"%s is not the file recorded: %d bytes with sha256 %.12s… stored, %d bytes with sha256 %.12s… recorded (another run wrote it?)",
			b.name(key), n, got, size, sum)}
	}
	return nil
}

// Link returns a URL to read the object key: a signed URL valid for expiry
// where the driver signs (s3 always; gs and azblob with credentials that
// can sign), and otherwise (file://, or signing failed) the bucket's URL
// followed by the key, which reaches the object only with the bucket's own
// credentials (for file://, a file URL). Signing makes no request.
func (b *Bucket) Link(ctx context.Context, key string, expiry time.Duration) (string, error) {
	s, err := b.b.SignedURL(ctx, key, &blob.SignedURLOptions{Expiry: expiry})
	if err != nil {
		return b.name(key), nil
	}
	return s, nil
}

// name is the object's URL without credentials, for messages.
func (b *Bucket) name(key string) string { return b.where + "/" + key }

// wrap adds what was being done to an error, matching fs.ErrNotExist for
// a missing object.
func (b *Bucket) wrap(doing, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		err = errors.Join(fs.ErrNotExist, err)
	}
	return fmt.Errorf("objstore: %s %s: %w", doing, b.name(key), err)
}

// verifyError is an error of Verify: its message, and the kind errors.Is
// matches.
type verifyError struct {
	msg  string
	kind error
}

func (e *verifyError) Error() string { return e.msg }
func (e *verifyError) Unwrap() error { return e.kind }

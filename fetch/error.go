package fetch

import (
	"errors"
	"io/fs"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The kinds of [Error]. Each Error's Kind is one of these, and errors.Is
// matches it.
var (
	// ErrExpired means the URL answered 403, 404 or 410: the result is gone
	// (its signed URL expired); retrying the same URL cannot help.
	ErrExpired = errors.New("fetch: result expired")
	// ErrTooLarge means the body is larger than Config.MaxBytes; retrying
	// cannot help.
	ErrTooLarge = errors.New("fetch: too large")
	// ErrTransient means the download failed for a reason that may pass:
	// a network error, a timeout, 408, 429, 5xx, a truncated body, or a
	// local file-system error other than the storage kinds below. Retrying
	// with backoff is worthwhile.
	ErrTransient = errors.New("fetch: transient failure")
	// ErrPermanent means the request is wrong: another 4xx, an unexpected
	// status, an unsupported URL or an invalid destination path. Retrying
	// cannot help.
	ErrPermanent = errors.New("fetch: permanent failure")
	// ErrStorageFull means the destination's file system is full or over
	// its quota (ENOSPC, EDQUOT): retrying is pointless until room is made.
	ErrStorageFull = errors.New("fetch: no space left in the output directory")
	// ErrStorageReadOnly means the destination cannot be written: a
	// read-only file system (EROFS) or no permission (EACCES, EPERM).
	// Retrying is pointless until an operator fixes it.
	ErrStorageReadOnly = errors.New("fetch: the output directory cannot be written")
)

// Error is a failed download. Kind is one of the sentinel errors of this
// package; Unwrap returns it together with Err, so both
// errors.Is(err, ErrTransient) and errors.Is(err, context.DeadlineExceeded)
// work. Its text never contains the URL's query string.
type Error struct {
	// Kind is one of ErrExpired, ErrTooLarge, ErrTransient or ErrPermanent.
	Kind error
	// StatusCode is the HTTP status of the answer, or 0 when none came.
	StatusCode int
	// Err is the underlying network, context or file-system error, if any.
	// It is never a *url.Error, and its text is redacted of the URL's query.
	Err error

	// url is the request URL reduced to scheme://host/path, or "".
	url string
	// detail says what went wrong when Err does not.
	detail string
}

// Error returns a one-line description such as
// "fetch GET https://cdn.example/v/1.mp4: result expired (HTTP 404)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fetch")
	if e.url != "" {
		b.WriteString(" GET ")
		b.WriteString(e.url)
	}
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "fetch: "))
	} else {
		b.WriteString("failed")
	}
	if e.StatusCode != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(")")
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and Err (those that are set).
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Classify returns the kind of err: ErrExpired, ErrTooLarge, ErrStorageFull,
// ErrStorageReadOnly, ErrTransient or ErrPermanent, or nil when err is nil or not an error of this package.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Kind != nil {
		return e.Kind
	}
	for _, kind := range []error{ErrExpired, ErrTooLarge, ErrStorageFull, ErrStorageReadOnly, ErrPermanent, ErrTransient} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	return nil
}

// kindForStatus maps a non-200 HTTP status to a kind.
func kindForStatus(code int) error {
	switch {
	case code == 403 || code == 404 || code == 410:
		return ErrExpired
	case code == 408 || code == 429 || code >= 500:
		return ErrTransient
	default:
		// Other 4xx, and 1xx/2xx/3xx answers that are not a plain 200.
		return ErrPermanent
	}
}

// safeURL reduces a URL to scheme://host/path, dropping user information,
// query and fragment.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// cleanCause strips *url.Error wrappers from err (their text holds the full
// request URL, query included) and redacts the URL's secrets from whatever
// text remains.
func cleanCause(err error, u *url.URL) error {
	if err == nil {
		return nil
	}
	for {
		ue, ok := errors.AsType[*url.Error](err)
		if !ok || ue.Err == nil {
			break
		}
		err = ue.Err
	}
	secrets := urlSecrets(u)
	msg := err.Error()
	redacted := msg
	for _, s := range secrets {
		redacted = strings.ReplaceAll(redacted, s, "[redacted]")
	}
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}

// urlSecrets returns the parts of u that must not appear in an error text,
// longest first so that a whole match is redacted before its parts.
func urlSecrets(u *url.URL) []string {
	if u == nil {
		return nil
	}
	var s []string
	add := func(v string) {
		// Very short values (such as "1") would redact unrelated text.
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	add(u.String())
	add(u.RawQuery)
	if q, err := url.QueryUnescape(u.RawQuery); err == nil {
		add(q)
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			add(v)
		}
	}
	add(u.Fragment)
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		add(u.User.String())
	}
	slices.SortStableFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}

// redactedError is an error whose text had URL secrets removed. It unwraps
// to the original error so errors.Is still matches it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// storageKind is the kind of a local file-system error: ErrStorageFull for
// a full file system or quota, ErrStorageReadOnly for one that cannot be
// written, ErrTransient for anything else.
func storageKind(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), isQuota(err):
		return ErrStorageFull
	case errors.Is(err, syscall.EROFS), errors.Is(err, fs.ErrPermission):
		return ErrStorageReadOnly
	}
	return ErrTransient
}

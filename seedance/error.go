package seedance

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The kinds of [Error]. Each Error's Kind is one of these, and errors.Is
// matches it.
var (
	// ErrInvalid means the provider rejected the request as wrong (400 and
	// any other 4xx without its own kind): retrying the same request cannot
	// help. Nothing was created.
	ErrInvalid = errors.New("seedance: invalid request")
	// ErrAuth means the provider refused the API key (401) or the key lacks
	// permission for the model (403): no request will succeed.
	ErrAuth = errors.New("seedance: not authorized")
	// ErrNotFound means the provider does not know the task (or the model):
	// HTTP 404.
	ErrNotFound = errors.New("seedance: not found")
	// ErrRateLimited means the provider refused the request for its rate or
	// concurrency limits (429). Nothing was created; retry after
	// [Error.RetryAfter] when it is set.
	ErrRateLimited = errors.New("seedance: rate limited")
	// ErrServer means a retry is safe. For Create: the answer carried a code
	// listed in Config.NotCreatedCodes, which the provider documents as
	// "nothing was created". For Status: a server error (5xx, 408) or any
	// failure after the request was written (timeouts, resets, a body cut
	// short), since reading is safe to repeat.
	ErrServer = errors.New("seedance: server error")
	// ErrNotSent means the request was not fully written to the network (or
	// the context was done before sending): the provider cannot have acted on
	// it, and a retry is safe.
	ErrNotSent = errors.New("seedance: not sent")
	// ErrUnknownOutcome means a Create request was written and the answer
	// does not prove that nothing was created: no answer, a 5xx or 408 whose
	// code is not in Config.NotCreatedCodes (with or without the provider's
	// JSON), or a 2xx without a task id or with an error code that is no
	// such proof. The task may exist and will then be billed. Do not resend
	// without first learning whether it was created.
	ErrUnknownOutcome = errors.New("seedance: outcome unknown")
	// ErrUnreadable means a Status read was answered 2xx but the answer
	// cannot be used: its body is not the provider's JSON, names an unknown
	// state or another task, has a resultJson that is not JSON, or reports a
	// success without result URLs. The task may have ended, and a success is
	// billed. [Error.Excerpt] holds the start of the answer.
	ErrUnreadable = errors.New("seedance: answer unreadable")
)

// Error is a failed call to the provider. Kind is one of the sentinel errors
// of this package; Unwrap returns it together with Err, so both
// errors.Is(err, ErrRateLimited) and errors.Is(err, context.DeadlineExceeded)
// work.
type Error struct {
	// Kind is one of ErrInvalid, ErrAuth, ErrNotFound, ErrRateLimited,
	// ErrServer, ErrNotSent, ErrUnknownOutcome or ErrUnreadable.
	Kind error
	// Op is the call that failed: "create" or "status".
	Op string
	// StatusCode is the HTTP status of the answer, or 0 when none came.
	StatusCode int
	// Code is the "code" of the provider's JSON error body, or 0.
	Code int
	// Message is the "message" of the provider's JSON error body, if any,
	// with the API key redacted.
	Message string
	// RetryAfter is the wait the provider asked for in a Retry-After header
	// (on 429), or 0.
	RetryAfter time.Duration
	// Excerpt is the start of an answer that could not be used
	// (ErrUnreadable), at most maxExcerpt bytes, with control characters
	// replaced, the API key redacted and URLs replaced by "[URL]".
	Excerpt string
	// Err is the underlying transport, context or decoding error, if any.
	// It never carries the request URL.
	Err error

	// detail says what went wrong when there is no provider message.
	detail string
}

// Error returns a one-line description such as
// "seedance create: rate limited (429): Too many requests".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("seedance ")
	b.WriteString(cmpString(e.Op, "call"))
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "seedance: "))
	} else {
		b.WriteString("failed")
	}
	if e.StatusCode != 0 {
		b.WriteString(" (")
		b.WriteString(strconv.Itoa(e.StatusCode))
		b.WriteString(")")
	}
	for _, msg := range []string{e.detail, e.Message} {
		if msg != "" {
			b.WriteString(": ")
			b.WriteString(msg)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Excerpt != "" {
		b.WriteString("; answer: ")
		b.WriteString(e.Excerpt)
	}
	if e.RetryAfter > 0 {
		b.WriteString(" (retry after ")
		b.WriteString(e.RetryAfter.String())
		b.WriteString(")")
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

// kindForStatus maps an HTTP (or provider JSON) error code of a Status
// read to a kind. ok is false for codes that are not errors (below 400).
func kindForStatus(code int) (kind error, ok bool) {
	switch {
	case code == 401 || code == 403:
		return ErrAuth, true
	case code == 404:
		return ErrNotFound, true
	case code == 429:
		return ErrRateLimited, true
	case code == 408:
		// The server gave up waiting for the request: it was not processed.
		return ErrServer, true
	case code >= 400 && code < 500:
		return ErrInvalid, true
	case code >= 500:
		return ErrServer, true
	}
	return nil, false
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfterSeconds*time.Second)
		}
	}
	return 0
}

// maxRetryAfterSeconds caps a Retry-After value (one day).
const maxRetryAfterSeconds = 24 * 60 * 60

// transportCause strips *url.Error wrappers, whose text holds the full
// request URL, and keeps the cause.
func transportCause(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) || ue.Err == nil {
			return err
		}
		err = ue.Err
	}
}

// maxMessage caps the length of a provider message kept in an Error.
const maxMessage = 512

// cleanMessage redacts secret from a provider message, replaces control
// characters and caps its length.
func cleanMessage(msg, secret string) string {
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, "[REDACTED]")
	}
	return clip(msg, maxMessage)
}

// clip replaces control characters with spaces, trims s and caps it at n
// bytes, on a rune boundary, marking a cut with an ellipsis.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > n {
		cut := n
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// maxExcerpt caps Error.Excerpt, in bytes (before the ellipsis).
const maxExcerpt = 160

// urlPattern matches a URL, its slashes JSON-escaped or not.
var urlPattern = regexp.MustCompile(`(?i)https?:(?:\\?/){2}[^\s"'<>]*`)

// excerpt returns the start of an answer body for an error message: the
// API key redacted, URLs replaced by "[URL]" (one may hold a token),
// control characters replaced, at most maxExcerpt bytes.
func excerpt(body []byte, secret string) string {
	s := string(body)
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[REDACTED]")
	}
	s = strings.ToValidUTF8(s[:min(len(s), 4*maxExcerpt)], "\uFFFD")
	s = urlPattern.ReplaceAllString(s, "[URL]")
	return clip(s, maxExcerpt)
}

func cmpString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Package redact removes secrets from text that seedbatch stores, logs or
// shows: the API key, the callback secret, the tokens of callback URLs,
// bearer tokens and secret-looking URL parameters. Errors keep their
// identity (errors.Is and errors.As still see through them) while their
// text is redacted, so an error can be handed to asynq, which stores its
// text as the task's last error, and still be classified.
package redact

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every secret.
const Mask = "[redacted]"

// minSecret is the shortest secret replaced by value: shorter ones would
// mask ordinary words.
const minSecret = 6

// patterns find secrets by their shape, whatever their value.
var patterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	// The token of a callback URL: /callback/{batch}/{row}/{attempt}/{token}.
	{regexp.MustCompile(`(/callback/[^/\s"'<>]+/\d+/\d+/)[^/\s"'<>?#]+`), "${1}" + Mask},
	// Authorization headers and bearer tokens.
	{regexp.MustCompile(`(?i)\b(bearer\s+)[^\s"',;]+`), "${1}" + Mask},
	// Secret-looking URL query parameters and key=value pairs.
	{regexp.MustCompile(`(?i)\b((?:api[_-]?key|access[_-]?token|token|secret|password|passwd|signature|sig)=)[^&\s"'<>]+`), "${1}" + Mask},
}

// Redactor removes a set of secrets, and everything shaped like one, from
// text. The zero value removes only what has the shape of a secret. It is
// safe for concurrent use.
type Redactor struct {
	secrets []string
}

// New returns a Redactor for the given secret values; empty and very
// short values are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) >= minSecret && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first, so that a secret containing another is masked whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, v := range r.secrets {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	for _, p := range patterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return s
}

// Error returns err with its text redacted; errors.Is and errors.As see the
// original error through it. It returns nil for nil, and err itself when
// its text holds nothing to redact.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	clean := r.String(text)
	if clean == text {
		return err
	}
	return &redacted{text: clean, err: err}
}

type redacted struct {
	text string
	err  error
}

func (e *redacted) Error() string { return e.text }
func (e *redacted) Unwrap() error { return e.err }

// Handler returns a slog.Handler that redacts the message and every string,
// error and stringer attribute before passing the record to h.
func (r *Redactor) Handler(h slog.Handler) slog.Handler { return &handler{r: r, next: h} }

type handler struct {
	r    *Redactor
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &handler{r: h.r, next: h.next.WithAttrs(clean)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, next: h.next.WithGroup(name)}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, x := range g {
			clean[i] = h.attr(x)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.String(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, h.r.String(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	t.Parallel()
	r := New("sk-live-123456", "callback-secret-xyz", "", "abc")
	tests := []struct{ in, want string }{
		{"key sk-live-123456 refused", "key [redacted] refused"},
		{"abc stays: too short to be a secret", "abc stays: too short to be a secret"},
		{"POST http://hooks.example/callback/b-1/12/0/Zm9vYmFyYmF6cXV4 failed",
			"POST http://hooks.example/callback/b-1/12/0/[redacted] failed"},
		{`{"callback_url":"https://h/callback/x/1/2/tok_123-abc"}`, `{"callback_url":"https://h/callback/x/1/2/[redacted]"}`},
		{"Authorization: Bearer sometoken", "Authorization: Bearer [redacted]"},
		{"GET /?token=dashsecret&x=1", "GET /?token=[redacted]&x=1"},
		{"api_key=k1&password=p2", "api_key=[redacted]&password=[redacted]"},
		{"secret callback-secret-xyz", "secret [redacted]"},
		{"nothing to see", "nothing to see"},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var zero *Redactor
	if got := zero.String("Bearer x1"); got != "Bearer [redacted]" {
		t.Errorf("nil Redactor: %q", got)
	}
}

var errKind = errors.New("kind")

func TestErrorKeepsIdentity(t *testing.T) {
	t.Parallel()
	r := New("sk-live-123456")
	err := fmt.Errorf("create with sk-live-123456: %w", errKind)
	got := r.Error(err)
	if strings.Contains(got.Error(), "sk-live") || !errors.Is(got, errKind) {
		t.Errorf("Error = %q (is kind: %v)", got, errors.Is(got, errKind))
	}
	clean := errors.New("clean")
	if r.Error(clean) != clean || r.Error(nil) != nil {
		t.Error("a clean error or nil was wrapped")
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	r := New("sk-live-123456")
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("key", "sk-live-123456")
	log.Info("sent sk-live-123456", "err", errors.New("Bearer sk-live-123456"), "url",
		"http://h/callback/b/1/0/tokentoken", slog.Group("g", "k", "sk-live-123456"), "n", 3)
	out := buf.String()
	if strings.Contains(out, "sk-live") || strings.Contains(out, "tokentoken") {
		t.Errorf("log line holds a secret: %s", out)
	}
	if !strings.Contains(out, `"n":3`) {
		t.Errorf("a number was lost: %s", out)
	}
}

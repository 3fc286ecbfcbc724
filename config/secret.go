package config

import (
	"encoding/json"
	"log/slog"
	"net/url"
	"reflect"
)

// Redacted is what a set Secret prints as.
const Redacted = "[redacted]"

// Secret is a string that never prints itself: fmt, slog, YAML and JSON all
// see Redacted (or "" when unset). Reveal returns the value for the one place
// that needs it, the Authorization header.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Secrets returns the values of every Secret field that is set, and the
// password of the Redis URL: everything a log line, a stored error or a
// page must never show.
func (c Config) Secrets() []string {
	var out []string
	v := reflect.ValueOf(c)
	walk(v.Type(), "", func(_ string, index []int) {
		if f := v.FieldByIndex(index); f.Type() == reflect.TypeOf(Secret("")) && f.String() != "" {
			out = append(out, f.String())
		}
	})
	for _, a := range c.Accounts {
		if a.APIKey != "" {
			out = append(out, a.APIKey.Reveal())
		}
	}
	if u, err := url.Parse(c.Redis.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	return out
}

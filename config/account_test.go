package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/ratelimit"
)

// writeFile writes content to name in a new temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "secret", "key-c\n")
	yml := `provider:
  base_url: http://main.example
limits:
  max_in_flight: 100
  requests_per_minute: 600
accounts:
  - {name: b, api_key_env: KEY_B, max_in_flight: 20, requests_per_minute: 120, budget_seconds: 400}
  - {name: c, api_key_file: ` + keyFile + `, base_url: http://other.example}
`
	cfg := mustLoad(t, Options{File: writeFile(t, "c.yaml", yml),
		Env: envOf(map[string]string{"SEEDANCE_API_KEY": "key-a", "KEY_B": "key-b"})})
	list := cfg.AccountList()
	if len(list) != 3 {
		t.Fatalf("accounts: %+v, want default, b, c", list)
	}
	want := []struct {
		name, key, url   string
		inFlight, rpm, b int
	}{
		{"default", "key-a", "http://main.example", 100, 600, 0},
		{"b", "key-b", "http://main.example", 20, 120, 400},
		{"c", "key-c", "http://other.example", 100, 600, 0},
	}
	for i, w := range want {
		a := list[i]
		if a.Name != w.name || a.APIKey.Reveal() != w.key || a.BaseURL != w.url || a.Limits.MaxInFlight != w.inFlight ||
			a.Limits.RequestsPerMinute != w.rpm || a.BudgetSeconds != w.b || a.Limits.Scope != ratelimit.AccountScope(w.key) {
			t.Errorf("account %d: %+v, want %+v", i, a, w)
		}
	}
	if got := cfg.AccountLimits(); got != list[0].Limits {
		t.Errorf("AccountLimits %+v, want the default account's %+v", got, list[0].Limits)
	}
	if a, err := cfg.AccountNamed("c"); err != nil || a.Name != "c" {
		t.Errorf("AccountNamed(c) = %+v, %v", a, err)
	}
	if _, err := cfg.AccountNamed("nope"); err == nil || !strings.Contains(err.Error(), "default b c") {
		t.Errorf("AccountNamed(nope): %v, want the accounts listed", err)
	}
	dump := cfg.Dump()
	for _, key := range []string{"key-a", "key-b", "key-c"} {
		if strings.Contains(dump, key) {
			t.Errorf("config dump shows %s:\n%s", key, dump)
		}
	}
	if s := strings.Join(cfg.Secrets(), " "); !strings.Contains(s, "key-b") || !strings.Contains(s, "key-c") {
		t.Errorf("Secrets %q leave out the accounts' keys", s)
	}

	// Without provider.api_key, the first listed account comes first.
	cfg = mustLoad(t, Options{File: writeFile(t, "c.yaml", yml), Env: envOf(map[string]string{"KEY_B": "key-b"})})
	if list := cfg.AccountList(); len(list) != 2 || list[0].Name != "b" {
		t.Errorf("accounts without provider.api_key: %+v, want b, c", list)
	}
	// Without accounts, the single key as today.
	cfg = mustLoad(t, Options{Env: envOf(map[string]string{"SEEDANCE_API_KEY": "key-a"})})
	if list := cfg.AccountList(); len(list) != 1 || list[0].Name != "default" || list[0].APIKey != "key-a" {
		t.Errorf("single key: %+v", list)
	}
}

func TestAccountErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	keyFile := writeFile(t, "k", "key-x")
	tests := []struct {
		accounts, field string
		env             map[string]string
	}{
		{`[{api_key_env: K}]`, "accounts[0].name", nil},
		{`[{name: Big, api_key_env: K}]`, "accounts[0].name", nil},
		{`[{name: default, api_key_env: K}]`, "accounts[0].name", nil},
		{`[{name: a, api_key_env: K}, {name: a, api_key_env: L}]`, "accounts[1].name", nil},
		{`[{name: a}]`, "accounts[0].api_key_env", nil},
		{`[{name: a, api_key_env: K, api_key_file: ` + keyFile + `}]`, "accounts[0].api_key_env", nil},
		{`[{name: a, api_key_env: K}]`, "accounts[0].api_key_env", nil},
		{`[{name: a, api_key_env: K}, {name: b, api_key_env: L}]`, "accounts[1].api_key_env", map[string]string{"K": "same", "L": "same"}},
		{`[{name: a, api_key_env: K}]`, "accounts[0].api_key_env", map[string]string{"K": "key-a", "SEEDANCE_API_KEY": "key-a"}},
		{`[{name: a, api_key_file: /nonexistent/key}]`, "accounts[0].api_key_file", nil},
		{`[{name: a, api_key_env: K, base_url: ftp://x}]`, "accounts[0].base_url", map[string]string{"K": "k"}},
		{`[{name: a, api_key_env: K, max_in_flight: -1}]`, "accounts[0].max_in_flight", map[string]string{"K": "k"}},
		{`[{name: a, api_key_env: K, requests_per_minute: -1}]`, "accounts[0].requests_per_minute", map[string]string{"K": "k"}},
		{`[{name: a, api_key_env: K, budget_seconds: -1}]`, "accounts[0].budget_seconds", map[string]string{"K": "k"}},
	}
	for _, tt := range tests {
		_, err := Load(Options{Env: envOf(tt.env), Set: []string{"accounts=" + tt.accounts}})
		var se *SettingError
		if !errors.As(err, &se) || se.Field != tt.field {
			t.Errorf("accounts=%s: %v, want an error about %s", tt.accounts, err, tt.field)
		}
	}
	// The key may come from the variable's _FILE form.
	cfg, err := Load(Options{Env: envOf(map[string]string{"K_FILE": keyFile}), Set: []string{"accounts=[{name: a, api_key_env: K}]"}})
	if err != nil || cfg.Accounts[0].APIKey != "key-x" {
		t.Errorf("key from K_FILE: %v, %+v", err, cfg.Accounts)
	}
}

package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSecretFiles reads secrets from the files that *_FILE variables name,
// as Docker secrets are mounted.
func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := write("key", "sk-from-file\n")
	crlf := write("crlf", "cb-secret\r\n")
	bare := write("bare", "dash-token")
	pass := write("pass", "pa ss\n\n")
	empty := write("empty", "")
	url := write("url", "redis://:hunter2@db.internal:6379/0\n")
	big := write("big", strings.Repeat("x", maxSecretFile+1))
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name string
		env  map[string]string
		get  func(Config) string
		want string
		// err, when set, is what the error must say (and then get is unused).
		err []string
	}{
		{"api key alias", map[string]string{"SEEDANCE_API_KEY_FILE": key},
			func(c Config) string { return c.Provider.APIKey.Reveal() }, "sk-from-file", nil},
		{"api key field", map[string]string{"SEEDBATCH_PROVIDER_API_KEY_FILE": key},
			func(c Config) string { return c.Provider.APIKey.Reveal() }, "sk-from-file", nil},
		{"callback secret, CRLF trimmed", map[string]string{"SEEDBATCH_CALLBACK_SECRET_FILE": crlf},
			func(c Config) string { return c.Callback.Secret.Reveal() }, "cb-secret", nil},
		{"dashboard token without a line break", map[string]string{"SEEDBATCH_DASHBOARD_TOKEN_FILE": bare},
			func(c Config) string { return c.Dashboard.Token.Reveal() }, "dash-token", nil},
		{"dashboard password keeps inner spaces", map[string]string{"SEEDBATCH_DASHBOARD_PASSWORD_FILE": pass,
			"SEEDBATCH_DASHBOARD_USER": "ops"},
			func(c Config) string { return c.Dashboard.Password.Reveal() }, "pa ss", nil},
		{"redis url", map[string]string{"REDIS_URL_FILE": url},
			func(c Config) string { return c.Redis.URL }, "redis://:hunter2@db.internal:6379/0", nil},
		{"an empty file is an empty secret", map[string]string{"SEEDBATCH_DASHBOARD_TOKEN_FILE": empty},
			func(c Config) string { return c.Dashboard.Token.Reveal() }, "", nil},
		{"an empty _FILE variable is unset", map[string]string{"SEEDANCE_API_KEY": "sk-env", "SEEDANCE_API_KEY_FILE": ""},
			func(c Config) string { return c.Provider.APIKey.Reveal() }, "sk-env", nil},
		{"an empty variable beside its _FILE", map[string]string{"SEEDANCE_API_KEY": "", "SEEDANCE_API_KEY_FILE": key},
			func(c Config) string { return c.Provider.APIKey.Reveal() }, "sk-from-file", nil},
		{"not a secret: _FILE ignored", map[string]string{"SEEDBATCH_OUT_DIR_FILE": key},
			func(c Config) string { return c.OutDir }, "out", nil},
		{"missing file", map[string]string{"SEEDANCE_API_KEY_FILE": missing}, nil, "",
			[]string{"SEEDANCE_API_KEY_FILE", missing, "no such file"}},
		{"a directory", map[string]string{"SEEDBATCH_CALLBACK_SECRET_FILE": dir}, nil, "",
			[]string{"SEEDBATCH_CALLBACK_SECRET_FILE", dir}},
		{"too large", map[string]string{"SEEDBATCH_DASHBOARD_TOKEN_FILE": big}, nil, "",
			[]string{"SEEDBATCH_DASHBOARD_TOKEN_FILE", "larger than"}},
		{"both set", map[string]string{"SEEDANCE_API_KEY": "sk-env", "SEEDANCE_API_KEY_FILE": key}, nil, "",
			[]string{"SEEDANCE_API_KEY and SEEDANCE_API_KEY_FILE are both set"}},
		{"both set, field form", map[string]string{"SEEDBATCH_DASHBOARD_PASSWORD": "x", "SEEDBATCH_DASHBOARD_PASSWORD_FILE": pass}, nil, "",
			[]string{"SEEDBATCH_DASHBOARD_PASSWORD and SEEDBATCH_DASHBOARD_PASSWORD_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(Options{Env: envOf(tt.env)})
			if tt.err != nil {
				if err == nil {
					t.Fatalf("loaded; want an error saying %q", tt.err)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "sk-") {
					t.Errorf("error %q shows a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(cfg); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFileVariables lists a _FILE variable for every secret, and only for
// secrets.
func TestFileVariables(t *testing.T) {
	t.Parallel()
	got := FileVariables()
	for _, want := range []string{"SEEDANCE_API_KEY_FILE", "SEEDBATCH_CALLBACK_SECRET_FILE", "SEEDBATCH_DASHBOARD_TOKEN_FILE",
		"SEEDBATCH_DASHBOARD_PASSWORD_FILE", "SEEDBATCH_PROVIDER_API_KEY_FILE", "REDIS_URL_FILE", "SEEDBATCH_REDIS_URL_FILE"} {
		if !slices.Contains(got, want) {
			t.Errorf("FileVariables() lacks %s: %v", want, got)
		}
	}
	for _, bad := range []string{"SEEDANCE_BASE_URL_FILE", "SEEDBATCH_OUT_DIR_FILE", "SEEDBATCH_DASHBOARD_USER_FILE"} {
		if slices.Contains(got, bad) {
			t.Errorf("FileVariables() has %s, which is no secret", bad)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("FileVariables() not sorted: %v", got)
	}
}

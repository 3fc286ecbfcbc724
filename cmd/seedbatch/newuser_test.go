package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// runMainEnviron runs the command in-process with env as its whole
// environment, listed too (so that unknown variables are reported).
func runMainEnviron(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	m := &Main{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Environ: func() []string { return environ }}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code := m.Run(ctx, args)
	return code, stdout.String(), stderr.String()
}

// TestDryRunPrices sets prices the ways the README names them, and checks
// that seconds without a price are named rather than left out in silence.
func TestDryRunPrices(t *testing.T) {
	t.Parallel()
	path := writeCSV(t, "priced", 4) // two rows of 4 s at 480p, two at 720p
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   []string
		stderr string
	}{
		{"--set one price", nil, []string{"--set", "prices.720p=0.05"},
			[]string{"720p        8 video seconds        0.40", "480p        8 video seconds  (no price: set prices.480p)",
				"total      16 video seconds        0.40 estimated, not counting the 8 seconds at 480p, which have no price"}, ""},
		{"environment, one price", map[string]string{"SEEDBATCH_PRICES_720P": "0.05"}, nil,
			[]string{"0.40 estimated, not counting the 8 seconds at 480p"}, ""},
		{"environment, both prices", map[string]string{"SEEDBATCH_PRICES_720P": "0.05", "SEEDBATCH_PRICES_480P": "0.02"}, nil,
			[]string{"total      16 video seconds        0.56 estimated\n"}, ""},
		{"a misspelt variable", map[string]string{"SEEDBATCH_PRICE_720P": "0.05"}, nil,
			[]string{"total      16 video seconds\n"}, "SEEDBATCH_PRICE_720P"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SEEDBATCH_OUT_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			args := append([]string{"run", "--dry-run"}, tt.args...)
			code, stdout, stderr := runMainEnviron(t, env, append(args, path)...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
			}
			flat := strings.Join(strings.Fields(stdout), " ")
			for _, w := range tt.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) || (strings.HasSuffix(w, "\n") && !strings.Contains(flat, strings.Join(strings.Fields(w), " ")+" dry run")) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if tt.stderr == "" && strings.Contains(stderr, "unknown_environment_variable") {
				t.Errorf("a known variable reported unknown:\n%s", stderr)
			}
			if tt.stderr != "" && (!strings.Contains(stderr, tt.stderr) || !strings.Contains(stderr, "did you mean SEEDBATCH_PRICES_720P?")) {
				t.Errorf("stderr does not warn about %s:\n%s", tt.stderr, stderr)
			}
		})
	}
}

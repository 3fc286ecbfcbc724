package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/internal/redistest"
)

// TestAccountFlag: enqueue --account names one of the configured accounts,
// the batch keeps it, and status shows each account by name, never its key.
func TestAccountFlag(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	env := []string{"REDIS_URL=" + rs.URL, "SEEDBATCH_REDIS_PREFIX=" + rs.Prefix, "SEEDANCE_API_KEY=key-of-default",
		"KEY_B=key-of-b", "SEEDBATCH_ACCOUNTS=[{name: b, api_key_env: KEY_B, max_in_flight: 30}]"}
	csv := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(csv, []byte("prompt\na scene for account b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := cliStreams(t, env, "enqueue", csv, "--account", "nope")
	if code != exitUsage || !strings.Contains(stderr, `--account: no account "nope" in the configuration (accounts: [default b])`) {
		t.Fatalf("unknown account: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := cliStreams(t, env, "enqueue", csv, "--account", "b")
	if code != exitOK {
		t.Fatalf("enqueue --account b: exit %d, %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	code, _, stderr = cliStreams(t, env, "enqueue", csv)
	if code != exitUsage || !strings.Contains(stderr, "was enqueued for account b, not default") {
		t.Fatalf("enqueue again on another account: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = cliStreams(t, env, "status")
	if code != exitOK {
		t.Fatalf("status: exit %d, %s", code, stderr)
	}
	for _, want := range []string{"account default: provider tasks in flight: 0 of 1000", "account b: provider tasks in flight: 0 of 30",
		id + ": 0 video seconds created (no budget); account b: 0 (no budget)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, "key-of-") {
		t.Errorf("status shows an API key:\n%s%s", stdout, stderr)
	}
	code, _, stderr = cliStreams(t, []string{"SEEDBATCH_ACCOUNTS=[{name: b, api_key_env: KEY_UNSET_IN_TEST}]"}, "config")
	if code != exitUsage || !strings.Contains(stderr, "accounts[0].api_key_env: KEY_UNSET_IN_TEST is not set") {
		t.Errorf("account without its key: exit %d, %s", code, stderr)
	}
}

func TestSimAccountFlag(t *testing.T) {
	t.Parallel()
	a, err := simAccount("b:key-b:30")
	if err != nil || a.Name != "b" || a.APIKey != "key-b" || a.MaxInFlight != 30 {
		t.Errorf("b:key-b:30 = %+v, %v", a, err)
	}
	for _, bad := range []string{"b:key-b", "b:key-b:0", "b:key-b:x", "b:k:1:2"} {
		if _, err := simAccount(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

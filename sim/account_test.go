package sim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// createAs creates a task with key and returns the answer's HTTP status.
func (b *bundle) createAs(t testing.TB, key string) int {
	t.Helper()
	return b.do(t, "POST", createPath, key, body(t, nil)).status
}

func TestAccountsKeepTheirOwnLimits(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 2, RequestsPerMinute: 600, Burst: 100, Accounts: []Account{
		{Name: "b", APIKey: "key-b", MaxInFlight: 3, RequestsPerMinute: 60, Burst: 4},
	}})
	for i := range 2 {
		if got := b.createAs(t, testKey); got != 200 {
			t.Fatalf("default create %d: %d", i, got)
		}
	}
	if got := b.createAs(t, testKey); got != 429 {
		t.Fatalf("default create over its 2 in flight: %d, want 429", got)
	}
	// b's slots are its own: the default account's full ones take none.
	for i := range 3 {
		if got := b.createAs(t, "key-b"); got != 200 {
			t.Fatalf("b create %d: %d", i, got)
		}
	}
	if got := b.createAs(t, "key-b"); got != 429 {
		t.Fatalf("b create over its 3 in flight: %d, want 429", got)
	}
	// b's bucket (burst 4) is spent; the default account's is not.
	if a := b.do(t, "GET", statusPath("task_nope"), "key-b", ""); a.status != 429 {
		t.Fatalf("b read with its bucket spent: %d, want 429", a.status)
	}
	if a := b.do(t, "GET", statusPath("task_nope"), testKey, ""); a.status != 404 {
		t.Fatalf("default read: %d, want 404", a.status)
	}
	if got := b.createAs(t, "key-unknown"); got != 401 {
		t.Fatalf("unknown key: %d, want 401", got)
	}
	st := b.sim.Stats()
	want := map[string]AccountStats{
		DefaultAccount: {Created: 2, InFlight: 2, PeakInFlight: 2, RateLimited: 1},
		"b":            {Created: 3, InFlight: 3, PeakInFlight: 3, RateLimited: 2},
	}
	for name, w := range want {
		if st.Accounts[name] != w {
			t.Errorf("account %s: %+v, want %+v", name, st.Accounts[name], w)
		}
	}
	if st.Created != 5 || st.PeakInFlight != 5 {
		t.Errorf("totals: created %d, peak %d; want 5, 5", st.Created, st.PeakInFlight)
	}
	b.clock.Advance(2 * time.Minute) // every task ends
	st = b.sim.Stats()
	if st.Accounts["b"].InFlight != 0 || st.Accounts[DefaultAccount].InFlight != 0 {
		t.Errorf("in flight after every task ended: %+v", st.Accounts)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "key-b") {
		t.Errorf("stats show an API key: %s", raw)
	}
}

func TestAccountsValidate(t *testing.T) {
	t.Parallel()
	for name, accts := range map[string][]Account{
		"no name":        {{APIKey: "k2"}},
		"default name":   {{Name: DefaultAccount, APIKey: "k2"}},
		"repeated name":  {{Name: "a", APIKey: "k2"}, {Name: "a", APIKey: "k3"}},
		"no key":         {{Name: "a"}},
		"default's key":  {{Name: "a", APIKey: "k1"}},
		"repeated key":   {{Name: "a", APIKey: "k2"}, {Name: "b", APIKey: "k2"}},
		"negative limit": {{Name: "a", APIKey: "k2", MaxInFlight: -1}},
	} {
		if _, err := New(Config{APIKey: "k1", Accounts: accts}); err == nil || !strings.Contains(err.Error(), "Accounts[") {
			t.Errorf("%s: err %v, want one naming Accounts", name, err)
		}
	}
}

package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/metrics"
	"github.com/seedbatch/seedbatch/ratelimit"
)

// TestAccountSeries: each account's leases, limit and pause come labelled
// by its name; its key never shows.
func TestAccountSeries(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	var accounts []metrics.Account
	for name, limit := range map[string]int{"default": 20, "b": 30} {
		lim, err := ratelimit.New(rs.Client, ratelimit.Config{Prefix: rs.Prefix, Scope: ratelimit.AccountScope("key-of-" + name),
			RequestsPerMinute: 600, Burst: 10, MaxInFlight: limit})
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, metrics.Account{Name: name, Limiter: lim})
		if name == "b" {
			if err := lim.Pause(ctx, "the provider refused the API key"); err != nil {
				t.Fatal(err)
			}
			if res, err := lim.AdmitSubmit(ctx, "b:0:0"); err != nil || res.Allowed {
				t.Fatalf("a paused account admitted a submit: %+v, %v", res, err)
			}
		}
	}
	for _, a := range accounts {
		if a.Name == "default" {
			if res, err := a.Limiter.AdmitSubmit(ctx, "a:0:0"); err != nil || !res.Allowed {
				t.Fatalf("submit on default: %+v, %v", res, err)
			}
		}
	}
	c := metrics.NewCollector(metrics.NewRecorder(rs.Client, rs.Prefix), nil, accounts[0].Limiter, nil, nil)
	c.SetAccounts(accounts)
	ms := httptest.NewServer(metrics.Handler(c))
	defer ms.Close()
	got := scrape(t, ms.URL)
	want := map[string]float64{
		`seedbatch_account_leases_in_use{account="default"}`:                              1,
		`seedbatch_account_leases_in_use{account="b"}`:                                    0,
		`seedbatch_account_max_in_flight{account="default"}`:                              20,
		`seedbatch_account_max_in_flight{account="b"}`:                                    30,
		`seedbatch_account_paused{account="default",reason=""}`:                           0,
		`seedbatch_account_paused{account="b",reason="the provider refused the API key"}`: 1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	resp, err := http.Get(ms.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(body), "key-of-") {
		t.Error("the metrics show an API key")
	}
}

package dashboard

import (
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/ratelimit"
)

// TestAccounts: with several accounts, the header shows each one's leases
// by name, a paused account gets its banner, and a batch names its
// account; no key shows.
func TestAccounts(t *testing.T) {
	t.Parallel()
	var limB *ratelimit.Limiter
	b := setup(t, func(c *Config) {
		var err error
		limB, err = ratelimit.New(c.Redis, ratelimit.Config{Prefix: c.Queues.Submit, Scope: ratelimit.AccountScope("key-of-b"), MaxInFlight: 30})
		if err != nil {
			t.Fatal(err)
		}
		c.Accounts = []Account{{Name: batch.AccountDefault, Limiter: c.Limiter}, {Name: "b", Limiter: limB}}
	})
	ctx := t.Context()
	if _, err := b.store.CreateBatch(ctx, batch.Meta{ID: "on-b", Source: "b.csv", Rows: 1, RequestType: "async", Account: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := limB.Pause(ctx, "the provider refused the API key: Invalid or missing API key"); err != nil {
		t.Fatal(err)
	}
	rec := b.do(t, "GET", "/", nil, nil)
	html := rec.Body.String()
	for _, want := range []string{
		`data-account="default"`, `data-account="b">account b: <b>0</b> / 30 leases`,
		`data-paused-account="b"`, "Submitting is paused for account b: <span>the provider refused the API key",
		`data-field="account" class="account">account b</small>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, `data-paused-account="default"`) || strings.Contains(html, `id="paused"`) {
		t.Error("the default account, or submitting as a whole, is shown paused")
	}
	if strings.Contains(html, "key-of-b") {
		t.Error("the page shows an API key")
	}
}

package dashboard

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedbatch/seedbatch/tasks"
)

// browser starts headless Chromium for t, or skips t when it is missing
// outside CI (CI must have it).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("chromium not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(bcancel)
	return bctx
}

// countsScript reads a summary row's data-state cells.
const countsScript = `Object.fromEntries([...document.querySelectorAll('tr[data-batch="b1"] td[data-state]')]
	.map(td => [td.dataset.state, Number(td.textContent)]))`

func TestBrowser(t *testing.T) {
	ctx := browser(t)
	b := setup(t, writable)
	b.seed(t, "b1", 40)
	ts := httptest.NewServer(b.h)
	t.Cleanup(ts.Close)

	want := func() map[string]int {
		_, counts, err := b.store.Batch(t.Context(), "b1")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, st := range tasks.States {
			m[string(st)] = counts[st]
		}
		return m
	}
	check := func(where string, got map[string]int) {
		t.Helper()
		w := want()
		for st, n := range w {
			if got[st] != n {
				t.Errorf("%s: state %s shows %d, store has %d", where, st, got[st], n)
			}
		}
	}

	// Log in with the token in the URL: the dashboard sets a cookie and
	// redirects to a URL without it.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/?token="+testToken),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-batch="b1"]`)),
	); err != nil {
		t.Fatal(err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if location != ts.URL+"/" {
		t.Errorf("after login the URL is %q; the token must not stay in it", location)
	}
	list, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](countsScript))
	if err != nil {
		t.Fatal(err)
	}
	check("list", list)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/batches/b1"),
		chromedp.WaitVisible(chromedp.ID("jobs")),
	); err != nil {
		t.Fatal(err)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](countsScript))
	if err != nil {
		t.Fatal(err)
	}
	check("batch page", page)
	jobRows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#jobs tbody tr').length`))
	if err != nil {
		t.Fatal(err)
	}
	if jobRows != 40 {
		t.Errorf("batch page shows %d rows, want 40", jobRows)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// Kept with go test -artifacts, and in $SEEDBATCH_TEST_ARTIFACTS (CI sets it).
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("SEEDBATCH_TEST_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		shot := filepath.Join(dir, "batch-page.png")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", shot)
	}

	// A write from the page without credentials is refused and changes nothing.
	before := want()
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`fetch('/batches/b1/cancel', {method: 'POST', credentials: 'omit'}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if status != 401 && status != 403 {
		t.Errorf("POST without credentials = %d, want 401 or 403", status)
	}
	after := want()
	for st, n := range before {
		if after[st] != n {
			t.Errorf("a refused POST changed %s from %d to %d", st, n, after[st])
		}
	}

	// The page's own form, with the session cookie, works.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("cancel")),
		chromedp.WaitVisible(chromedp.ID("notice")),
	); err != nil {
		t.Fatal(err)
	}
	if got := want()[string(tasks.StateCanceled)]; got != 20 {
		t.Errorf("after the cancel form: %d canceled rows, want 20", got)
	}
	page, err = chromedp.Run(ctx, chromedp.Evaluate[map[string]int](countsScript))
	if err != nil {
		t.Fatal(err)
	}
	check("batch page after cancel", page)
}

package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/syncbuf"
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
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
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
	t.Parallel()
	ctx := browser(t)
	// No reloads: this test clicks and reads as a person would between them.
	b := setup(t, func(c *Config) { writable(c); c.Refresh = -1 })
	b.seed(t, "b1", 40)
	ts := httptest.NewServer(b.h)
	t.Cleanup(ts.Close)

	want := func() map[string]int {
		_, counts, err := b.store.Get(t.Context(), "b1")
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
	fits(t, ctx, "list")
	shot(t, ctx, "list-1280.png")

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

// seedWide records a batch whose id, source, prompts and file names are
// as long as they come, to check that the pages still fit the window: 30
// rows, 12 done with a file each, 6 failed, 4 submitted, the rest queued.
func (b *bundle) seedWide(t *testing.T, id string) {
	t.Helper()
	ctx := t.Context()
	if _, err := b.store.CreateBatch(ctx, batch.Meta{ID: id, Rows: 30, Created: time.Now().Add(-20 * time.Minute),
		Source: "/srv/seedbatch/inbox/spring-campaign/" + strings.Repeat("very-long-file-name-", 6) + ".csv"}); err != nil {
		t.Fatal(err)
	}
	var jobs []batch.Job
	for i := range 30 {
		jobs = append(jobs, batch.Job{Batch: id, Row: i, Line: i + 2, State: tasks.StateQueued, Spec: tasks.Spec{
			ID:       fmt.Sprintf("%s-%s-%04d", "shot", strings.Repeat("x", 90), i),
			Prompt:   strings.Repeat("A slow dolly shot along a rain-soaked neon street at night, reflections everywhere. ", 20),
			Duration: 8}})
	}
	if _, err := b.store.AddJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	move := func(row int, c batch.Change) {
		t.Helper()
		c.From = []tasks.State{tasks.StateQueued}
		if _, err := b.store.Transition(ctx, id, row, c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		name := fmt.Sprintf("%s/%s~%016x.mp4", id, strings.Repeat("shot_", 16), i)
		move(i, batch.Change{To: tasks.StateDone, TaskID: fmt.Sprintf("cgt-20260301-%032d", i),
			Files: []batch.File{{Path: name, Size: 48_123_456}}})
	}
	for i := 12; i < 18; i++ {
		move(i, batch.Change{To: tasks.StateFailed, TaskID: fmt.Sprintf("cgt-20260301-%032d", i), FailCode: "CONTENT_VIOLATION",
			FailMsg: strings.Repeat("the provider refused the prompt for its content policy; ", 4)})
	}
	for i := 18; i < 22; i++ {
		move(i, batch.Change{To: tasks.StateSubmitted, TaskID: fmt.Sprintf("cgt-20260301-%032d", i)})
	}
}

// fits checks, in the page loaded in ctx, that nothing is wider than the
// window: no horizontal scrollbar.
func fits(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	// Measured once the page and its style sheet have loaded (a page that
	// reloads itself may be between two loads).
	var w []int
	deadline := time.Now().Add(10 * time.Second)
	for len(w) == 0 {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`document.readyState === 'complete' &&
			[...document.styleSheets].some(s => s.cssRules.length > 0) ? [document.documentElement.scrollWidth,
			window.innerWidth, document.documentElement.clientWidth] : []`))
		if err != nil && time.Now().After(deadline) {
			t.Fatal(err)
		}
		if len(got) == 0 && time.Now().After(deadline) {
			t.Fatalf("%s: the page did not load with its style sheet", where)
		}
		w = got
		if len(w) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if w[1] != 1280 {
		t.Fatalf("%s: the window is %d px wide, want 1280", where, w[1])
	}
	if w[0] > w[2] {
		t.Errorf("%s: the document is %d px wide in a window of %d px: it scrolls sideways", where, w[0], w[2])
	}
}

// TestBrowserOperator drives what an operator does while batches run, at
// 1280×800: the pages fit the window; the page of a running batch reloads
// by itself and shows rows that moved meanwhile, and stops once the batch
// is finished; choosing a state shows only its rows; the progress bar
// shows failed rows apart; the queue monitor loads without a line logged
// as unauthorized.
func TestBrowserOperator(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	var logs syncbuf.Buffer
	b := setup(t, func(c *Config) {
		writable(c)
		c.Refresh = time.Second
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	const wide = "spring-campaign-" + "0123456789abcdef0123456789abcdef0123456789abcdef"
	b.seedWide(t, wide)
	b.seed(t, "b1", 40)
	ts := httptest.NewServer(b.h)
	t.Cleanup(ts.Close)
	page := ts.URL + "/batches/" + wide

	if err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/?token="+testToken),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-batch="b1"]`)),
	); err != nil {
		t.Fatal(err)
	}
	fits(t, ctx, "list")
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("jobs"))); err != nil {
		t.Fatal(err)
	}
	fits(t, ctx, "batch page")

	// The progress bar: done and failed rows apart.
	bar, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](`Object.fromEntries([...document.querySelectorAll(
		'tr[data-batch] [data-segment]')].map(r => [r.dataset.segment, Number(r.dataset.n)]))`))
	if err != nil {
		t.Fatal(err)
	}
	if bar["done"] != 12 || bar["failed"] != 6 || bar["running"] != 4 {
		t.Errorf("progress bar segments %v, want 12 done, 6 failed, 4 running", bar)
	}

	// The page reloads by itself, and shows a row that moved meanwhile.
	origin, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.timeOrigin`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Transition(t.Context(), wide, 18, batch.Change{From: []tasks.State{tasks.StateSubmitted},
		To: tasks.StateDone}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, err1 := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.timeOrigin`))
		st, err2 := chromedp.Run(ctx, chromedp.Evaluate[string](
			`(document.querySelector('tr[data-row="18"]') || {dataset: {}}).dataset.jobState || ''`))
		if err1 == nil && err2 == nil && o != origin && st == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page of a running batch did not reload by itself within 10 s (row 18: %q)", st)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Choosing a state shows only its rows.
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`a[data-filter="failed"]`)),
		chromedp.Click(chromedp.CSS(`a[data-filter="failed"]`)),
		chromedp.WaitVisible(chromedp.ID("filter-pager")),
	); err != nil {
		t.Fatal(err)
	}
	states, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('#jobs tbody tr[data-row]')].map(tr => tr.dataset.jobState)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 6 {
		t.Errorf("the failed rows' page shows %d rows, want 6: %v", len(states), states)
	}
	for _, st := range states {
		if st != "failed" {
			t.Errorf("the failed rows' page shows a %s row", st)
		}
	}
	fits(t, ctx, "failed rows")

	// A finished batch's page does not reload.
	for row := 18; row < 30; row++ {
		_, err := b.store.Transition(t.Context(), wide, row, batch.Change{From: []tasks.State{tasks.StateSubmitted,
			tasks.StateDone, tasks.StateQueued}, To: tasks.StateCanceled})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("jobs"))); err != nil {
		t.Fatal(err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('meta[http-equiv="refresh"]').length`))
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("the page of a finished batch reloads itself")
	}
	if cancel, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#cancel').length`)); err != nil || cancel != 0 {
		t.Errorf("a finished batch offers Cancel (%v)", err)
	}
	fits(t, ctx, "finished batch page")
	shot(t, ctx, "batch-page-1280.png")

	// The queue monitor, and the manifest the browser fetches for it.
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/monitor/"), chromedp.WaitReady("body")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "manifest.json") && time.Now().Before(deadline) {
		if got, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType('resource')
			.filter(e => e.name.endsWith('/manifest.json')).length`)); got > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "dashboard_unauthorized") {
		t.Errorf("loading the monitor logged a refusal:\n%s", logs.String())
	}
}

// shot keeps a screenshot of the window's view of the page in ctx under
// name: with go test -artifacts, and in $SEEDBATCH_TEST_ARTIFACTS (CI sets
// it).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("SEEDBATCH_TEST_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}

package dashboard

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/syncbuf"
	"github.com/seedbatch/seedbatch/tasks"
)

// finish makes every row of batch id terminal.
func (b *bundle) finish(t *testing.T, id string) {
	t.Helper()
	jobs, err := b.store.Jobs(t.Context(), id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.State.Terminal() {
			continue
		}
		if _, err := b.store.Transition(t.Context(), id, j.Row, batch.Change{From: []tasks.State{j.State},
			To: tasks.StateCanceled}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRefresh: the list and a running batch's page reload themselves,
// without the notice of an action; a finished batch's page does not, and
// the list stops once every batch on it is finished.
func TestRefresh(t *testing.T) {
	t.Parallel()
	b := setup(t, withToken)
	b.seed(t, "run", 20)
	b.seed(t, "fin", 20)
	b.finish(t, "fin")
	meta := regexp.MustCompile(`<meta http-equiv="refresh" id="refresh" content="(\d+); url=([^"]*)">`)
	for _, tc := range []struct {
		path, want string
	}{
		{"/", "10; url=/"},
		{"/batches/run?did=cancel&n=3&page=1", "10; url=/batches/run?page=1"},
		{"/batches/run?state=failed", "10; url=/batches/run?state=failed"},
		{"/batches/fin", ""},
	} {
		body := b.do(t, "GET", tc.path, nil, bearer()).Body.String()
		got := ""
		if m := meta.FindStringSubmatch(body); m != nil {
			got = m[1] + "; url=" + strings.ReplaceAll(m[2], "&amp;", "&")
		}
		if got != tc.want {
			t.Errorf("GET %s reloads with %q, want %q", tc.path, got, tc.want)
		}
	}
	b.finish(t, "run")
	if body := b.do(t, "GET", "/", nil, bearer()).Body.String(); meta.MatchString(body) {
		t.Error("the list of finished batches reloads itself")
	}
}

// TestBatchPageForOperators: rows filtered by state, prompts shortened,
// sizes for people, a progress bar with failed rows apart, a chart of
// the batch's minutes, links to its queues in the monitor, no cancel once
// finished and a retry that offers a state with rows first.
func TestBatchPageForOperators(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	b.seed(t, "b1", 40)
	long := strings.Repeat("a lighthouse in a storm, waves crashing over the rocks ", 10)
	if _, err := b.store.AddJobs(t.Context(), []batch.Job{{Batch: "b1", Row: 40, Line: 42, State: tasks.StateQueued,
		Spec: tasks.Spec{ID: "long", Prompt: long, Duration: 4}}}); err != nil {
		t.Fatal(err)
	}

	body := b.do(t, "GET", "/batches/b1?state=failed", nil, bearer()).Body.String()
	rows := regexp.MustCompile(`<tr data-row="(\d+)" data-job-state="([a-z]+)">`).FindAllStringSubmatch(body, -1)
	if len(rows) != 5 {
		t.Errorf("state=failed shows %d rows, want 5", len(rows))
	}
	for _, r := range rows {
		if r[2] != "failed" {
			t.Errorf("state=failed shows row %s, %s", r[1], r[2])
		}
	}
	if !strings.Contains(body, `data-filter="failed" aria-current="page"`) {
		t.Error("the chosen state is not marked")
	}
	for _, bad := range []string{"?state=nope", "?state=failed&from=-1", "?state=failed&from=x"} {
		if w := b.do(t, "GET", "/batches/b1"+bad, nil, bearer()); w.Code != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", bad, w.Code)
		}
	}

	body = b.do(t, "GET", "/batches/b1", nil, bearer()).Body.String()
	for _, want := range []string{
		// The long prompt, cut, with more of it in its tooltip.
		`<td data-field="prompt" class="prompt" title="` + string([]rune(strings.TrimSpace(long))[:promptTitle-1]) + `…">` +
			string([]rune(strings.TrimSpace(long))[:promptShown-1]) + `…</td>`,
		`<td data-field="prompt" class="prompt" title="a cat">a cat</td>`,
		`<small data-size="22">22 B</small>`,
		`data-segment="done" data-n="10"`,
		`data-segment="failed" data-n="7"`,
		`data-segment="running" data-n="3"`,
		`<figure class="chart" id="chart" data-minutes="31" data-finished="17" data-peak="3">`,
		`<a data-queue="submit" href="/monitor/queues/` + url.PathEscape(b.cfg.Queues.Submit) + `">`,
		`id="cancel"`,
		`<option value="ambiguous" selected>ambiguous (2)</option>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("batch page lacks %s", want)
		}
	}
	if strings.Count(body, " selected") != 1 {
		t.Error("more than one retry state chosen")
	}

	// Ambiguous rows resubmitted: failed comes first; then finished: no
	// cancel, and a retry of failed rows still offered.
	if w := b.do(t, "POST", "/batches/b1/retry", url.Values{"state": {"ambiguous"}}, bearer()); w.Code != http.StatusSeeOther {
		t.Fatalf("retry = %d", w.Code)
	}
	body = b.do(t, "GET", "/batches/b1", nil, bearer()).Body.String()
	if !strings.Contains(body, `<option value="failed" selected>failed (5)</option>`) {
		t.Error("after the ambiguous rows were resubmitted, failed is not the state offered")
	}
	b.finish(t, "b1")
	body = b.do(t, "GET", "/batches/b1", nil, bearer()).Body.String()
	if strings.Contains(body, `id="cancel"`) {
		t.Error("a finished batch offers Cancel")
	}
	if !strings.Contains(body, `id="retry"`) {
		t.Error("a finished batch with failed rows offers no retry")
	}
}

// TestRetryOffersNothingWithoutRows: a batch with no ambiguous, failed or
// budget rows has no retry form.
func TestRetryOffersNothingWithoutRows(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	if _, err := b.store.CreateBatch(t.Context(), batch.Meta{ID: "ok", Rows: 2, Source: "x.csv"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.AddJobs(t.Context(), []batch.Job{
		{Batch: "ok", Row: 0, State: tasks.StateQueued, Spec: tasks.Spec{ID: "a", Prompt: "one"}},
		{Batch: "ok", Row: 1, State: tasks.StateQueued, Spec: tasks.Spec{ID: "b", Prompt: "two"}},
	}); err != nil {
		t.Fatal(err)
	}
	body := b.do(t, "GET", "/batches/ok", nil, bearer()).Body.String()
	if strings.Contains(body, `id="retry"`) || !strings.Contains(body, `id="cancel"`) {
		t.Error("a batch with nothing to resubmit: want a cancel and no retry form")
	}
}

// TestMonitorManifest: the manifest browsers fetch for the monitor without
// credentials is served, and logs nothing; the monitor itself still needs
// credentials.
func TestMonitorManifest(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	b := setup(t, func(c *Config) { withToken(c); c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	w := b.do(t, "GET", "/monitor/manifest.json", nil, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"short_name"`) {
		t.Errorf("manifest without credentials = %d: %.80s", w.Code, w.Body)
	}
	if strings.Contains(logs.String(), "dashboard_unauthorized") {
		t.Errorf("the manifest was logged as unauthorized:\n%s", logs.String())
	}
	for _, p := range []string{"/monitor/", "/monitor/api/queues", "/monitor/manifest.json/../api/queues",
		"/monitor//manifest.json", "/monitor/asset-manifest.json"} {
		if w := b.do(t, "GET", p, nil, nil); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials = %d, want 401", p, w.Code)
		}
	}
	if w := b.do(t, "POST", "/monitor/manifest.json", nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("POST manifest without credentials = %d, want 401", w.Code)
	}
	if w := b.do(t, "GET", "/monitor/manifest.json", nil, http.Header{"Host": {"rebind.example"}}); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("manifest for another Host = %d, want 421", w.Code)
	}
}

// TestListChart: the list's chart adds up the minutes of its batches.
func TestListChart(t *testing.T) {
	t.Parallel()
	b := setup(t, withToken)
	b.seed(t, "b1", 30)
	b.seed(t, "b2", 30)
	body := b.do(t, "GET", "/", nil, bearer()).Body.String()
	want := `<figure class="chart" id="chart" data-minutes="181" data-finished="34" data-peak="6">`
	if !strings.Contains(body, want) {
		t.Errorf("list lacks %s", want)
	}
}

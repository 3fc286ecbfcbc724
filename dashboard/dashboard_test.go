package dashboard

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/syncbuf"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/tasks"
)

const (
	testToken    = "tok-3f9a1c0e77d24b5c"
	testUser     = "ops"
	testPassword = "pw-8c1d2e3f"
	// secretInURL appears in a fail message's URL and must never be shown.
	secretInURL = "sig-SECRET-1234"
	// testHost is the Host of test requests: the default listen address's.
	testHost = "127.0.0.1:8080"
)

// bundle is what a test needs.
type bundle struct {
	rs     *redistest.Server
	cfg    Config
	store  *batch.Store
	lim    *ratelimit.Limiter
	srv    *Server
	h      http.Handler
	outDir string
}

// setup builds a dashboard on a fresh Redis namespace; mod adjusts its
// config before New.
func setup(t *testing.T, mod func(*Config)) *bundle {
	t.Helper()
	rs := redistest.New(t)
	lim, err := ratelimit.New(rs.Client, ratelimit.Config{Prefix: rs.Prefix, Scope: "test"})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := asynq.ParseRedisURI(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cfg := Config{
		Redis: rs.Client, RedisOpt: opt, Store: batch.NewStore(rs.Client, rs.Prefix), Limiter: lim,
		Queues: queue.NamesFor(rs.Prefix), OutDir: out,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "# metrics") }),
		Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &bundle{rs: rs, cfg: cfg, store: cfg.Store, lim: lim, srv: srv, h: srv.Handler(), outDir: out}
}

// seed creates batch id with rows jobs: 10 done (with a file each), 5
// failed, 2 ambiguous, 3 submitted, the rest queued; a budget of 1000
// video seconds with 16 reserved.
func (b *bundle) seed(t *testing.T, id string, rows int) {
	t.Helper()
	ctx := t.Context()
	if _, err := b.store.CreateBatch(ctx, batch.Meta{ID: id, Source: "prompts.csv", Rows: rows,
		Created: time.Now().Add(-10 * time.Minute), RequestType: "async"}); err != nil {
		t.Fatal(err)
	}
	jobs := make([]batch.Job, rows)
	for i := range jobs {
		jobs[i] = batch.Job{Batch: id, Row: i, Line: i + 2, State: tasks.StateQueued,
			Spec: tasks.Spec{ID: fmt.Sprintf("clip-%04d", i), Prompt: "a cat", Duration: 8}}
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
	for i := range 10 {
		p := fmt.Sprintf("%s/clip-%04d.mp4", id, i)
		if err := os.MkdirAll(filepath.Join(b.outDir, id), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b.outDir, filepath.FromSlash(p)), []byte("video "+p), 0o644); err != nil {
			t.Fatal(err)
		}
		move(i, batch.Change{To: tasks.StateDone, TaskID: fmt.Sprintf("task-%d", i),
			Files: []batch.File{{Path: p, Size: int64(len("video " + p))}}})
	}
	for i := 10; i < 15; i++ {
		move(i, batch.Change{To: tasks.StateFailed, TaskID: fmt.Sprintf("task-%d", i), FailCode: "CONTENT_VIOLATION",
			FailMsg: "refused, see https://user:pw@cdn.example/hook/tok?api_key=" + secretInURL})
	}
	for i := 15; i < 17; i++ {
		move(i, batch.Change{To: tasks.StateAmbiguous, FailCode: "AMBIGUOUS", FailMsg: "timeout after the request was sent"})
	}
	for i := 17; i < 20; i++ {
		move(i, batch.Change{To: tasks.StateSubmitted, TaskID: fmt.Sprintf("task-%d", i)})
	}
	if err := b.store.SetBudget(ctx, id, 1000); err != nil {
		t.Fatal(err)
	}
	for row := range 2 {
		if ok, _, err := b.store.Reserve(ctx, id, row, 0, 8); err != nil || !ok {
			t.Fatalf("reserve: %v %v", ok, err)
		}
	}
}

// do sends one request through the handler, with Host testHost unless hdr
// names another.
func (b *bundle) do(t *testing.T, method, target string, body url.Values, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequestWithContext(t.Context(), method, target, nil)
	}
	r.Host = testHost
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v[0]
			continue
		}
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	return w
}

func bearer() http.Header { return http.Header{"Authorization": {"Bearer " + testToken}} }

func withToken(c *Config) { c.Token = testToken }

func writable(c *Config) { c.Token, c.AllowWrites = testToken, true }

var (
	rowPattern   = regexp.MustCompile(`(?s)<tr data-batch="([^"]+)">(.*?)</tr>`)
	statePattern = regexp.MustCompile(`data-state="([a-z]+)">(\d+)<`)
	fieldPattern = regexp.MustCompile(`data-field="([a-z-]+)"[^>]*>([^<]*)<`)
	hrefPattern  = regexp.MustCompile(`href="([^"]*)"`)
)

// batchRows parses the summary rows of a page: batch id -> data-state and
// data-field values.
func batchRows(t *testing.T, html string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, m := range rowPattern.FindAllStringSubmatch(html, -1) {
		v := map[string]string{}
		for _, s := range statePattern.FindAllStringSubmatch(m[2], -1) {
			v[s[1]] = s[2]
		}
		for _, f := range fieldPattern.FindAllStringSubmatch(m[2], -1) {
			v["field:"+f[1]] = strings.TrimSpace(f[2])
		}
		out[m[1]] = v
	}
	return out
}

// checkCounts compares a parsed summary row with the store's counts.
func checkCounts(t *testing.T, store *batch.Store, id string, row map[string]string) {
	t.Helper()
	_, counts, err := store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if row == nil {
		t.Fatalf("no summary row for batch %s", id)
	}
	for _, st := range tasks.States {
		if got, want := row[string(st)], strconv.Itoa(counts[st]); got != want {
			t.Errorf("batch %s state %s: page shows %q, store has %s", id, st, got, want)
		}
	}
	if got, want := row["field:terminal"], strconv.Itoa(counts.Terminal()); got != want {
		t.Errorf("terminal = %q, want %s", got, want)
	}
}

func TestPages(t *testing.T) {
	t.Parallel()
	now := time.Now().Add(30 * time.Second)
	b := setup(t, func(c *Config) { withToken(c); c.Now = func() time.Time { return now } })
	b.seed(t, "b1", 250)
	b.seed(t, "b2", 30)

	t.Run("list", func(t *testing.T) {
		w := b.do(t, "GET", "/", nil, bearer())
		if w.Code != http.StatusOK {
			t.Fatalf("GET / = %d: %s", w.Code, w.Body)
		}
		rows := batchRows(t, w.Body.String())
		if len(rows) != 2 {
			t.Fatalf("list shows %d batches, want 2", len(rows))
		}
		for _, id := range []string{"b1", "b2"} {
			checkCounts(t, b.store, id, rows[id])
		}
		r := rows["b1"]
		want := map[string]string{"field:rows": "250", "field:spent": "16", "field:limit": "1000", "field:source": "prompts.csv"}
		for k, v := range want {
			if r[k] != v {
				t.Errorf("b1 %s = %q, want %q", k, r[k], v)
			}
		}
		// 17 rows finished in the last 10 minutes, as batch.Pace (which
		// status uses too) says.
		meta, counts, err := b.store.Get(t.Context(), "b1")
		if err != nil {
			t.Fatal(err)
		}
		pace, err := b.store.Pace(t.Context(), meta, counts, now)
		if err != nil {
			t.Fatal(err)
		}
		if r["field:throughput"] != pace.Rate() || r["field:eta"] != pace.ETA() {
			t.Errorf("throughput %q, ETA %q; batch.Pace says %q, %q", r["field:throughput"], r["field:eta"], pace.Rate(), pace.ETA())
		}
		if tp, err := strconv.ParseFloat(r["field:throughput"], 64); err != nil || tp < 1.6 || tp > 2 {
			t.Errorf("throughput = %q, want about 1.8", r["field:throughput"])
		}
		if eta, err := time.ParseDuration(r["field:eta"]); err != nil || eta < 1*time.Hour+50*time.Minute || eta > 2*time.Hour+30*time.Minute {
			t.Errorf("eta = %q, want about 2h10m", r["field:eta"])
		}
		body := w.Body.String()
		if !strings.Contains(body, `id="inflight" data-inflight="0"`) {
			t.Error("in-flight leases not shown")
		}
		if strings.Index(body, `data-batch="b2"`) > strings.Index(body, `data-batch="b1"`) {
			t.Error("batches are not newest first")
		}
		if strings.Contains(body, `id="paused"`) {
			t.Error("pause banner shown while not paused")
		}
	})

	t.Run("batch page", func(t *testing.T) {
		w := b.do(t, "GET", "/batches/b1", nil, bearer())
		if w.Code != http.StatusOK {
			t.Fatalf("GET /batches/b1 = %d: %s", w.Code, w.Body)
		}
		body := w.Body.String()
		checkCounts(t, b.store, "b1", batchRows(t, body)["b1"])
		if n := strings.Count(body, "<tr data-row="); n != 100 {
			t.Errorf("page 1 shows %d rows, want 100", n)
		}
		for _, want := range []string{
			`<a data-file="b1/clip-0000.mp4" href="/files/b1/0/0">`,
			`data-row="10" data-job-state="failed"`,
			`<code data-field="fail-code">CONTENT_VIOLATION</code>`,
			`https://cdn.example/…`,
			`<code>task-17</code>`,
			`data-pages="3"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("batch page lacks %s", want)
			}
		}
		for _, secret := range []string{secretInURL, "user:pw", testToken} {
			if strings.Contains(body, secret) {
				t.Errorf("batch page shows %q", secret)
			}
		}
		if strings.Contains(body, `action="/batches/b1/cancel"`) {
			t.Error("action forms shown to a read-only dashboard")
		}
	})

	pages := []struct {
		name  string
		query string
		code  int
		first int
		rows  int
	}{
		{"page 2", "?page=2", 200, 100, 100},
		{"last page", "?page=3", 200, 200, 50},
		{"past the end is the last page", "?page=9", 200, 200, 50},
		{"zero", "?page=0", 400, 0, 0},
		{"not a number", "?page=x", 400, 0, 0},
	}
	for _, tc := range pages {
		t.Run("paging/"+tc.name, func(t *testing.T) {
			w := b.do(t, "GET", "/batches/b1"+tc.query, nil, bearer())
			if w.Code != tc.code {
				t.Fatalf("code = %d, want %d", w.Code, tc.code)
			}
			if tc.code != 200 {
				return
			}
			body := w.Body.String()
			if n := strings.Count(body, "<tr data-row="); n != tc.rows {
				t.Errorf("%d rows, want %d", n, tc.rows)
			}
			if !strings.Contains(body, fmt.Sprintf(`<tr data-row="%d"`, tc.first)) {
				t.Errorf("row %d missing", tc.first)
			}
		})
	}

	t.Run("unknown batch", func(t *testing.T) {
		if w := b.do(t, "GET", "/batches/nope", nil, bearer()); w.Code != http.StatusNotFound {
			t.Errorf("code = %d, want 404", w.Code)
		}
	})

	t.Run("headers", func(t *testing.T) {
		w := b.do(t, "GET", "/", nil, bearer())
		h := w.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("security headers missing: %v", h)
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("CSP = %q", h.Get("Content-Security-Policy"))
		}
		m := b.do(t, "GET", "/monitor/", nil, bearer())
		if m.Code != 200 || m.Header().Get("Content-Security-Policy") != "" || m.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("/monitor/: code %d, headers %v", m.Code, m.Header())
		}
	})
}

func TestAccess(t *testing.T) {
	t.Parallel()
	basic := func(u, p string) http.Header {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header
	}
	cookie := func(extra ...string) http.Header {
		h := http.Header{"Cookie": {cookieName + "=" + sessionValue(testToken)}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	none := func(*Config) {}
	withBasic := func(c *Config) { c.User, c.Password = testUser, testPassword }
	readOnlyToken := withToken
	cases := []struct {
		name         string
		mod          func(*Config)
		method, path string
		hdr          http.Header
		code         int
		challenge    string
	}{
		{"token: page without it", withToken, "GET", "/", nil, 401, "Bearer"},
		{"token: page with a wrong one", withToken, "GET", "/", http.Header{"Authorization": {"Bearer nope"}}, 401, "Bearer"},
		{"token: page with it", withToken, "GET", "/", bearer(), 200, ""},
		{"token: page with the cookie", withToken, "GET", "/", cookie(), 200, ""},
		{"token: a forged cookie", withToken, "GET", "/", http.Header{"Cookie": {cookieName + "=" + testToken}}, 401, ""},
		{"token: batch page without it", withToken, "GET", "/batches/b1", nil, 401, ""},
		{"token: metrics without it", withToken, "GET", "/metrics", nil, 401, ""},
		{"token: metrics with it", withToken, "GET", "/metrics", bearer(), 200, ""},
		{"token: monitor without it", withToken, "GET", "/monitor/", nil, 401, ""},
		{"token: monitor api without it", withToken, "GET", "/monitor/api/queues", nil, 401, ""},
		{"token: monitor with it", withToken, "GET", "/monitor/", bearer(), 200, ""},
		{"token: stylesheet without it", withToken, "GET", "/static/style.css", nil, 401, ""},
		{"token: stylesheet with it", withToken, "GET", "/static/style.css", bearer(), 200, ""},
		{"token: no listing of static", withToken, "GET", "/static/", bearer(), 404, ""},
		{"token: no templates", withToken, "GET", "/templates/list.html", bearer(), 404, ""},
		{"token: healthz is open", withToken, "GET", "/healthz", nil, 200, ""},
		{"token: readyz is open", withToken, "GET", "/readyz", nil, 200, ""},
		{"basic: without it", withBasic, "GET", "/", nil, 401, "Basic"},
		{"basic: wrong password", withBasic, "GET", "/", basic(testUser, "nope"), 401, "Basic"},
		{"basic: wrong user", withBasic, "GET", "/", basic("root", testPassword), 401, "Basic"},
		{"basic: right", withBasic, "GET", "/", basic(testUser, testPassword), 200, ""},
		{"none: reads are open", none, "GET", "/batches/b1", nil, 200, ""},
		{"none: writes are refused", func(c *Config) { c.AllowWrites = true }, "POST", "/batches/b1/cancel", nil, 403, ""},
		{"none: monitor writes are refused", func(c *Config) { c.AllowWrites = true }, "POST", "/monitor/api/queues/x:pause", nil, 403, ""},
		{"read-only: cancel with credentials", readOnlyToken, "POST", "/batches/b1/cancel", bearer(), 403, ""},
		{"read-only: pause with credentials", readOnlyToken, "POST", "/submitting/pause", bearer(), 403, ""},
		{"read-only: monitor write with credentials", readOnlyToken, "POST", "/monitor/api/queues/x:pause", bearer(), 403, ""},
		{"read-only: monitor delete with credentials", readOnlyToken, "DELETE", "/monitor/api/queues/x", bearer(), 403, ""},
		{"writable: cancel without credentials", writable, "POST", "/batches/b1/cancel", nil, 401, "Bearer"},
		{"writable: cross-site cookie post", writable, "POST", "/batches/b1/cancel", cookie("Sec-Fetch-Site", "cross-site"), 403, ""},
		{"writable: foreign origin cookie post", writable, "POST", "/batches/b1/cancel", cookie("Origin", "https://evil.example"), 403, ""},
		{"writable: basic cross-site post", func(c *Config) { withBasic(c); c.AllowWrites = true }, "POST", "/submitting/resume",
			func() http.Header {
				h := basic(testUser, testPassword)
				h.Set("Sec-Fetch-Site", "cross-site")
				return h
			}(), 403, ""},
		{"writable: same-origin cookie post", writable, "POST", "/submitting/resume", cookie("Sec-Fetch-Site", "same-origin"), 303, ""},
		{"writable: basic post", func(c *Config) { withBasic(c); c.AllowWrites = true }, "POST", "/submitting/resume", basic(testUser, testPassword), 303, ""},
		{"writable: get on an action", writable, "GET", "/batches/b1/cancel", bearer(), 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.mod)
			b.seed(t, "b1", 20)
			w := b.do(t, tc.method, tc.path, nil, tc.hdr)
			if w.Code != tc.code {
				t.Fatalf("%s %s = %d, want %d: %s", tc.method, tc.path, w.Code, tc.code, w.Body)
			}
			if got := strings.Join(w.Header().Values("WWW-Authenticate"), ", "); tc.challenge != "" && !strings.Contains(got, tc.challenge) {
				t.Errorf("WWW-Authenticate = %q, want %s", got, tc.challenge)
			}
			for _, secret := range []string{testToken, testPassword, sessionValue(testToken)} {
				if strings.Contains(w.Body.String(), secret) {
					t.Errorf("response body shows a secret")
				}
			}
			_, counts, _ := b.store.Get(t.Context(), "b1")
			if tc.code != 303 && counts[tasks.StateCanceled] != 0 {
				t.Errorf("a refused request canceled %d rows", counts[tasks.StateCanceled])
			}
		})
	}
}

// TestHostCheck is DNS rebinding: a page on the attacker's name, pointed
// at the dashboard's address, must get no page, no file, no metrics, no
// monitor, whatever the credentials, unless that name is allowed.
func TestHostCheck(t *testing.T) {
	t.Parallel()
	const rebind = "rebind.attacker.example"
	paths := []string{"/", "/batches/b1", "/files/b1/3/0", "/metrics", "/monitor/", "/monitor/api/queues", "/static/style.css"}
	var logs syncbuf.Buffer
	refused := setup(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) }) // loopback, no credentials
	refused.seed(t, "b1", 20)
	allowed := setup(t, func(c *Config) { c.AllowedHosts = []string{"Rebind.Attacker.Example"} })
	allowed.seed(t, "b1", 20)
	for _, host := range []string{rebind, rebind + ":8080", "REBIND.attacker.example.:80"} {
		for _, p := range paths {
			w := refused.do(t, "GET", p, nil, http.Header{"Host": {host}})
			if w.Code != http.StatusMisdirectedRequest {
				t.Errorf("Host %s: GET %s = %d, want 421", host, p, w.Code)
			}
			if body := w.Body.String(); !strings.Contains(body, AllowedHostsSetting) || strings.Contains(body, "b1") ||
				strings.Contains(body, "video") || strings.Contains(body, "seedbatch_") {
				t.Errorf("Host %s: GET %s answered %q", host, p, body)
			}
			if w := allowed.do(t, "GET", p, nil, http.Header{"Host": {host}}); w.Code != http.StatusOK {
				t.Errorf("allowed Host %s: GET %s = %d, want 200", host, p, w.Code)
			}
		}
	}
	if !strings.Contains(logs.String(), "host_refused") || !strings.Contains(logs.String(), rebind) {
		t.Errorf("no log line for a refused host:\n%s", logs.String())
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if w := refused.do(t, "GET", p, nil, http.Header{"Host": {rebind}}); w.Code != http.StatusOK {
			t.Errorf("GET %s from any Host = %d, want 200", p, w.Code)
		}
	}

	// The same over a real connection, as a rebinding page's browser sends it.
	ts := httptest.NewServer(refused.h)
	t.Cleanup(ts.Close)
	for host, code := range map[string]int{rebind: 421, ts.Listener.Addr().String(): 200, "localhost": 200} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.URL+"/files/b1/3/0", nil)
		req.Host = host
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("over HTTP, Host %s: %d, want %d", host, resp.StatusCode, code)
		}
	}

	// Which names each kind of listen address answers to.
	cases := []struct {
		listen, host string
		code         int
	}{
		{"127.0.0.1:8080", "localhost:8080", 200},
		{"127.0.0.1:8080", "[::1]:9000", 200},
		{"localhost:8080", "127.0.0.1", 200},
		{"0.0.0.0:8080", "localhost:8080", 200},
		{"0.0.0.0:8080", rebind, 421},
		{":8080", "127.0.0.1:8080", 200},
		{"192.0.2.10:8080", "192.0.2.10:8080", 200},
		{"192.0.2.10:8080", "localhost:8080", 421},
		{"dash.internal:8080", "dash.internal", 200},
		{"dash.internal:8080", rebind, 421},
	}
	for _, tc := range cases {
		b := setup(t, func(c *Config) { c.Listen, c.Token = tc.listen, testToken })
		if w := b.do(t, "GET", "/", nil, http.Header{"Host": {tc.host}, "Authorization": {"Bearer " + testToken}}); w.Code != tc.code {
			t.Errorf("listening on %s, Host %s: %d, want %d", tc.listen, tc.host, w.Code, tc.code)
		}
	}
	if _, err := New(func() Config { c := refused.cfg; c.AllowedHosts = []string{"https://x.example"}; return c }()); err == nil {
		t.Error("New accepted an allowed host with a scheme")
	}
}

func TestTokenQueryLogin(t *testing.T) {
	t.Parallel()
	b := setup(t, withToken)
	w := b.do(t, "GET", "/batches/b1?page=2&token="+testToken, nil, nil)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("code = %d, want 303", w.Code)
	}
	if loc := w.Header().Get("Location"); loc != "/batches/b1?page=2" {
		t.Errorf("Location = %q: the token must not stay in the URL", loc)
	}
	res := w.Result()
	var got *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == cookieName {
			got = c
		}
	}
	if got == nil || got.Value == testToken || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie = %+v", got)
	}
	if w := b.do(t, "GET", "/?token=wrong", nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a wrong token in the query: %d, want 401", w.Code)
	}
	if w := b.do(t, "POST", "/submitting/pause?token="+testToken, url.Values{}, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("a token in a POST query: %d, want 401", w.Code)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	b.seed(t, "b1", 40)
	w := b.do(t, "POST", "/batches/b1/cancel", url.Values{}, bearer())
	if w.Code != http.StatusSeeOther {
		t.Fatalf("cancel = %d: %s", w.Code, w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "/batches/b1?did=cancel&n=20" {
		t.Errorf("Location = %q", loc)
	}
	meta, counts, err := b.store.Get(t.Context(), "b1")
	if err != nil {
		t.Fatal(err)
	}
	if !meta.Canceled || counts[tasks.StateQueued] != 0 || counts[tasks.StateCanceled] != 20 || counts[tasks.StateSubmitted] != 3 {
		t.Errorf("after cancel: canceled=%v counts=%v", meta.Canceled, counts)
	}
	page := b.do(t, "GET", "/batches/b1?did=cancel&n=20", nil, bearer()).Body.String()
	if !strings.Contains(page, `data-canceled="true"`) || !strings.Contains(page, "20 rows that were not submitted are now canceled") {
		t.Error("batch page does not show the cancel")
	}
	if w := b.do(t, "POST", "/batches/nope/cancel", url.Values{}, bearer()); w.Code != http.StatusNotFound {
		t.Errorf("cancel of an unknown batch = %d, want 404", w.Code)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	b.seed(t, "b1", 40)
	// A row whose video was created (and billed) but expired: never rebilled from here.
	if _, err := b.store.Transition(t.Context(), "b1", 20, batch.Change{From: []tasks.State{tasks.StateQueued},
		To: tasks.StateFailed, TaskID: "task-20", FailCode: tasks.CodeResultExpired, FailMsg: "expired"}); err != nil {
		t.Fatal(err)
	}
	w := b.do(t, "POST", "/batches/b1/retry", url.Values{"state": {"failed"}}, bearer())
	if w.Code != http.StatusSeeOther {
		t.Fatalf("retry = %d: %s", w.Code, w.Body)
	}
	if loc := w.Header().Get("Location"); loc != "/batches/b1?did=retry&n=5&skipped=1" {
		t.Errorf("Location = %q", loc)
	}
	_, counts, _ := b.store.Get(t.Context(), "b1")
	if counts[tasks.StateFailed] != 1 || counts[tasks.StateQueued] != 24 {
		t.Errorf("after retry: %v", counts)
	}
	if j, _ := b.store.Job(t.Context(), "b1", 20); j.State != tasks.StateFailed || j.Attempt != 0 {
		t.Errorf("an expired video was created again: %+v", j)
	}
	page := b.do(t, "GET", "/batches/b1?did=retry&n=5&skipped=1", nil, bearer()).Body.String()
	if !strings.Contains(page, "5 rows were queued to be submitted again. 1 failed rows were left alone") {
		t.Error("batch page does not say which rows were skipped")
	}
	j, err := b.store.Job(t.Context(), "b1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != tasks.StateQueued || j.Attempt != 1 || j.TaskID != "" || j.FailCode != "" {
		t.Errorf("row 10 after retry: %+v", j)
	}
	insp := asynq.NewInspectorFromRedisClient(b.rs.Client)
	pending, err := insp.ListPendingTasks(b.cfg.Queues.Submit)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 5 {
		t.Errorf("%d submit tasks queued, want 5", len(pending))
	}
	for _, bad := range []string{"", "done", "queued"} {
		if w := b.do(t, "POST", "/batches/b1/retry", url.Values{"state": {bad}}, bearer()); w.Code != http.StatusBadRequest {
			t.Errorf("retry state %q = %d, want 400", bad, w.Code)
		}
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	ctx := t.Context()
	w := b.do(t, "POST", "/submitting/pause", url.Values{"reason": {"provider key rotated"}}, bearer())
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/?did=pause" {
		t.Fatalf("pause = %d %q", w.Code, w.Header().Get("Location"))
	}
	reason, paused, err := b.lim.Paused(ctx)
	if err != nil || !paused || reason != "provider key rotated" {
		t.Fatalf("after pause: %q %v %v", reason, paused, err)
	}
	insp := asynq.NewInspectorFromRedisClient(b.rs.Client)
	if qi, err := insp.GetQueueInfo(b.cfg.Queues.Submit); err == nil && !qi.Paused {
		t.Error("the submit queue is not paused")
	}
	page := b.do(t, "GET", "/", nil, bearer()).Body.String()
	if !strings.Contains(page, `id="paused" data-reason="provider key rotated"`) {
		t.Error("no pause banner")
	}
	if !strings.Contains(page, `action="/submitting/resume"`) {
		t.Error("no resume form for a writer")
	}
	w = b.do(t, "POST", "/submitting/resume", url.Values{}, bearer())
	if w.Code != http.StatusSeeOther {
		t.Fatalf("resume = %d: %s", w.Code, w.Body)
	}
	if _, paused, _ := b.lim.Paused(ctx); paused {
		t.Error("still paused after resume")
	}
	if strings.Contains(b.do(t, "GET", "/", nil, bearer()).Body.String(), `id="paused"`) {
		t.Error("banner still shown after resume")
	}
	w = b.do(t, "POST", "/submitting/pause", url.Values{}, bearer())
	if reason, _, _ := b.lim.Paused(ctx); w.Code != http.StatusSeeOther || reason != "paused from the dashboard" {
		t.Errorf("pause without a reason: %d %q", w.Code, reason)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t, withToken)
	if w := b.do(t, "GET", "/healthz", nil, nil); w.Code != 200 || strings.TrimSpace(w.Body.String()) != "ok" {
		t.Errorf("healthz = %d %q", w.Code, w.Body)
	}
	if w := b.do(t, "GET", "/readyz", nil, nil); w.Code != 200 {
		t.Errorf("readyz = %d, want 200", w.Code)
	}

	// A client pointed at a closed port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dead := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })
	d := setup(t, func(c *Config) { c.Redis = dead; c.RedisOpt = nil })
	start := time.Now()
	w := d.do(t, "GET", "/readyz", nil, nil)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with Redis down = %d, want 503", w.Code)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("readyz took %v", time.Since(start))
	}
	if w := d.do(t, "GET", "/healthz", nil, nil); w.Code != 200 {
		t.Errorf("healthz with Redis down = %d, want 200", w.Code)
	}
}

func TestCheckListen(t *testing.T) {
	t.Parallel()
	tok := Config{Token: testToken}
	userPass := Config{User: testUser, Password: testPassword}
	userOnly := Config{User: testUser}
	cases := []struct {
		addr string
		cfg  Config
		ok   bool
	}{
		{"127.0.0.1:8080", Config{}, true},
		{"127.1.2.3:8080", Config{}, true},
		{"[::1]:8080", Config{}, true},
		{"localhost:8080", Config{}, true},
		{"LOCALHOST:8080", Config{}, true},
		{":8080", Config{}, false},
		{"0.0.0.0:8080", Config{}, false},
		{"[::]:8080", Config{}, false},
		{"203.0.113.7:8080", Config{}, false},
		{"10.0.0.5:8080", Config{}, false},
		{"dashboard.example:8080", Config{}, false},
		{"localhost.example:8080", Config{}, false},
		{":8080", tok, true},
		{"0.0.0.0:8080", userPass, true},
		{"0.0.0.0:8080", userOnly, false},
		{"no-port", Config{}, false},
		{"no-port", tok, false},
	}
	for _, tc := range cases {
		err := CheckListen(tc.addr, tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, token=%v user=%v) = %v, want ok=%v", tc.addr, tc.cfg.Token != "", tc.cfg.User != "", err, tc.ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no redis", func(c *Config) { c.Redis = nil }, "Redis"},
		{"no store", func(c *Config) { c.Store = nil }, "Store"},
		{"no limiter", func(c *Config) { c.Limiter = nil }, "Limiter"},
		{"no queues", func(c *Config) { c.Queues = queue.Names{} }, "Queues"},
		{"user without password", func(c *Config) { c.User = "ops" }, "Password"},
		{"password without user", func(c *Config) { c.Password = "x" }, "User"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := b.cfg
			tc.mod(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestFormatters(t *testing.T) {
	t.Parallel()
	p := tasks.JobPayload{Batch: "b1", Row: 7, Attempt: 1, Poll: 3, TaskID: "task-9"}.Marshal()
	if got, want := formatPayload(tasks.TypePoll, p), "batch=b1 row=7 attempt=1 poll=3 task=task-9"; got != want {
		t.Errorf("formatPayload = %q, want %q", got, want)
	}
	for _, tc := range []struct{ typ, payload string }{
		{tasks.TypeSubmit, `{"batch":"b1","row":1,"api_key":"sk-live-123"}`},
		{"other", `{"api_key":"sk-live-123"}`},
		{tasks.TypeSubmit, `not json sk-live-123`},
	} {
		if got := formatPayload(tc.typ, []byte(tc.payload)); strings.Contains(got, "sk-live") {
			t.Errorf("formatPayload(%s, %s) = %q", tc.typ, tc.payload, got)
		}
	}
	if got := formatResult("x", []byte("https://cdn/secret")); strings.Contains(got, "secret") {
		t.Errorf("formatResult = %q", got)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"no url here":                     "no url here",
		"see https://cdn.example/a?sig=x": "see https://cdn.example/…",
		`Get "http://user:pw@h.example:8080/hook/tok_ABC?api_key=sk" : EOF`: `Get "http://h.example:8080/…" : EOF`,
		"at https://h.example":  "at https://h.example",
		"weird ftp://?x=secret": "weird ftp://…",
	}
	for in, want := range cases {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMonitor(t *testing.T) {
	t.Parallel()
	b := setup(t, writable)
	b.seed(t, "b1", 20)
	// Failed rows go back to the submit queue, so asynqmon has tasks to show.
	if w := b.do(t, "POST", "/batches/b1/retry", url.Values{"state": {"failed"}}, bearer()); w.Code != http.StatusSeeOther {
		t.Fatalf("retry = %d", w.Code)
	}
	q := b.cfg.Queues.Submit
	w := b.do(t, "GET", "/monitor/api/queues/"+q+"/pending_tasks", nil, bearer())
	if w.Code != http.StatusOK {
		t.Fatalf("pending tasks = %d: %s", w.Code, w.Body)
	}
	if body := w.Body.String(); !strings.Contains(body, "batch=b1 row=10 attempt=1") || strings.Contains(body, `\"batch\"`) {
		t.Errorf("payloads are not formatted: %s", body)
	}
	if w := b.do(t, "POST", "/monitor/api/queues/"+q+":pause", nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("monitor write without credentials = %d, want 401", w.Code)
	}
	if w := b.do(t, "POST", "/monitor/api/queues/"+q+":pause", nil, bearer()); w.Code >= 300 {
		t.Errorf("monitor write with credentials = %d: %s", w.Code, w.Body)
	}
	insp := asynq.NewInspectorFromRedisClient(b.rs.Client)
	if qi, err := insp.GetQueueInfo(q); err != nil || !qi.Paused {
		t.Errorf("queue not paused through the monitor: %v %v", qi, err)
	}
	page := b.do(t, "GET", "/monitor/", nil, bearer()).Body.String()
	if strings.Contains(page, testToken) {
		t.Error("the monitor page shows the token")
	}
}

package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// page is the data of every template.
type page struct {
	Title       string
	Paused      bool
	PauseReason string
	InFlight    int
	MaxInFlight int
	// Accounts are the accounts' leases and pauses, when there are several.
	Accounts   []accountView
	TotalSpent int
	TotalLimit int
	CanWrite   bool
	Notice     string
	States     []tasks.State
	Batches    []summary
	// Simulated are the batches of simulated runs (Config.Simulated).
	Simulated []summary
	Batch     *summary
	Jobs      []jobView
	Pager     pager
	// Retry lists the states an operator may resubmit, with their rows;
	// the first one with rows is chosen.
	Retry []retryOption
	// Filter is the state the batch page's rows are filtered by ("" for all).
	Filter filter
	// Chart is the page's chart of rows finished and rows in flight.
	Chart *chart
	// Refresh is how many seconds until the page reloads itself (0: never),
	// and RefreshURL what it loads.
	Refresh    int
	RefreshURL string
	// Monitor links to the queues in asynqmon, when it is served.
	Monitor []link
	Status  int
	Error   string
}

// summary is one batch's line on the list and the head of its page.
type summary struct {
	ID, Source, RequestType, Account string
	// ShowAccount is set when the batch's account is worth naming: there
	// are several, or it is not the default one.
	ShowAccount    bool
	Created        time.Time
	Rows, Terminal int
	Percent        int
	States         []stateCount
	counts         batch.Counts
	// Bar is the progress bar: done, no video (failed, ambiguous),
	// skipped (rejected, canceled) and running rows, apart.
	Bar            []segment
	PerMinute, ETA string
	Spent, Limit   int
	Canceled       bool
	// Finished is set when every row is terminal.
	Finished bool
	meta     batch.Meta
	series   batch.Series
}

// segment is one part of a progress bar, its X and W in percent.
type segment struct {
	Name, Label string
	N           int
	X, W        float64
}

// barParts are the segments of the progress bar, in order.
var barParts = []struct {
	name, label string
	states      []tasks.State
}{
	{"done", "done", []tasks.State{tasks.StateDone}},
	{"failed", "failed or ambiguous", []tasks.State{tasks.StateFailed, tasks.StateAmbiguous}},
	{"skipped", "rejected or canceled", []tasks.State{tasks.StateRejected, tasks.StateCanceled}},
	{"running", "submitting, submitted or downloading", []tasks.State{tasks.StateSubmitting, tasks.StateSubmitted,
		tasks.StateSucceeded}},
}

// retryOption is one choice of the retry form.
type retryOption struct {
	State    tasks.State
	N        int
	Selected bool
}

// filter is the batch page's choice of rows.
type filter struct {
	// State is the state shown ("" for every row), From the row the page
	// starts looking from, Next the row the next page does (-1: none).
	State      tasks.State
	From, Next int
	// Choices are the states with rows, to choose from.
	Choices []stateCount
}

type link struct {
	Href, Text string
}

type stateCount struct {
	State tasks.State
	N     int
}

// jobView is one row of the batch page.
type jobView struct {
	Row, Line, Attempt int
	ID                 string
	// Prompt is the row's prompt cut to promptShown runes; PromptTitle
	// longer, for its tooltip.
	Prompt, PromptTitle string
	State               tasks.State
	TaskID              string
	FailCode, FailMsg   string
	Files               []fileLink
}

type fileLink struct {
	Href, Name string
	Size       int64
	// Human is the size for people: 1.2 MB.
	Human string
}

// Prompt lengths on the batch page, in runes.
const (
	promptShown = 60
	promptTitle = 500
)

// shorten cuts s to n runes, marking a cut with an ellipsis.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// humanBytes writes a size in decimal units: 950 B, 1.2 kB, 34.5 MB.
func humanBytes(n int64) string {
	if n < 1000 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, unit := float64(n), ""
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		v, unit = v/1000, u
		if v < 999.95 {
			break
		}
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// pager numbers pages from 1; Prev and Next are 0 when there is none.
type pager struct {
	Page, Pages, Prev, Next int
}

func newPager(r *http.Request, items int) (pager, int, error) {
	p := 1
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return pager{}, 0, fmt.Errorf("page %q: want a number from 1", v)
		}
		p = n
	}
	pages := max(1, (items+PageSizeDefault-1)/PageSizeDefault)
	p = min(p, pages)
	pg := pager{Page: p, Pages: pages}
	if p > 1 {
		pg.Prev = p - 1
	}
	if p < pages {
		pg.Next = p + 1
	}
	return pg, (p - 1) * PageSizeDefault, nil
}

// retryStates are the states an operator may resubmit.
var retryStates = []tasks.State{tasks.StateAmbiguous, tasks.StateFailed, tasks.StateBudget}

// tableData is the data of the "summaries" template.
type tableData struct {
	States []tasks.State
	Rows   []summary
}

var funcs = template.FuncMap{
	"table": func(states []tasks.State, rows []summary) tableData { return tableData{states, rows} },
	"one":   func(s *summary) []summary { return []summary{*s} },
	// base is the last element of a file's path, as written on any system.
	"base": func(p string) string { return p[strings.LastIndexAny(p, `/\`)+1:] },
	"hasRows": func(opts []retryOption) bool {
		for _, o := range opts {
			if o.N > 0 {
				return true
			}
		}
		return false
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}

// common fills the fields every page shows.
func (s *Server) common(ctx context.Context, r *http.Request, title string) (page, error) {
	p := page{Title: title, CanWrite: s.canWrite(r), States: tasks.States,
		MaxInFlight: s.cfg.Limiter.Config().MaxInFlight}
	reason, paused, err := s.cfg.Limiter.Paused(ctx)
	if err != nil {
		return p, err
	}
	p.Paused, p.PauseReason = paused, redact(reason)
	if p.InFlight, err = s.cfg.Limiter.InFlight(ctx); err != nil {
		return p, err
	}
	b, err := s.cfg.Store.Budget(ctx, "")
	if err != nil {
		return p, err
	}
	p.TotalSpent, p.TotalLimit = b.TotalSpent, b.TotalLimit
	p.Notice = notice(r.URL.Query())
	if len(s.cfg.Accounts) > 1 {
		for _, a := range s.cfg.Accounts {
			v := accountView{Name: a.Name, MaxInFlight: a.Limiter.Config().MaxInFlight}
			if v.PauseReason, v.Paused, err = a.Limiter.Paused(ctx); err != nil {
				return p, err
			}
			v.PauseReason = redact(v.PauseReason)
			if v.InFlight, err = a.Limiter.InFlight(ctx); err != nil {
				return p, err
			}
			p.Accounts = append(p.Accounts, v)
		}
	}
	return p, nil
}

// accountView is one account's line in the header, and its banner when
// its submitting is paused.
type accountView struct {
	Name                  string
	Paused                bool
	PauseReason           string
	InFlight, MaxInFlight int
}

// notice turns the query an action redirects with into a fixed message,
// so no text of a link can be shown as the dashboard's own.
func notice(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	switch q.Get("did") {
	case "cancel":
		return fmt.Sprintf("Batch canceled: %d rows that were not submitted are now canceled.", n)
	case "retry":
		msg := fmt.Sprintf("%d rows were queued to be submitted again.", n)
		if skipped, _ := strconv.Atoi(q.Get("skipped")); skipped > 0 {
			msg += fmt.Sprintf(" %d failed rows were left alone: their tasks may have been billed (see their failure);"+
				" seedbatch retry --state failed --rebill creates them again.", skipped)
		}
		return msg
	case "pause":
		return "Submitting is paused."
	case "resume":
		return "Submitting is resumed."
	}
	return ""
}

// summarize reads one batch's record, counts and budget; with series, also
// its minute series (for a chart), which its pace is then measured from,
// unless the batch finished before since (no chart from since on shows it).
func (s *Server) summarize(ctx context.Context, id string, series bool, since time.Time) (summary, error) {
	return s.summarizeIn(ctx, s.cfg.Store, id, series, since)
}

// summarizeIn is summarize on another store (the simulated batches').
func (s *Server) summarizeIn(ctx context.Context, store *batch.Store, id string, series bool, since time.Time) (summary, error) {
	meta, counts, err := store.Get(ctx, id)
	if err != nil {
		return summary{}, err
	}
	b, err := store.Budget(ctx, id)
	if err != nil {
		return summary{}, err
	}
	sum := summary{ID: meta.ID, Source: meta.Source, RequestType: meta.RequestType, Account: meta.Account, Created: meta.Created,
		Rows: max(meta.Rows, counts.Total()), Terminal: counts.Terminal(), Spent: b.BatchSpent, Limit: b.BatchLimit,
		Canceled: meta.Canceled, meta: meta, counts: counts}
	sum.Finished = sum.Terminal >= sum.Rows
	sum.ShowAccount = len(s.cfg.Accounts) > 1 || meta.Account != batch.AccountDefault
	for _, st := range tasks.States {
		sum.States = append(sum.States, stateCount{State: st, N: counts[st]})
	}
	sum.Percent = sum.Terminal * 100 / max(sum.Rows, 1)
	x := 0.0
	for _, part := range barParts {
		n := counts.Sum(part.states...)
		w := float64(n) * 100 / float64(max(sum.Rows, 1))
		sum.Bar = append(sum.Bar, segment{Name: part.name, Label: part.label, N: n, X: round1(x), W: round1(w)})
		x += w
	}
	now := s.cfg.Now()
	var pace batch.Pace
	if series && (!sum.Finished || !meta.Finished.Before(since)) {
		if sum.series, err = store.Series(ctx, id); err != nil {
			return summary{}, err
		}
		pace = batch.NewPace(meta, counts, sum.series, now)
	} else if pace, err = store.Pace(ctx, meta, counts, now); err != nil {
		return summary{}, err
	}
	sum.PerMinute, sum.ETA = pace.Rate(), pace.ETA()
	return sum, nil
}

// refresh makes a page of running batches reload itself, without the
// notice of an action it was redirected to after.
func (s *Server) refresh(p *page, r *http.Request) {
	if s.cfg.Refresh <= 0 {
		return
	}
	p.Refresh = max(1, int(s.cfg.Refresh.Round(time.Second)/time.Second))
	q := r.URL.Query()
	for _, k := range []string{"did", "n", "skipped", "token"} {
		q.Del(k)
	}
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	p.RefreshURL = u.String()
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := s.common(ctx, r, "Batches")
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	ids, err := s.cfg.Store.Batches(ctx)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	pg, from, err := newPager(r, len(ids))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	p.Pager = pg
	now := s.cfg.Now()
	since := now.Add(-ListChartSpan)
	var series []batch.Series
	running := false
	// Newest first.
	for i := len(ids) - 1 - from; i >= 0 && i > len(ids)-1-from-PageSizeDefault; i-- {
		sum, err := s.summarize(ctx, ids[i], true, since)
		if errors.Is(err, batch.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		p.Batches = append(p.Batches, sum)
		running = running || !sum.Finished
		if sum.series != nil {
			series = append(series, sum.series)
		}
	}
	if len(p.Batches) > 0 {
		p.Chart = newChart("chart", fmt.Sprintf("Rows finished a minute and tasks in flight, the batches of this page, last %s",
			spanText(ListChartSpan)), batch.Combine(since, now, series...), p.MaxInFlight)
	}
	if running {
		s.refresh(&p, r)
	}
	if p.Simulated, err = s.simulated(ctx); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, "list", http.StatusOK, p)
}

// spanText says a whole number of hours or minutes: "3 hours".
func spanText(d time.Duration) string {
	if d%time.Hour == 0 {
		if d == time.Hour {
			return "hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}

// simulated summarizes the newest batches of simulated runs, if the
// dashboard has their store.
func (s *Server) simulated(ctx context.Context) ([]summary, error) {
	if s.cfg.Simulated == nil {
		return nil, nil
	}
	ids, err := s.cfg.Simulated.Batches(ctx)
	if err != nil {
		return nil, err
	}
	var out []summary
	for i := len(ids) - 1; i >= 0 && len(out) < PageSizeDefault; i-- {
		sum, err := s.summarizeIn(ctx, s.cfg.Simulated, ids[i], false, time.Time{})
		if errors.Is(err, batch.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sum)
	}
	return out, nil
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	p, err := s.common(ctx, r, "Batch "+id)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	sum, err := s.summarize(ctx, id, true, time.Time{})
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	p.Batch = &sum
	end := s.cfg.Now()
	if sum.Finished && !sum.meta.Finished.IsZero() {
		end = sum.meta.Finished
	}
	var life batch.Series
	if len(sum.series) > 0 {
		// From the batch's creation (its first move, if earlier), over
		// chartMinSpan at least, so that a few minutes are not drawn as
		// wide as hours.
		from := sum.meta.Created
		if first := sum.series[0].Start; first.Before(from) {
			from = first
		}
		if early := end.Add(-chartMinSpan); early.Before(from) {
			from = early
		}
		life = batch.Combine(from, end, sum.series)
	}
	p.Chart = newChart("chart", "Rows finished a minute and tasks in flight, over the batch's life", life, p.MaxInFlight)
	for _, st := range retryStates {
		p.Retry = append(p.Retry, retryOption{State: st, N: sum.counts[st]})
	}
	for i := range p.Retry {
		if p.Retry[i].N > 0 {
			p.Retry[i].Selected = true
			break
		}
	}
	for _, c := range sum.States {
		if c.N > 0 {
			p.Filter.Choices = append(p.Filter.Choices, c)
		}
	}
	if s.monRO != nil {
		for _, q := range []struct{ name, text string }{{s.cfg.Queues.Submit, "submit"}, {s.cfg.Queues.Poll, "poll"},
			{s.cfg.Queues.Download, "download"}} {
			p.Monitor = append(p.Monitor, link{Href: MonitorPath + "/queues/" + url.PathEscape(q.name), Text: q.text})
		}
	}
	q := r.URL.Query()
	if v := q.Get("state"); v != "" {
		st := tasks.State(v)
		if !st.Valid() {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("state %q: not a row state", v))
			return
		}
		from := 0
		if v := q.Get("from"); v != "" {
			if from, err = strconv.Atoi(v); err != nil || from < 0 {
				s.fail(w, r, http.StatusBadRequest, fmt.Errorf("from %q: want a row number from 0", v))
				return
			}
		}
		jobs, next, err := s.cfg.Store.JobsInState(ctx, id, st, from, PageSizeDefault, FilterScanDefault)
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		p.Filter.State, p.Filter.From, p.Filter.Next = st, from, next
		for _, j := range jobs {
			p.Jobs = append(p.Jobs, viewJob(j))
		}
	} else {
		pg, from, err := newPager(r, sum.Rows)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, err)
			return
		}
		p.Pager = pg
		jobs, err := s.cfg.Store.Jobs(ctx, id, from, min(PageSizeDefault, max(0, sum.Rows-from)))
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		for _, j := range jobs {
			p.Jobs = append(p.Jobs, viewJob(j))
		}
	}
	if !sum.Finished {
		s.refresh(&p, r)
	}
	s.render(w, r, "batch", http.StatusOK, p)
}

func viewJob(j batch.Job) jobView {
	v := jobView{Row: j.Row, Line: j.Line, Attempt: j.Attempt, ID: j.Spec.ID, State: j.State, TaskID: j.TaskID,
		FailCode: j.FailCode, FailMsg: redact(j.FailMsg),
		Prompt: shorten(j.Spec.Prompt, promptShown), PromptTitle: shorten(j.Spec.Prompt, promptTitle)}
	for n, f := range j.Files {
		if !fileName(f.Path) {
			continue
		}
		v.Files = append(v.Files, fileLink{Href: fileHref(j.Batch, j.Row, n), Name: f.Path, Size: f.Size,
			Human: humanBytes(f.Size)})
	}
	return v
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := s.cfg.Store.Cancel(r.Context(), id)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.log.Info("dashboard_cancel", "batch", id, "rows", n, "remote", r.RemoteAddr)
	s.back(w, r, batchPath(id), "cancel", n)
}

func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	st := tasks.State(r.PostFormValue("state"))
	ok := false
	for _, v := range retryStates {
		ok = ok || st == v
	}
	if !ok {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("state %q: want ambiguous, failed or budget", st))
		return
	}
	// Never rebill from here: rows whose task may have been billed are
	// skipped, and the notice says how many.
	res, err := s.cfg.Store.Resubmit(r.Context(), s.queue, id, batch.ResubmitOptions{From: st})
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.log.Info("dashboard_retry", "batch", id, "state", st, "rows", res.Queued, "skipped", len(res.Skipped),
		"remote", r.RemoteAddr)
	q := url.Values{"did": {"retry"}}
	if res.Queued != 0 {
		q.Set("n", strconv.Itoa(res.Queued))
	}
	if len(res.Skipped) != 0 {
		q.Set("skipped", strconv.Itoa(len(res.Skipped)))
	}
	http.Redirect(w, r, batchPath(id)+"?"+q.Encode(), http.StatusSeeOther)
}

// maxReason caps the length of a pause reason, in runes.
const maxReason = 200

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if !utf8.ValidString(reason) {
		reason = ""
	}
	if utf8.RuneCountInString(reason) > maxReason {
		reason = string([]rune(reason)[:maxReason])
	}
	if reason == "" {
		reason = "paused from the dashboard"
	}
	if err := queue.PauseSubmitting(r.Context(), s.cfg.Limiter, s.insp, s.cfg.Queues, reason); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.log.Info("dashboard_pause", "reason", reason, "remote", r.RemoteAddr)
	s.back(w, r, "/", "pause", 0)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	if err := queue.ResumeSubmitting(r.Context(), s.cfg.Limiter, s.insp, s.cfg.Queues); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.log.Info("dashboard_resume", "remote", r.RemoteAddr)
	s.back(w, r, "/", "resume", 0)
}

// write guards an action: 403 unless the request may write. (A request
// without configured credentials never gets here: secure answers 401.)
func (s *Server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.canWrite(r) {
			msg := "writes are disabled (start the dashboard with writes allowed)"
			if !s.cfg.authConfigured() {
				msg = "writes need credentials: configure a token or a user and password"
			}
			s.fail(w, r, http.StatusForbidden, errors.New(msg))
			return
		}
		h(w, r)
	}
}

// back redirects to path after an action, saying what it did.
func (s *Server) back(w http.ResponseWriter, r *http.Request, path, did string, n int) {
	q := url.Values{"did": {did}}
	if n != 0 {
		q.Set("n", strconv.Itoa(n))
	}
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}

func batchPath(id string) string { return "/batches/" + url.PathEscape(id) }

func statusOf(err error) int {
	if errors.Is(err, batch.ErrNotFound) {
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// fail renders an error page; server errors are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	msg := redact(err.Error())
	if code >= 500 {
		s.log.Error("dashboard_error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error; see the dashboard's log"
	}
	s.render(w, r, "error", code, page{Title: http.StatusText(code), Status: code, Error: msg,
		CanWrite: s.canWrite(r)})
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, code int, p page) {
	var b strings.Builder
	if err := s.tmpl[name].Execute(&b, p); err != nil {
		s.log.Error("dashboard_template", "template", name, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

// urlPattern finds URLs in free text.
var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redact keeps only the scheme and host of the URLs in s: paths, queries
// and userinfo can carry tokens (callback capabilities, signed URLs).
func redact(s string) string {
	return urlPattern.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			scheme, _, _ := strings.Cut(raw, "://")
			return scheme + "://…"
		}
		out := u.Scheme + "://" + u.Host
		if rest := strings.TrimPrefix(raw, u.Scheme+"://"); len(rest) > len(u.Host) || u.User != nil {
			out += "/…"
		}
		return out
	})
}

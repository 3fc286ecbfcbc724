package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// page is the data of every template.
type page struct {
	Title       string
	Paused      bool
	PauseReason string
	InFlight    int
	MaxInFlight int
	TotalSpent  int
	TotalLimit  int
	CanWrite    bool
	Notice      string
	States      []tasks.State
	Batches     []summary
	Batch       *summary
	Jobs        []jobView
	Pager       pager
	RetryStates []tasks.State
	Status      int
	Error       string
}

// summary is one batch's line on the list and the head of its page.
type summary struct {
	ID, Source, RequestType string
	Created                 time.Time
	Rows, Terminal          int
	ProgressMax, Percent    int
	States                  []stateCount
	PerMinute, ETA          string
	Spent, Limit            int
	Canceled                bool
}

type stateCount struct {
	State tasks.State
	N     int
}

// jobView is one row of the batch page.
type jobView struct {
	Row, Line, Attempt int
	ID                 string
	State              tasks.State
	TaskID             string
	FailCode, FailMsg  string
	Files              []fileLink
}

type fileLink struct {
	Href, Name string
	Size       int64
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
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}

// common fills the fields every page shows.
func (s *Server) common(ctx context.Context, r *http.Request, title string) (page, error) {
	p := page{Title: title, CanWrite: s.canWrite(r), States: tasks.States, RetryStates: retryStates,
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
	return p, nil
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

// summarize reads one batch's record, counts and budget.
func (s *Server) summarize(ctx context.Context, id string) (summary, error) {
	meta, counts, err := s.cfg.Store.Batch(ctx, id)
	if err != nil {
		return summary{}, err
	}
	b, err := s.cfg.Store.Budget(ctx, id)
	if err != nil {
		return summary{}, err
	}
	sum := summary{ID: meta.ID, Source: meta.Source, RequestType: meta.RequestType, Created: meta.Created,
		Rows: max(meta.Rows, counts.Total()), Terminal: counts.Terminal(), Spent: b.BatchSpent, Limit: b.BatchLimit,
		Canceled: meta.Canceled}
	for _, st := range tasks.States {
		sum.States = append(sum.States, stateCount{State: st, N: counts[st]})
	}
	sum.ProgressMax = max(sum.Rows, 1)
	sum.Percent = sum.Terminal * 100 / sum.ProgressMax
	sum.PerMinute, sum.ETA = pace(sum.Terminal, sum.Rows, s.cfg.Now().Sub(meta.Created))
	return sum, nil
}

// pace is the throughput in terminal rows per minute since the batch was
// created, and the time left at that pace.
func pace(terminal, rows int, elapsed time.Duration) (perMinute, eta string) {
	minutes := max(elapsed.Minutes(), 1.0/60)
	rate := float64(terminal) / minutes
	perMinute = strconv.FormatFloat(rate, 'f', 1, 64)
	switch {
	case terminal >= rows:
		return perMinute, "done"
	case terminal == 0:
		return perMinute, "unknown"
	}
	left := time.Duration(math.Ceil(float64(rows-terminal)/rate*60)) * time.Second
	return perMinute, left.String()
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
	// Newest first.
	for i := len(ids) - 1 - from; i >= 0 && i > len(ids)-1-from-PageSizeDefault; i-- {
		sum, err := s.summarize(ctx, ids[i])
		if errors.Is(err, batch.ErrNotFound) {
			continue
		}
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		p.Batches = append(p.Batches, sum)
	}
	s.render(w, r, "list", http.StatusOK, p)
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	p, err := s.common(ctx, r, "Batch "+id)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	sum, err := s.summarize(ctx, id)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	p.Batch = &sum
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
	s.render(w, r, "batch", http.StatusOK, p)
}

func viewJob(j batch.Job) jobView {
	v := jobView{Row: j.Row, Line: j.Line, Attempt: j.Attempt, ID: j.Spec.ID, State: j.State, TaskID: j.TaskID,
		FailCode: j.FailCode, FailMsg: redact(j.FailMsg)}
	for n, f := range j.Files {
		if !fileName(f.Path) {
			continue
		}
		v.Files = append(v.Files, fileLink{Href: fileHref(j.Batch, j.Row, n), Name: f.Path, Size: f.Size})
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
	if err := worker.PauseSubmitting(r.Context(), s.cfg.Limiter, s.insp, s.cfg.Queues, reason); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.log.Info("dashboard_pause", "reason", reason, "remote", r.RemoteAddr)
	s.back(w, r, "/", "pause", 0)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	if err := worker.ResumeSubmitting(r.Context(), s.cfg.Limiter, s.insp, s.cfg.Queues); err != nil {
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

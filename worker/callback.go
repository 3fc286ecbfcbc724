package worker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/hostcheck"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
)

// CallbackConfig configures callback mode.
type CallbackConfig struct {
	// PublicURL is how the provider reaches the callback receiver.
	PublicURL string
	// Secret keys the per-attempt tokens of callback URLs; every worker
	// needs the same one.
	Secret []byte
	// Confirm reads the task's status before applying a callback. Result
	// URLs are only ever taken from such a read.
	Confirm bool
	// SafetyGrace follows the slowest expected finish before a callback
	// job is polled anyway (default 60s); SafetyInterval separates later
	// safety polls (default 30s).
	SafetyGrace, SafetyInterval time.Duration
	// MaxBody caps a callback body (default 64 KiB).
	MaxBody int64
	// Listen is the receiver's listen address, host:port. The receiver
	// answers only to the host of PublicURL, the host of Listen (on a
	// loopback address also the loopback names; on every interface, those
	// and this machine's addresses) and AllowedHosts; see package
	// internal/hostcheck. Empty: only to PublicURL's host and AllowedHosts.
	Listen string
	// AllowedHosts are further Host names the receiver answers to, such as
	// the name a proxy in front of it forwards: exact, case-insensitive,
	// port ignored.
	AllowedHosts []string
}

// CallbackAllowedHostsSetting is the configuration field that lists further
// Host names for the receiver; a refused request is told to add its name
// there.
const CallbackAllowedHostsSetting = "callback.allowed_hosts"

func (c CallbackConfig) enabled() bool { return c.PublicURL != "" && len(c.Secret) > 0 }

// hostChecker builds the receiver's Host check.
func (c CallbackConfig) hostChecker(log *slog.Logger) (*hostcheck.Checker, error) {
	hosts := slices.Clone(c.AllowedHosts)
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("worker: Callback.PublicURL %q: want an http(s) URL with a host", c.PublicURL)
		}
		hosts = append(hosts, u.Hostname())
	}
	h, err := hostcheck.New(hostcheck.Config{Listen: c.Listen, Hosts: hosts, Setting: CallbackAllowedHostsSetting, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("worker: Callback: %w", err)
	}
	return h, nil
}

// CallbackPath is where the receiver takes callbacks:
// /callback/{batch}/{row}/{attempt}/{token}.
const CallbackPath = "/callback/"

// token is the unguessable part of one attempt's callback URL.
func (c CallbackConfig) token(b string, row, attempt int) string {
	m := hmac.New(sha256.New, c.Secret)
	fmt.Fprintf(m, "seedbatch-callback\x00%s\x00%d\x00%d", b, row, attempt)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// URL is the callback URL of one attempt: it carries the attempt's token.
func (c CallbackConfig) URL(b string, row, attempt int) string {
	return strings.TrimRight(c.PublicURL, "/") + CallbackPath + b + "/" + strconv.Itoa(row) + "/" +
		strconv.Itoa(attempt) + "/" + c.token(b, row, attempt)
}

// CallbackHandler is the receiver of provider callbacks. It first refuses,
// with 421, a request whose Host is not one the receiver answers to (see
// CallbackConfig.Listen), then checks the URL's token in constant time,
// limits the body, and answers within milliseconds: it only queues a
// video:callback task, which confirms and applies the outcome. Forged
// tokens get 401, unknown jobs 404; neither changes anything.
func (w *Worker) CallbackHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+CallbackPath+"{batch}/{row}/{attempt}/{token}", w.receive)
	return w.hosts.Handler(mux)
}

func (w *Worker) receive(rw http.ResponseWriter, r *http.Request) {
	cb := w.cfg.Callback
	b := r.PathValue("batch")
	row, ok1 := canonicalInt(r.PathValue("row"))
	attempt, ok2 := canonicalInt(r.PathValue("attempt"))
	log := w.log.With("batch", b, "row", r.PathValue("row"), "remote", r.RemoteAddr)
	if !cb.enabled() || !ok1 || !ok2 {
		log.Warn("callback_refused", "reason", "malformed path")
		http.Error(rw, "not found", http.StatusNotFound)
		return
	}
	want := cb.token(b, row, attempt)
	if !hmac.Equal([]byte(want), []byte(r.PathValue("token"))) {
		log.Warn("callback_refused", "reason", "bad token")
		http.Error(rw, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, cb.MaxBody))
	if err != nil {
		log.Warn("callback_refused", "reason", "body too large or unreadable")
		http.Error(rw, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	task, err := seedance.ParseTask(body)
	if err != nil {
		log.Warn("callback_refused", "reason", "malformed body")
		http.Error(rw, "malformed body", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	job, err := w.store.Job(ctx, b, row)
	if errors.Is(err, batch.ErrNotFound) {
		log.Warn("callback_refused", "reason", "unknown job")
		http.Error(rw, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		log.Error("callback_failed", "err", err)
		http.Error(rw, "try again", http.StatusServiceUnavailable)
		return
	}
	settled := job.State.Terminal() && job.State != tasks.StateAmbiguous
	if job.Attempt != attempt || settled || job.State == tasks.StateSucceeded {
		// An earlier attempt's task exists and was billed: keep its id in the log.
		log.Warn("callback_ignored", "state", job.State, "attempt", attempt, "task_id", task.ID)
		rw.WriteHeader(http.StatusOK) // authentic but stale or repeated: stop the retries
		return
	}
	if err := w.queue.Callback(ctx, b, row, attempt, task.ID); err != nil {
		log.Error("callback_failed", "err", err)
		http.Error(rw, "try again", http.StatusServiceUnavailable)
		return
	}
	log.Info("callback_received", "task_id", task.ID, "state", task.State)
	rw.WriteHeader(http.StatusOK)
}

// canonicalInt parses a non-negative decimal written as URL() writes it (no
// sign, no leading zero), so each callback has exactly one URL.
func canonicalInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && strconv.Itoa(n) == s
}

// handleCallback applies a received callback: the same transition a poll
// makes, after a status read of its own (unless configured off). A callback
// for an ambiguous attempt binds the task it names to the row.
func (w *Worker) handleCallback(ctx context.Context, t *asynq.Task) error {
	p, job, err := w.load(ctx, t)
	if err != nil {
		return err
	}
	if p.TaskID == "" {
		return permanent(errors.New("callback payload: no task id"))
	}
	log := w.log.With("batch", job.Batch, "row", job.Row, "task_id", p.TaskID)
	if p.Attempt != job.Attempt {
		return nil
	}
	var from tasks.State
	switch {
	case job.State == tasks.StateSubmitted && job.TaskID == p.TaskID:
		from = tasks.StateSubmitted
	case job.State == tasks.StateAmbiguous && job.TaskID == "":
		// Bind only a task no other row owns, and only after reading it.
		owner, err := w.store.TaskOwner(ctx, p.TaskID)
		if err != nil {
			return err
		}
		if (owner != "" && owner != job.Holder()) || !w.cfg.Callback.Confirm {
			log.Warn("callback_bind_refused", "owner", owner, "confirm", w.cfg.Callback.Confirm)
			return nil
		}
		from = tasks.StateAmbiguous
		log.Info("callback_binds_ambiguous")
	case job.State == tasks.StateSucceeded:
		// The outcome was recorded but its download may not have been queued.
		return w.queue.Download(ctx, job.Batch, job.Row, job.Attempt)
	case job.State == tasks.StateSubmitting:
		// The create's answer is still being recorded.
		return &NotYet{After: time.Second, Reason: "create not recorded yet"}
	case job.State == tasks.StateSubmitted:
		log.Warn("callback_task_mismatch", "recorded", job.TaskID)
		return nil
	default:
		return nil // already decided: a repeated delivery
	}
	job.TaskID = p.TaskID
	if !w.cfg.Callback.Confirm {
		// Without a confirming read, the callback only says "look now".
		return w.schedulePoll(ctx, job, tasks.CallbackPoll, w.cfg.Now(), true)
	}
	task, err := w.read(ctx, job)
	if errors.Is(err, seedance.ErrUnreadable) {
		// Nothing is bound or ended on an answer that cannot be read. A
		// submitted row's polls count such answers and end it; an ambiguous
		// row stays so, with the task id for the operator.
		log.Warn("callback_unreadable", "from", from, "err", err)
		msg := "a callback named task " + p.TaskID + ", whose status answer could not be read: " + err.Error()
		return w.store.SetLastError(ctx, job.Batch, job.Row, msg)
	}
	if err != nil {
		return err
	}
	return w.applyStatus(ctx, job, from, task, true, tasks.CallbackPoll)
}

// bind records an ambiguous row's task id, learned from a callback, and
// makes the row submitted again.
func (w *Worker) bind(ctx context.Context, job batch.Job) error {
	if _, err := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
		From: []tasks.State{tasks.StateAmbiguous}, To: tasks.StateSubmitted, Attempt: &job.Attempt,
		TaskID: job.TaskID, ClearFailure: true, Sync: true}); err != nil {
		return err
	}
	return w.store.IndexTask(ctx, job.TaskID, job.Holder())
}

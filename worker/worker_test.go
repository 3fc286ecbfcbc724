package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// timeScale compresses the provider's 40-120 s generation times to well
// under a second.
const timeScale = 200

// harness is one worker process against one simulator.
type harness struct {
	t      testing.TB
	rs     *redistest.Server
	sim    *sim.Sim
	store  *batch.Store
	lim    *ratelimit.Limiter
	queues queue.Names
	worker *worker.Worker
	// out is where videos are stored.
	out string
	// receiver is the callback receiver's base URL in callback mode.
	receiver string
}

// options change a harness's defaults.
type options struct {
	sim    sim.Config
	limits ratelimit.Config
	worker worker.Config
	apiKey string
	// notCreated is the client's seedance.Config.NotCreatedCodes.
	notCreated []int
	// callback serves a callback receiver and makes callback the default.
	callback bool
	// wrap, when set, wraps the provider client, to act around its calls.
	wrap func(worker.Provider, *ratelimit.Limiter) worker.Provider
	// sink, when set, stores the videos in place of the harness's directory.
	sink fetch.Sink
	// wrapFetch, when set, wraps the fetcher, to act around its downloads.
	wrapFetch func(worker.Fetcher) worker.Fetcher
}

func newHarness(t *testing.T, clientKey string) *harness {
	return newHarnessWith(t, func(o *options) { o.apiKey = clientKey })
}

func newHarnessWith(t testing.TB, change func(*options)) *harness {
	t.Helper()
	rs := redistest.New(t)
	o := options{
		// Receivers get 5 s to answer a callback, not the provider's 30 s
		// compressed, which a busy machine may miss.
		sim:    sim.Config{APIKey: "sim-key", TimeScale: timeScale, Seed: 1, CallbackTimeout: 5 * time.Second},
		limits: ratelimit.Config{Prefix: rs.Prefix, Scope: "test", RequestsPerMinute: 10000 * timeScale, Burst: 100, MaxInFlight: 1000},
		apiKey: "sim-key",
		worker: worker.Config{Queues: queue.NamesFor(rs.Prefix), TimeScale: timeScale, MaxRetry: 4,
			MaxWait: time.Second, SubmitConcurrency: 10, PollConcurrency: 10},
	}
	change(&o)
	var ln net.Listener
	if o.callback {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		o.worker.RequestType = queue.RequestCallback
		o.worker.Callback.PublicURL = "http://" + ln.Addr().String()
		o.worker.Callback.Listen = ln.Addr().String()
		o.worker.Callback.Secret = []byte("test-secret")
		o.worker.Callback.Confirm = true
	}
	clientKey := o.apiKey
	s, err := sim.New(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	client, err := seedance.New(seedance.Config{BaseURL: srv.URL, APIKey: clientKey, Timeout: 5 * time.Second,
		NotCreatedCodes: o.notCreated})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(rs.Client, o.limits)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, rs: rs, sim: s, store: batch.NewStore(rs.Client, rs.Prefix), lim: lim,
		queues: o.worker.Queues}
	h.out = t.TempDir()
	// The simulator serves the result files on loopback.
	f, err := fetch.New(fetch.Config{Dir: h.out, Sink: o.sink, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	var prov worker.Provider = client
	if o.wrap != nil {
		prov = o.wrap(prov, lim)
	}
	var fetcher worker.Fetcher = f
	if o.wrapFetch != nil {
		fetcher = o.wrapFetch(f)
	}
	h.worker, err = worker.New(rs.Client, h.store, lim, prov, fetcher, o.worker)
	if err != nil {
		t.Fatal(err)
	}
	if ln != nil {
		h.receiver = "http://" + ln.Addr().String()
		srv := &http.Server{Handler: h.worker.CallbackHandler()}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	t.Cleanup(s.Close)
	return h
}

func (h *harness) start() {
	if err := h.worker.Start(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.worker.Shutdown)
}

// enqueue writes csv to a file and enqueues it as a batch.
func (h *harness) enqueue(csv string) *batch.Plan {
	h.t.Helper()
	path := filepath.Join(h.t.TempDir(), "batch.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		h.t.Fatal(err)
	}
	plan, err := batch.PlanFile(path, batch.PlanOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	q := queue.New(h.rs.Client, h.queues)
	defer q.Close()
	if _, err := h.store.Enqueue(h.t.Context(), q, plan, batch.PlanOptions{}); err != nil {
		h.t.Fatal(err)
	}
	return plan
}

// waitFor polls the batch counts until cond holds or the time runs out.
func (h *harness) waitFor(id string, within time.Duration, cond func(batch.Counts) bool) batch.Counts {
	h.t.Helper()
	var c batch.Counts
	testwait.Until(h.t, within, func() error {
		var err error
		if _, c, err = h.store.Get(h.t.Context(), id); err != nil {
			return err
		}
		if !cond(c) {
			return fmt.Errorf("batch %s: counts %v", id, c)
		}
		return nil
	})
	return c
}

func (h *harness) jobs(id string, n int) []batch.Job {
	h.t.Helper()
	jobs, err := h.store.Jobs(h.t.Context(), id, 0, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return jobs
}

func allTerminal(rows int) func(batch.Counts) bool {
	return func(c batch.Counts) bool { return c.Terminal() == rows }
}

// TestOutcomes runs one batch holding every kind of provider answer through
// one worker and checks each row's end state and the simulator's creates.
func TestOutcomes(t *testing.T) {
	h := newHarness(t, "sim-key")
	rows := []struct {
		id, prompt, extra string
		state             tasks.State
		code              string
		creates           int
	}{
		{"ok-1", "a quiet harbour at dawn", "", tasks.StateDone, "", 1},
		{"ok-2", "a busy market at noon", "", tasks.StateDone, "", 1},
		{"violation", "a scene [sim:content-violation]", "", tasks.StateFailed, "CONTENT_VIOLATION", 1},
		{"rejected", "a scene the provider refuses [sim:reject]", "", tasks.StateFailed, tasks.CodeInvalidRequest, 0},
		// The simulator created nothing, but a 500 does not prove it: without
		// provider.not_created_codes the row is not sent again.
		{"server-error", "a scene after two errors [sim:create-500]", "", tasks.StateAmbiguous, tasks.CodeCreateUnknown, 0},
		{"lost", "a scene whose answer is lost [sim:create-lost]", "", tasks.StateAmbiguous, tasks.CodeCreateUnknown, 1},
		{"gateway", "a scene behind a gateway [sim:create-502]", "", tasks.StateAmbiguous, tasks.CodeCreateUnknown, 1},
		{"no-id", "a scene without an id [sim:create-no-id]", "", tasks.StateAmbiguous, tasks.CodeCreateUnknown, 1},
		{"status-error", "a scene with a flaky status [sim:status-500]", "", tasks.StateDone, "", 1},
		{"bad-duration", "a scene of five seconds", "5", tasks.StateRejected, "INVALID_ROW", 0},
		{"created-500", "a scene created then answered 500 [sim:create-500-created]", "", tasks.StateAmbiguous, tasks.CodeCreateUnknown, 1},
		{"created-code-500", "a scene created then answered code 500 [sim:create-code-500]", "", tasks.StateAmbiguous, tasks.CodeCreateUnknown, 1},
	}
	var csv strings.Builder
	csv.WriteString("id,prompt,duration\n")
	for _, r := range rows {
		fmt.Fprintf(&csv, "%s,%s,%s\n", r.id, r.prompt, r.extra)
	}
	plan := h.enqueue(csv.String())
	h.start()
	h.waitFor(plan.ID, 60*time.Second, allTerminal(len(rows)))

	stats := h.sim.Stats()
	for i, j := range h.jobs(plan.ID, len(rows)) {
		r := rows[i]
		if j.State != r.state || j.FailCode != r.code {
			t.Errorf("row %s: state %s (%s: %s), want %s (%s)", r.id, j.State, j.FailCode, j.FailMsg, r.state, r.code)
		}
		if got := stats.CreatedPerPrompt[r.prompt]; got != r.creates {
			t.Errorf("row %s: %d tasks created, want %d", r.id, got, r.creates)
		}
		if r.state == tasks.StateDone {
			if len(j.ResultURLs) != 1 || j.TaskID == "" || len(j.Files) != 1 {
				t.Fatalf("row %s: done without a task id, result URL or file: %+v", r.id, j)
			}
			want, _ := h.sim.FileSHA256(j.TaskID)
			data, err := os.ReadFile(filepath.Join(h.out, j.Files[0].Path))
			if err != nil || j.Files[0].SHA256 != want || int64(len(data)) != j.Files[0].Size {
				t.Errorf("row %s: file %+v (read err %v), want sha256 %s", r.id, j.Files[0], err, want)
			}
		}
	}
	rejected := h.jobs(plan.ID, len(rows))[3]
	if rejected.FailMsg != "input.prompt was rejected by the provider" {
		t.Errorf("a 400 row keeps no provider message: %+v", rejected)
	}
	bad := h.jobs(plan.ID, len(rows))[9]
	if !strings.Contains(bad.FailMsg, "line 11") || !strings.Contains(bad.FailMsg, "duration") {
		t.Errorf("bad row message = %q, want its line and field", bad.FailMsg)
	}
	if stats.Count("create", 500) != 2 {
		// One each for the [sim:create-500] and [sim:create-500-created] rows: neither is sent again.
		t.Errorf("%d create 500s answered, want 2 (none retried)", stats.Count("create", 500))
	}
	for row, want := range map[int]string{4: "HTTP 500 after the create was sent", 10: "HTTP 500 after the create was sent",
		11: "HTTP 200 with code 500 after the create was sent"} {
		j := h.jobs(plan.ID, len(rows))[row]
		t.Logf("row %s: %s", j.Spec.ID, j.FailMsg)
		for _, w := range []string{want, "it may have created (and will bill) the task", "retry " + plan.ID + " --state ambiguous"} {
			if !strings.Contains(j.FailMsg, w) {
				t.Errorf("row %s: fail message %q does not say %q", j.Spec.ID, j.FailMsg, w)
			}
		}
	}
	if n, _ := h.lim.InFlight(t.Context()); n != 6 {
		// The six ambiguous rows keep their leases until they expire: the
		// provider may be running their tasks.
		t.Errorf("%d leases held at the end, want 6", n)
	}
}

// TestNotCreatedCodesAreRetried lists 500 as a code the provider documents
// as "not created": then a create answered 500 is sent again, and the row
// finishes with exactly one task created.
func TestNotCreatedCodesAreRetried(t *testing.T) {
	h := newHarnessWith(t, func(o *options) { o.notCreated = []int{500} })
	const prompt = "a scene after two errors [sim:create-500]"
	plan := h.enqueue("prompt\n" + prompt + "\n")
	h.start()
	h.waitFor(plan.ID, 30*time.Second, allTerminal(1))
	if j := h.jobs(plan.ID, 1)[0]; j.State != tasks.StateDone {
		t.Errorf("row %s (%s: %s), want done", j.State, j.FailCode, j.FailMsg)
	}
	st := h.sim.Stats()
	if st.CreatedPerPrompt[prompt] != 1 || st.Count("create", 500) != 2 {
		t.Errorf("%d created after %d answers 500, want 1 after 2", st.CreatedPerPrompt[prompt], st.Count("create", 500))
	}
	if n, _ := h.lim.InFlight(t.Context()); n != 0 {
		t.Errorf("%d leases held at the end, want 0", n)
	}
}

// TestUnreadableAnswers gives tasks whose status answers cannot be read: an
// unknown state on every read, or a success whose resultJson is not JSON.
// Each row must fail after exactly MaxUnreadable reads, free its slot, and
// never be created twice.
func TestUnreadableAnswers(t *testing.T) {
	h := newHarnessWith(t, func(o *options) {
		// The first read comes after the slowest 4 s video (60 s) ended, so
		// every read of a [sim:status-bad-result] task sees its bad success.
		o.worker.FirstPoll = map[int]time.Duration{4: 61 * time.Second}
	})
	rows := []struct{ prompt, want string }{
		{"a scene in a state nobody knows [sim:status-unknown-state]", `unknown state "queued_v2"`},
		{"a scene with a broken result [sim:status-bad-result]", "resultJson"},
		{"a scene that reads fine", ""},
	}
	var csv strings.Builder
	csv.WriteString("prompt\n")
	for _, r := range rows {
		csv.WriteString(r.prompt + "\n")
	}
	plan := h.enqueue(csv.String())
	h.start()
	h.waitFor(plan.ID, 30*time.Second, allTerminal(len(rows)))
	st := h.sim.Stats()
	for i, j := range h.jobs(plan.ID, len(rows)) {
		r := rows[i]
		if st.CreatedPerPrompt[r.prompt] != 1 {
			t.Errorf("row %d: created %d times, want 1", i, st.CreatedPerPrompt[r.prompt])
		}
		if r.want == "" {
			if j.State != tasks.StateDone {
				t.Errorf("row %d: %s (%s: %s), want done", i, j.State, j.FailCode, j.FailMsg)
			}
			continue
		}
		t.Logf("row %d: %s", i, j.FailMsg)
		if j.State != tasks.StateFailed || j.FailCode != tasks.CodeAnswerUnreadable {
			t.Errorf("row %d: %s (%s), want failed (%s)", i, j.State, j.FailCode, tasks.CodeAnswerUnreadable)
		}
		if got := st.StatusReadsPerTask[j.TaskID]; got != worker.MaxUnreadableDefault {
			t.Errorf("row %d: %d status reads, want %d", i, got, worker.MaxUnreadableDefault)
		}
		for _, w := range []string{r.want, j.TaskID, "retry " + plan.ID + " --state failed --rebill"} {
			if !strings.Contains(j.FailMsg, w) {
				t.Errorf("row %d: fail message %q does not say %q", i, j.FailMsg, w)
			}
		}
	}
	if n, _ := h.lim.InFlight(t.Context()); n != 0 {
		t.Errorf("%d leases held at the end, want 0", n)
	}
}

// TestAuthFailurePausesSubmitting checks that a refused key stops all
// submitting without failing any row, and that resuming finishes the batch.
func TestAuthFailurePausesSubmitting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "wrong-key")
	plan := h.enqueue("prompt\nfirst scene here\nsecond scene here\nthird scene here\n")
	h.start()
	ctx := t.Context()
	reason := h.waitPaused(20 * time.Second)
	if !strings.Contains(reason, "refused the API key") || strings.Contains(reason, "wrong-key") {
		t.Errorf("pause reason = %q", reason)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	// The limiter is paused first, then the queue. A submit that was running
	// when the pause came ends before the rows are checked; the paused queue
	// starts no other.
	testwait.Until(t, 20*time.Second, func() error {
		if info, err := insp.GetQueueInfo(h.queues.Submit); err != nil || !info.Paused || info.Active > 0 {
			return fmt.Errorf("submit queue not paused and idle: %+v, %v", info, err)
		}
		return nil
	})
	_, c, _ := h.store.Get(ctx, plan.ID)
	if c[tasks.StateQueued] != 3 || c.Terminal() != 0 {
		t.Fatalf("rows changed while paused: %v", c)
	}
	if h.sim.Stats().Created != 0 {
		t.Fatal("tasks created with a refused key")
	}

	h.sim.SetAPIKey("wrong-key") // the operator fixes the key...
	if err := queue.ResumeSubmitting(ctx, h.lim, insp, h.queues); err != nil {
		t.Fatal(err)
	}
	c = h.waitFor(plan.ID, 30*time.Second, allTerminal(3))
	if c[tasks.StateDone] != 3 {
		t.Errorf("after resume: %v, want 3 succeeded", c)
	}
}

// TestInterruptedSubmitIsAmbiguous simulates a worker that died after
// marking its row submitting: the create may have been sent, so the row is
// never created again.
func TestInterruptedSubmitIsAmbiguous(t *testing.T) {
	h := newHarness(t, "sim-key")
	plan := h.enqueue("prompt\nthe row that was cut off\nthe row that is fine\n")
	zero := 0
	if _, err := h.store.Transition(t.Context(), plan.ID, 0, batch.Change{
		From: []tasks.State{tasks.StateQueued}, To: tasks.StateSubmitting, Attempt: &zero}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.waitFor(plan.ID, 30*time.Second, allTerminal(2))
	jobs := h.jobs(plan.ID, 2)
	if jobs[0].State != tasks.StateAmbiguous || jobs[0].FailCode != tasks.CodeCreateInterrupted {
		t.Errorf("interrupted row: %s %s", jobs[0].State, jobs[0].FailCode)
	}
	if jobs[1].State != tasks.StateDone {
		t.Errorf("other row: %s", jobs[1].State)
	}
	if n := h.sim.Stats().CreatedPerPrompt["the row that was cut off"]; n != 0 {
		t.Errorf("interrupted row created %d times, want 0", n)
	}
}

// TestProviderRateLimitBacksOff lets the provider, not seedbatch, hold the
// in-flight limit: its 429s must slow submitting down without failing a row
// or creating one twice.
func TestProviderRateLimitBacksOff(t *testing.T) {
	h := newHarnessWith(t, func(o *options) { o.sim.MaxInFlight = 2 })
	var csv strings.Builder
	csv.WriteString("prompt\n")
	for i := range 8 {
		fmt.Fprintf(&csv, "scene number %d\n", i)
	}
	plan := h.enqueue(csv.String())
	h.start()
	c := h.waitFor(plan.ID, 60*time.Second, allTerminal(8))
	st := h.sim.Stats()
	if c[tasks.StateDone] != 8 {
		t.Errorf("counts %v, want 8 succeeded", c)
	}
	if st.RateLimited == 0 {
		t.Error("the provider never answered 429: the test did not test anything")
	}
	if st.Created != 8 || st.MaxCreatesPerPrompt() != 1 {
		t.Errorf("created %d, max per prompt %d; want 8 and 1", st.Created, st.MaxCreatesPerPrompt())
	}
}

// TestWaitingIsNotARetry holds rows behind a single in-flight slot with one
// retry allowed: if waiting for a limit counted as a retry, asynq would
// archive the waiting tasks and their rows would never finish.
func TestWaitingIsNotARetry(t *testing.T) {
	h := newHarnessWith(t, func(o *options) {
		o.limits.MaxInFlight = 1
		o.worker.MaxRetry = 1
		o.worker.MaxWait = 20 * time.Millisecond
	})
	plan := h.enqueue("prompt\nfirst in line\nsecond in line\nthird in line\nfourth in line\n")
	h.start()
	c := h.waitFor(plan.ID, 30*time.Second, allTerminal(4))
	if c[tasks.StateDone] != 4 {
		t.Errorf("counts %v, want 4 succeeded", c)
	}
	if p := h.sim.Stats().PeakInFlight; p != 1 {
		t.Errorf("peak in flight %d, want 1", p)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	for _, q := range []string{h.queues.Submit, h.queues.Poll} {
		if info, err := insp.GetQueueInfo(q); err == nil && info.Archived > 0 {
			t.Errorf("queue %s archived %d tasks", q, info.Archived)
		}
	}
}

// TestEnqueueTwiceAddsNothing enqueues one file twice, as a user who runs
// the same command again would, and counts the asynq tasks and jobs.
func TestEnqueueTwiceAddsNothing(t *testing.T) {
	h := newHarness(t, "sim-key")
	csv := "id,prompt\na,first scene here\nb,second scene here\nc,third scene here\n"
	first := h.enqueue(csv)
	second := h.enqueue(csv)
	if first.ID != second.ID {
		t.Fatalf("the same file got two batch ids: %s, %s", first.ID, second.ID)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	info, err := insp.GetQueueInfo(h.queues.Submit)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 3 {
		t.Errorf("submit queue holds %d tasks, want 3", info.Size)
	}
	_, c, _ := h.store.Get(t.Context(), first.ID)
	if c.Total() != 3 {
		t.Errorf("batch counts %v, want 3 jobs", c)
	}
	h.start()
	h.waitFor(first.ID, 30*time.Second, allTerminal(3))
	if st := h.sim.Stats(); st.Created != 3 {
		t.Errorf("created %d tasks, want 3", st.Created)
	}
}

// coolingProvider starts a provider cool-down after the second failed
// create, long enough to cover the retry that follows it.
type coolingProvider struct {
	worker.Provider
	lim   *ratelimit.Limiter
	fails int
}

func (p *coolingProvider) Create(ctx context.Context, req seedance.CreateRequest) (string, error) {
	id, err := p.Provider.Create(ctx, req)
	if err != nil {
		if p.fails++; p.fails == 2 {
			_ = p.lim.Cooldown(ctx, 7*time.Second)
		}
	}
	return id, err
}

// TestWaitAfterFailuresIsNotFatal makes a task fail as often as MaxRetry
// allows and then wait for a limit: the wait must not end it (asynq
// archives a task with no retries left, even for an error that is not a
// failure), and the row must finish once the limit lets it through.
func TestWaitAfterFailuresIsNotFatal(t *testing.T) {
	h := newHarnessWith(t, func(o *options) {
		o.notCreated = []int{500}
		o.worker.MaxRetry = 2
		o.worker.MaxWait = 50 * time.Millisecond
		o.wrap = func(p worker.Provider, lim *ratelimit.Limiter) worker.Provider {
			return &coolingProvider{Provider: p, lim: lim}
		}
	})
	plan := h.enqueue("prompt\na scene after two errors [sim:create-500]\n")
	h.start()
	h.waitFor(plan.ID, 30*time.Second, allTerminal(1))
	if j := h.jobs(plan.ID, 1)[0]; j.State != tasks.StateDone {
		t.Errorf("row %s (%s: %s), want done", j.State, j.FailCode, j.FailMsg)
	}
}

// losingProvider creates each task but loses the answer of the first
// create, as a connection reset after the body was sent would.
type losingProvider struct {
	worker.Provider
	lost atomic.Bool
}

func (p *losingProvider) Create(ctx context.Context, req seedance.CreateRequest) (string, error) {
	id, err := p.Provider.Create(ctx, req)
	if err == nil && p.lost.CompareAndSwap(false, true) {
		return "", &seedance.Error{Kind: seedance.ErrUnknownOutcome, Op: "create", Err: errors.New("connection reset")}
	}
	return id, err
}

// TestResubmittedRowTakesItsOwnLease checks that leases belong to attempts:
// a row resubmitted after an ambiguous create takes a new lease, and the
// earlier attempt's lease, whose task may still run, stays held.
func TestResubmittedRowTakesItsOwnLease(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, func(o *options) {
		o.wrap = func(p worker.Provider, _ *ratelimit.Limiter) worker.Provider { return &losingProvider{Provider: p} }
	})
	plan := h.enqueue("prompt\nthe scene whose first answer is lost\n")
	h.start()
	h.waitFor(plan.ID, 30*time.Second, allTerminal(1))
	first := h.jobs(plan.ID, 1)[0]
	if first.State != tasks.StateAmbiguous {
		t.Fatalf("row %s, want ambiguous after a lost answer", first.State)
	}
	q := queue.New(h.rs.Client, h.queues)
	defer q.Close()
	if res, err := h.store.Resubmit(t.Context(), q, plan.ID, batch.ResubmitOptions{From: tasks.StateAmbiguous}); err != nil || res.Queued != 1 {
		t.Fatalf("Resubmit = %+v, %v", res, err)
	}
	h.waitFor(plan.ID, 30*time.Second, func(c batch.Counts) bool { return c[tasks.StateDone] == 1 })
	if st := h.sim.Stats(); st.Created != 2 {
		t.Errorf("%d creates, want 2 (the lost one and the resubmission)", st.Created)
	}
	leases, err := h.rs.Client.ZRange(t.Context(), h.lim.Config().Prefix+":{test}:leases", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0] != first.Holder() {
		t.Errorf("leases %v at the end, want only the first attempt's %q (its task may still run)", leases, first.Holder())
	}
}

// TestDecidedElsewhereFreesLease checks that a row decided elsewhere while
// its poll waits in place, here by reconcile's time-out of a task stuck at
// the provider, ends without a lease, though the poll's next read may have
// renewed the lease that the time-out released.
func TestDecidedElsewhereFreesLease(t *testing.T) {
	h := newHarnessWith(t, func(o *options) { o.sim.Faults = sim.Faults{Stuck: 1} })
	plan := h.enqueue("prompt\na scene that never finishes\n")
	h.start()
	ctx := t.Context()
	until := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 30s: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var job batch.Job
	until("the stuck task is polled", func() bool {
		job = h.jobs(plan.ID, 1)[0]
		return job.State == tasks.StateSubmitted && h.sim.Stats().StatusReadsPerTask[job.TaskID] >= 2
	})
	// What reconcile does to a row submitted longer than give_up_after.
	if ended, err := h.store.TimeOut(ctx, job, time.Minute, time.Now().Add(time.Hour)); err != nil || !ended {
		t.Fatalf("time out: ended %v, err %v", ended, err)
	}
	if err := h.lim.Release(ctx, job.Holder()); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	until("the poll ends", func() bool {
		qi, err := insp.GetQueueInfo(h.queues.Poll)
		return err == nil && qi.Active == 0 && qi.Pending == 0 && qi.Scheduled == 0 && qi.Retry == 0
	})
	if n, err := h.lim.InFlight(ctx); err != nil || n != 0 {
		t.Errorf("%d leases held once the poll ended (err %v), want 0", n, err)
	}
}

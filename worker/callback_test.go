package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// TestCallbackRun is the callback-mode acceptance run: 1000 rows, 10% of
// deliveries dropped and 10% duplicated. Every row must end downloaded
// exactly once, and the only status reads must be one confirmation per
// delivered callback plus the safety polls of the dropped ones.
func TestCallbackRun(t *testing.T) {
	t.Parallel()
	const rows = 1000
	h := newHarnessWith(t, func(o *options) {
		o.callback = true
		o.sim.CallbackDropRate = 0.1
		o.sim.CallbackDupRate = 0.1
		o.worker.SubmitConcurrency, o.worker.PollConcurrency = 20, 20
		// Safety polls 3 s after the slowest finish (compressed): long after
		// any delivered callback, so each task is read exactly once.
		o.worker.Callback.SafetyGrace = 10 * time.Minute
	})
	var csv strings.Builder
	csv.WriteString("prompt\n")
	for i := range rows {
		fmt.Fprintf(&csv, "callback scene %d\n", i)
	}
	plan := h.enqueue(csv.String())
	h.start()
	c := h.waitFor(plan.ID, 3*time.Minute, allTerminal(rows)) // about 5 s on an idle machine
	if c[tasks.StateDone] != rows {
		t.Fatalf("counts %v, want %d done", c, rows)
	}
	st := h.sim.Stats()
	cb := st.Callbacks
	t.Logf("callbacks: sent %d, delivered %d, dropped %d, duplicated %d; status reads %d; files %d",
		cb.Sent, cb.Delivered, cb.Dropped, cb.Duplicated, st.Count("status", 200), st.Count("file", 200))
	if cb.Dropped == 0 || cb.Duplicated == 0 {
		t.Fatalf("the simulator dropped %d and duplicated %d deliveries: nothing was tested", cb.Dropped, cb.Duplicated)
	}
	if got := st.Count("file", 200); got != rows {
		t.Errorf("%d files downloaded, want exactly %d", got, rows)
	}
	dropped := map[string]bool{}
	for _, id := range cb.DroppedTasks {
		dropped[id] = true
	}
	// Each delivered callback is confirmed by one read; each dropped one is
	// found by one safety poll. Nothing else reads.
	reads := 0
	for id, n := range st.StatusReadsPerTask {
		reads += n
		if n != 1 {
			t.Errorf("task %s (dropped %v) was read %d times, want 1", id, dropped[id], n)
		}
	}
	if reads != rows || st.Created != rows || st.MaxCreatesPerPrompt() != 1 {
		t.Errorf("%d status reads and %d creates for %d rows", reads, st.Created, rows)
	}
}

// TestForgedCallbacks posts callbacks no provider would send and checks
// that none changes a job or queues work.
func TestForgedCallbacks(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, func(o *options) { o.callback = true })
	plan := h.enqueue("prompt\na row nobody may touch\n")
	cfg := worker.CallbackConfig{PublicURL: h.receiver, Secret: []byte("test-secret")}
	valid := cfg.URL(plan.ID, 0, 0)
	body := `{"code":200,"message":"success","data":{"taskId":"task_forged","state":"success","resultJson":"{\"resultUrls\":[\"http://evil.test/x.mp4\"]}"}}`
	tests := []struct {
		name, url, body string
		want            int
	}{
		{"wrong token", valid[:len(valid)-4] + "AAAA", body, http.StatusUnauthorized},
		{"token of another row", cfg.URL(plan.ID, 1, 0)[:len(h.receiver)] + strings.Replace(valid[len(h.receiver):], "/0/0/", "/1/0/", 1), body, http.StatusUnauthorized},
		{"other secret", worker.CallbackConfig{PublicURL: h.receiver, Secret: []byte("guess")}.URL(plan.ID, 0, 0), body, http.StatusUnauthorized},
		{"unknown job", cfg.URL(plan.ID, 7, 0), body, http.StatusNotFound},
		{"unknown batch", cfg.URL("nope", 0, 0), body, http.StatusNotFound},
		{"oversized body", valid, `{"code":200,"data":{"taskId":"task_x","state":"success","pad":"` + strings.Repeat("x", 100<<10) + `"}}`, http.StatusRequestEntityTooLarge},
		{"malformed JSON", valid, `{"code":200,"data":`, http.StatusBadRequest},
		{"not a task", valid, `{"code":200,"data":{"state":"success"}}`, http.StatusBadRequest},
		{"malformed path", h.receiver + "/callback/" + plan.ID + "/zero/0/token", body, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(tt.url, "application/json", bytes.NewBufferString(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	job := h.jobs(plan.ID, 1)[0]
	if job.State != tasks.StateQueued || job.TaskID != "" || len(job.ResultURLs) != 0 {
		t.Errorf("a forged callback changed the job: %+v", job)
	}
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	if info, err := insp.GetQueueInfo(h.queues.Poll); err == nil && info.Size != 0 {
		t.Errorf("forged callbacks queued %d tasks", info.Size)
	}
	// The genuine URL with a genuine body is taken: the test above did
	// refuse for the right reasons, not because the receiver refuses all.
	resp, err := http.Post(valid, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("genuine callback: status %d", resp.StatusCode)
	}
}

// TestCallbackHostCheck is DNS rebinding against the receiver: a request
// under a Host the receiver does not answer to is refused before anything
// else (even a forged token or an unknown job gets 421, not 401 or 404),
// and a genuine callback under it queues nothing. The public URL's host,
// the loopback names of its loopback listen address and an allowed host
// are taken.
func TestCallbackHostCheck(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, func(o *options) {
		o.callback = true
		o.worker.Callback.AllowedHosts = []string{"Hooks.Proxy.Example"}
	})
	plan := h.enqueue("prompt\na row a rebinding page must not touch\n")
	cfg := worker.CallbackConfig{PublicURL: h.receiver, Secret: []byte("test-secret")}
	valid := cfg.URL(plan.ID, 0, 0)
	body := `{"code":200,"message":"success","data":{"taskId":"task_rebind","state":"success","resultJson":"{\"resultUrls\":[\"http://evil.test/x.mp4\"]}"}}`
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	queued := func() int {
		info, err := insp.GetQueueInfo(h.queues.Poll)
		if err != nil {
			return 0 // the queue does not exist yet
		}
		return info.Size
	}
	post := func(target, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	port := h.receiver[strings.LastIndex(h.receiver, ":")+1:]
	refused := []struct{ name, url, host string }{
		{"genuine callback", valid, "rebind.attacker.example"},
		{"genuine callback, receiver's port", valid, "rebind.attacker.example:" + port},
		{"forged token", valid[:len(valid)-4] + "AAAA", "rebind.attacker.example"},
		{"unknown job", cfg.URL("nope", 0, 0), "rebind.attacker.example"},
		{"a subdomain of an allowed host", valid, "x.hooks.proxy.example"},
	}
	for _, tt := range refused {
		code, msg := post(tt.url, tt.host)
		if code != http.StatusMisdirectedRequest || !strings.Contains(msg, worker.CallbackAllowedHostsSetting) {
			t.Errorf("%s, Host %s: %d %q, want 421 naming %s", tt.name, tt.host, code, msg, worker.CallbackAllowedHostsSetting)
		}
	}
	if n := queued(); n != 0 {
		t.Fatalf("refused callbacks queued %d tasks", n)
	}
	if job := h.jobs(plan.ID, 1)[0]; job.State != tasks.StateQueued || job.TaskID != "" {
		t.Fatalf("a refused callback changed the job: %+v", job)
	}
	// The public URL's host (127.0.0.1 and the port), localhost on the
	// loopback listen address, and the allowed host.
	for _, host := range []string{h.receiver[len("http://"):], "localhost:" + port, "hooks.proxy.example"} {
		if code, msg := post(valid, host); code != http.StatusOK {
			t.Errorf("Host %s: %d %q, want 200", host, code, msg)
		}
	}
	if n := queued(); n != 1 {
		t.Errorf("accepted callbacks queued %d tasks, want 1 (repeats share its id)", n)
	}
}

// TestCallbackBindsAmbiguous loses a create's answer in callback mode: the
// row turns ambiguous, then its callback names the task and the row ends
// done without a second create.
func TestCallbackBindsAmbiguous(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, func(o *options) { o.callback = true })
	plan := h.enqueue("prompt\na scene whose answer is lost [sim:create-lost]\na plain scene\n")
	h.start()
	c := h.waitFor(plan.ID, 30*time.Second, func(c batch.Counts) bool { return c[tasks.StateDone] == 2 })
	job := h.jobs(plan.ID, 2)[0]
	if job.State != tasks.StateDone || job.TaskID == "" || job.FailCode != "" {
		t.Errorf("bound row: %+v (counts %v)", job, c)
	}
	if st := h.sim.Stats(); st.Created != 2 || st.MaxCreatesPerPrompt() != 1 {
		t.Errorf("created %d tasks, max per prompt %d", st.Created, st.MaxCreatesPerPrompt())
	}
}

// TestCallbackCannotBindAnotherRowsTask posts, to an ambiguous row's genuine
// callback URL, a body naming another row's task: the row must not take it,
// and the genuine callback, which comes later, binds the row's own task.
func TestCallbackCannotBindAnotherRowsTask(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, func(o *options) {
		o.callback = true
		o.sim.CallbackDelay = 1500 * time.Millisecond
	})
	plan := h.enqueue("prompt\na scene whose answer is lost [sim:create-lost]\na plain scene\n")
	h.start()
	var other string
	h.waitFor(plan.ID, 20*time.Second, func(batch.Counts) bool {
		jobs := h.jobs(plan.ID, 2)
		other = jobs[1].TaskID
		return jobs[0].State == tasks.StateAmbiguous && other != ""
	})
	cfg := worker.CallbackConfig{PublicURL: h.receiver, Secret: []byte("test-secret")}
	body := fmt.Sprintf(`{"code":200,"message":"success","data":{"taskId":%q,"state":"success","resultJson":"{\"resultUrls\":[\"http://x/y.mp4\"]}"}}`, other)
	resp, err := http.Post(cfg.URL(plan.ID, 0, 0), "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(300 * time.Millisecond)
	if j := h.jobs(plan.ID, 1)[0]; j.State != tasks.StateAmbiguous || j.TaskID != "" {
		t.Fatalf("the ambiguous row took another row's task: %s %q", j.State, j.TaskID)
	}
	h.waitFor(plan.ID, 30*time.Second, func(c batch.Counts) bool { return c[tasks.StateDone] == 2 })
	jobs := h.jobs(plan.ID, 2)
	if jobs[0].TaskID == "" || jobs[0].TaskID == jobs[1].TaskID {
		t.Errorf("rows bound to tasks %q and %q", jobs[0].TaskID, jobs[1].TaskID)
	}
}

// unreadableStatus answers every status read with seedance.ErrUnreadable
// and counts the reads.
type unreadableStatus struct {
	worker.Provider
	reads atomic.Int32
}

func (p *unreadableStatus) Status(context.Context, string) (seedance.Task, error) {
	p.reads.Add(1)
	return seedance.Task{}, &seedance.Error{Kind: seedance.ErrUnreadable, Op: "status", StatusCode: 200, Excerpt: "{}"}
}

// TestCallbackUnreadableKeepsAmbiguous delivers a callback for an ambiguous
// row whose confirming read cannot be read: the row must stay ambiguous,
// say which task the callback named, and not read again and again.
func TestCallbackUnreadableKeepsAmbiguous(t *testing.T) {
	t.Parallel()
	prov := &unreadableStatus{}
	h := newHarnessWith(t, func(o *options) {
		o.callback = true
		o.wrap = func(p worker.Provider, _ *ratelimit.Limiter) worker.Provider {
			prov.Provider = p
			return prov
		}
	})
	plan := h.enqueue("prompt\na scene whose answer is lost [sim:create-lost]\n")
	h.start()
	// The callback's task ends (a retry of it would be waiting in the retry
	// set, and read again) and nothing is left to submit or poll.
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	testwait.Until(t, 20*time.Second, func() error {
		if prov.reads.Load() == 0 {
			return errors.New("the callback was never confirmed")
		}
		for _, q := range []string{h.queues.Poll, h.queues.Submit} {
			info, err := insp.GetQueueInfo(q)
			if err != nil {
				return err
			}
			if n := info.Pending + info.Active + info.Scheduled + info.Retry; n > 0 {
				return fmt.Errorf("%d tasks left in %s", n, q)
			}
		}
		return nil
	})
	j := h.jobs(plan.ID, 1)[0]
	if j.State != tasks.StateAmbiguous || j.TaskID != "" || !strings.Contains(j.LastError, "a callback named task task_") {
		t.Errorf("row %s task %q, last error %q; want ambiguous, unbound, naming the task", j.State, j.TaskID, j.LastError)
	}
	if n := prov.reads.Load(); n != 1 {
		t.Errorf("%d confirming reads, want 1", n)
	}
}

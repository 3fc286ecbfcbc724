package worker_test

import (
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// FuzzCallbackReceiver posts arbitrary paths and bodies to the callback
// receiver. Whatever comes, it must not panic, must answer one of its
// documented statuses, and must never queue a callback or change a job
// unless the path carries the row's own token.
func FuzzCallbackReceiver(f *testing.F) {
	h := newHarnessWith(f, func(o *options) { o.callback = true })
	plan := h.enqueue("prompt\nthe only scene\n")
	cb := worker.CallbackConfig{PublicURL: h.receiver, Secret: []byte("test-secret")}
	valid := strings.TrimPrefix(cb.URL(plan.ID, 0, 0), h.receiver)
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	f.Cleanup(func() { insp.Close() })
	handler := h.worker.CallbackHandler()
	body := `{"code":200,"message":"success","data":{"taskId":"task_1","state":"success","resultJson":"{\"resultUrls\":[\"http://x/a.mp4\"]}"}}`

	f.Add(valid, body)
	f.Add(path.Dir(valid)+"/forged-token", body)
	f.Add("/callback/"+plan.ID+"/-1/0/x", body)
	f.Add("/callback/"+plan.ID+"/0/999999999999999999999/x", "{")
	f.Add("/callback/../../etc/passwd", "")
	f.Add(valid, "not json")
	f.Add(valid, strings.Repeat("x", 70000))
	f.Add("/callback/"+plan.ID+"/00/0/"+path.Base(valid), body)

	documented := map[int]bool{200: true, 400: true, 401: true, 404: true, 405: true, 413: true, 421: true, 503: true, 301: true, 307: true}
	f.Fuzz(func(t *testing.T, p, b string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		req := httptest.NewRequest(http.MethodPost, "http://"+strings.TrimPrefix(h.receiver, "http://")+"/", strings.NewReader(b))
		req.URL.Path, req.URL.RawPath = p, ""
		req.RequestURI = p
		rw := httptest.NewRecorder()
		handler.ServeHTTP(rw, req)
		if !documented[rw.Code] {
			t.Fatalf("POST %q answered %d", p, rw.Code)
		}
		if p == valid {
			// The real token: it may queue a callback; take it away again.
			_ = insp.DeleteTask(h.queues.Poll, tasks.CallbackTaskID(plan.ID, 0, 0))
			return
		}
		if _, err := insp.GetTaskInfo(h.queues.Poll, tasks.CallbackTaskID(plan.ID, 0, 0)); err == nil {
			t.Fatalf("POST %q (%d) queued a callback without the row's token", p, rw.Code)
		}
		if j, err := h.store.Job(t.Context(), plan.ID, 0); err != nil || j.State != tasks.StateQueued {
			t.Fatalf("POST %q changed the job: %v %v", p, j.State, err)
		}
	})
}

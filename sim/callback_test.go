package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// cbScale makes a 4 s video take 40–60 ms and callback retries come after
// 30, 60 and 120 ms; a receiver has 30 ms to answer.
const cbScale = 1000

// hit is one request a receiver got.
type hit struct {
	at          time.Time
	method      string
	contentType string
	body        []byte
}

// receiver is a callback receiver: an HTTP server that records every request.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	hits   []hit
	notify chan struct{}
}

// newReceiver serves a receiver whose answer to its n-th request (from 0)
// is the HTTP status answer(n); a status of 0 means never answering (until
// the sender gives up).
func newReceiver(t testing.TB, answer func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{notify: make(chan struct{}, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.hits)
		rc.hits = append(rc.hits, hit{time.Now(), r.Method, r.Header.Get("Content-Type"), body})
		rc.mu.Unlock()
		select {
		case rc.notify <- struct{}{}:
		default: // waitHits rereads the hits anyway
		}
		status := answer(n)
		if status == 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// url returns the callback URL of the receiver.
func (rc *receiver) url() string { return rc.srv.URL + "/hook/tok_1" }

// got returns a copy of the requests received so far.
func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

// waitHits waits until the receiver has got n requests, without sending any
// request to the simulator, and returns them.
func (rc *receiver) waitHits(t testing.TB, n int) []hit {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		if h := rc.got(); len(h) >= n {
			return h
		}
		select {
		case <-rc.notify:
		case <-deadline:
			t.Fatalf("receiver got %d requests, want %d", len(rc.got()), n)
		}
	}
}

// cbBody returns the body of a 4 s callback-mode create to url.
func cbBody(t testing.TB, url, prompt string) string {
	return body(t, func(r, in map[string]any) {
		r["request_type"], r["callback_url"] = "callback", url
		in["prompt"], in["duration"] = prompt, 4
	})
}

// cbSetup serves a simulator on the real clock at cbScale, with cfg's
// callback settings. Receivers get a second to answer, not the 30 ms of
// the provider's 30 s at cbScale, which a busy machine may miss.
func cbSetup(t testing.TB, cfg Config) *bundle {
	cfg.Now, cfg.TimeScale = time.Now, cbScale
	if cfg.CallbackTimeout == 0 {
		cfg.CallbackTimeout = time.Second
	}
	return setup(t, cfg)
}

// decodeCallback decodes a delivery body as a status-read body.
func decodeCallback(t testing.TB, raw []byte) view {
	t.Helper()
	var a struct {
		Code int             `json:"code"`
		Msg  string          `json:"message"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.Code != 200 || a.Msg != "success" {
		t.Fatalf("callback body %s: %v", raw, err)
	}
	var v view
	if err := json.Unmarshal(a.Data, &v); err != nil {
		t.Fatalf("callback data %s: %v", a.Data, err)
	}
	return v
}

func TestCallbackDelivery(t *testing.T) {
	rc := newReceiver(t, func(int) int { return 200 })
	b := cbSetup(t, Config{})
	okID := b.create(t, cbBody(t, rc.url(), "a calm lake"))
	failID := b.create(t, cbBody(t, rc.url(), "a fight [sim:content-violation]"))
	// An async task never gets a callback, even with a callback_url.
	asyncID := b.create(t, body(t, func(r, in map[string]any) { r["callback_url"], in["duration"] = rc.url(), 4 }))

	// Deliveries come from the simulator's timers: no request reaches it
	// while waiting.
	hits := rc.waitHits(t, 2)
	byID := map[string]hit{}
	for _, h := range hits {
		if h.method != "POST" || h.contentType != "application/json" {
			t.Fatalf("delivery %s with Content-Type %q", h.method, h.contentType)
		}
		v := decodeCallback(t, h.body)
		byID[v.TaskID] = h
		if v.CompleteTime == nil || h.at.Before(time.UnixMilli(*v.CompleteTime)) {
			t.Fatalf("delivery at %v before completeTime %v", h.at, v.CompleteTime)
		}
	}
	if v := decodeCallback(t, byID[okID].body); v.State != "success" || v.FailCode != "" || v.CostTime == nil {
		t.Fatalf("success callback: %+v", v)
	} else {
		var res struct {
			ResultURLs []string `json:"resultUrls"`
		}
		if err := json.Unmarshal([]byte(v.ResultJSON), &res); err != nil ||
			!slices.Equal(res.ResultURLs, []string{b.srv.URL + "/files/" + okID + ".mp4"}) {
			t.Fatalf("resultJson %q: %v", v.ResultJSON, err)
		}
	}
	if v := decodeCallback(t, byID[failID].body); v.State != "failed" || v.FailCode != "CONTENT_VIOLATION" || v.ResultJSON != "" {
		t.Fatalf("failed callback: %+v", v)
	}
	if st := b.sim.Stats(); len(st.StatusReadsPerTask) != 0 || st.Count(KindStatus, 200) != 0 {
		t.Fatalf("status reads before any poll: %+v", st.StatusReadsPerTask)
	}

	// A status read now answers exactly what was delivered.
	for _, id := range []string{okID, failID} {
		a := b.do(t, "GET", statusPath(id), testKey, "")
		if !bytes.Equal(a.raw, byID[id].body) {
			t.Fatalf("status read %s, delivered %s", a.raw, byID[id].body)
		}
	}
	time.Sleep(80 * time.Millisecond) // the async task has ended by now
	if v := b.status(t, asyncID); v.State != "success" {
		t.Fatalf("async task: %+v", v)
	}
	b.sim.Close()
	if n := len(rc.got()); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
	st := b.sim.Stats()
	want := CallbackStats{Sent: 2, Delivered: 2, DroppedTasks: []string{}}
	if !callbackStatsEqual(st.Callbacks, want) {
		t.Fatalf("callback stats %+v, want %+v", st.Callbacks, want)
	}
	if st.StatusReadsPerTask[okID] != 1 || st.StatusReadsPerTask[failID] != 1 || st.StatusReadsPerTask[asyncID] != 1 {
		t.Fatalf("status reads: %v", st.StatusReadsPerTask)
	}
}

func callbackStatsEqual(a, b CallbackStats) bool {
	return a.Sent == b.Sent && a.Delivered == b.Delivered && a.Failed == b.Failed && a.Dropped == b.Dropped &&
		a.Duplicated == b.Duplicated && a.Abandoned == b.Abandoned && slices.Equal(a.DroppedTasks, b.DroppedTasks)
}

func TestCallbackRetries(t *testing.T) {
	tests := []struct {
		name   string
		answer func(n int) int
		hits   int
		want   CallbackStats
	}{
		{"500 twice then 200", func(n int) int { return []int{500, 500, 200}[min(n, 2)] }, 3,
			CallbackStats{Sent: 3, Failed: 2, Delivered: 1}},
		{"always 500", func(int) int { return 500 }, 4, CallbackStats{Sent: 4, Failed: 4, Abandoned: 1}},
		{"201 is not 200", func(int) int { return 201 }, 4, CallbackStats{Sent: 4, Failed: 4, Abandoned: 1}},
		{"never answers", func(int) int { return 0 }, 4, CallbackStats{Sent: 4, Failed: 4, Abandoned: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.answer)
			var cfg Config
			if tt.name == "never answers" { // each attempt waits out the timeout
				cfg.CallbackTimeout = 100 * time.Millisecond
			}
			b := cbSetup(t, cfg)
			b.create(t, cbBody(t, rc.url(), "a calm lake"))
			hits := rc.waitHits(t, tt.hits)
			b.sim.Close() // waits for the delivery to finish
			if n := len(rc.got()); n != tt.hits {
				t.Fatalf("receiver got %d requests, want %d", n, tt.hits)
			}
			for i := 1; i < len(hits); i++ {
				if !bytes.Equal(hits[i].body, hits[0].body) {
					t.Fatalf("attempt %d body %s, first %s", i, hits[i].body, hits[0].body)
				}
				// Retries come after 30, 60, 120 s (scaled), growing.
				gap, min := hits[i].at.Sub(hits[i-1].at), callbackRetryDelays[i-1]/cbScale
				if gap < min {
					t.Fatalf("retry %d came %v after attempt %d, want at least %v", i, gap, i-1, min)
				}
			}
			want := tt.want
			want.DroppedTasks = []string{}
			if got := b.sim.Stats().Callbacks; !callbackStatsEqual(got, want) {
				t.Fatalf("callback stats %+v, want %+v", got, want)
			}
		})
	}
}

func TestCallbackDrop(t *testing.T) {
	rc := newReceiver(t, func(int) int { return 200 })
	b := cbSetup(t, Config{CallbackDropRate: 1})
	ids := []string{b.create(t, cbBody(t, rc.url(), "one")), b.create(t, cbBody(t, rc.url(), "two"))}
	time.Sleep(100 * time.Millisecond) // both tasks end within 60 ms
	b.sim.Close()
	st := b.sim.Stats()
	if n := len(rc.got()); n != 0 {
		t.Fatalf("receiver got %d requests, want none", n)
	}
	got := slices.Sorted(slices.Values(st.Callbacks.DroppedTasks))
	if want := slices.Sorted(slices.Values(ids)); st.Callbacks.Dropped != 2 || !slices.Equal(got, want) || st.Callbacks.Sent != 0 {
		t.Fatalf("callback stats %+v, want %v dropped", st.Callbacks, want)
	}
	// Stats are copies.
	st.Callbacks.DroppedTasks[0] = "changed"
	if again := b.sim.Stats(); slices.Contains(again.Callbacks.DroppedTasks, "changed") {
		t.Fatal("Stats shares DroppedTasks")
	}
}

// TestCallbackDropSeeded checks that drop decisions follow Config.Seed, and
// that on a fake clock a callback is due once the clock shows the task ended.
func TestCallbackDropSeeded(t *testing.T) {
	pattern := func() []bool {
		rc := newReceiver(t, func(int) int { return 200 })
		b := setup(t, Config{CallbackDropRate: 0.5, Seed: 7})
		var ids []string
		for range 20 {
			ids = append(ids, b.create(t, cbBody(t, rc.url(), "a calm lake")))
		}
		if st := b.sim.Stats(); st.Callbacks.Dropped != 0 {
			t.Fatalf("dropped before the tasks ended: %+v", st.Callbacks)
		}
		b.clock.Advance(time.Minute)
		st := b.sim.Stats() // ends every task
		var p []bool
		for _, id := range ids {
			p = append(p, slices.Contains(st.Callbacks.DroppedTasks, id))
		}
		if st.Callbacks.Dropped != len(st.Callbacks.DroppedTasks) || st.Callbacks.Dropped == 0 || st.Callbacks.Dropped == 20 {
			t.Fatalf("dropped %d of 20: %+v", st.Callbacks.Dropped, st.Callbacks)
		}
		rc.waitHits(t, 20-st.Callbacks.Dropped) // the others are delivered
		b.sim.Close()
		if st := b.sim.Stats(); len(rc.got()) != 20-st.Callbacks.Dropped || st.Callbacks.Sent != 20-st.Callbacks.Dropped || st.Callbacks.Delivered != st.Callbacks.Sent {
			t.Fatalf("callback stats %+v", st.Callbacks)
		}
		return p
	}
	if p1, p2 := pattern(), pattern(); !slices.Equal(p1, p2) {
		t.Fatalf("drop patterns differ with one seed: %v, %v", p1, p2)
	}
}

func TestCallbackDuplicate(t *testing.T) {
	rc := newReceiver(t, func(int) int { return 200 })
	b := cbSetup(t, Config{CallbackDupRate: 1})
	id := b.create(t, cbBody(t, rc.url(), "a calm lake"))
	hits := rc.waitHits(t, 2)
	b.sim.Close()
	if n := len(rc.got()); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
	if !bytes.Equal(hits[0].body, hits[1].body) || decodeCallback(t, hits[1].body).TaskID != id {
		t.Fatalf("duplicate %s differs from %s", hits[1].body, hits[0].body)
	}
	want := CallbackStats{Sent: 2, Delivered: 2, Duplicated: 1, DroppedTasks: []string{}}
	if got := b.sim.Stats().Callbacks; !callbackStatsEqual(got, want) {
		t.Fatalf("callback stats %+v, want %+v", got, want)
	}
}

func TestCallbackDelay(t *testing.T) {
	const delay = 150 * time.Millisecond // real time, not scaled
	rc := newReceiver(t, func(int) int { return 200 })
	b := cbSetup(t, Config{CallbackDelay: delay})
	b.create(t, cbBody(t, rc.url(), "a calm lake"))
	h := rc.waitHits(t, 1)[0]
	v := decodeCallback(t, h.body)
	// completeTime is in whole milliseconds: allow one.
	if early := time.UnixMilli(*v.CompleteTime).Add(delay - time.Millisecond); h.at.Before(early) {
		t.Fatalf("delivered at %v, want not before %v", h.at, early)
	}
}

func TestCallbackClose(t *testing.T) {
	t.Run("before the task ends", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(int) int { return 200 })
		b := cbSetup(t, Config{})
		b.create(t, cbBody(t, rc.url(), "a calm lake"))
		b.sim.Close()
		b.sim.Close() // a second Close is harmless
		time.Sleep(100 * time.Millisecond)
		st := b.sim.Stats() // the task has ended, but no delivery starts
		if n := len(rc.got()); n != 0 || st.Succeeded != 1 || st.Callbacks.Sent != 0 {
			t.Fatalf("after Close: %d requests, stats %+v", n, st)
		}
	})
	t.Run("during the callback delay", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(int) int { return 200 })
		b := cbSetup(t, Config{CallbackDelay: time.Minute})
		b.create(t, cbBody(t, rc.url(), "a calm lake"))
		time.Sleep(80 * time.Millisecond)
		start := time.Now()
		b.sim.Close()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Close took %v", d)
		}
		if n := len(rc.got()); n != 0 {
			t.Fatalf("receiver got %d requests", n)
		}
	})
	t.Run("between retries", func(t *testing.T) {
		t.Parallel()
		rc := newReceiver(t, func(int) int { return 500 })
		b := cbSetup(t, Config{})
		b.create(t, cbBody(t, rc.url(), "a calm lake"))
		rc.waitHits(t, 1)
		b.sim.Close()
		time.Sleep(250 * time.Millisecond) // all 3 retries would have come
		st := b.sim.Stats()
		if n := len(rc.got()); n != 1 || st.Callbacks.Sent != 1 || st.Callbacks.Failed != 1 || st.Callbacks.Abandoned != 0 {
			t.Fatalf("after Close: %d requests, stats %+v", n, st.Callbacks)
		}
	})
}

func TestStatusReadsPerTask(t *testing.T) {
	b := setup(t, Config{})
	a := b.create(t, promptBody(t, "prompt a", 4))
	c := b.create(t, promptBody(t, "prompt c [sim:status-500]", 4))
	for range 3 {
		b.status(t, a)
		b.do(t, "GET", statusPath(c), testKey, "") // 500, 500, then 200
	}
	b.do(t, "GET", statusPath("task_nope"), testKey, "")
	b.do(t, "GET", statusPath(a), "wrong", "")
	st := b.sim.Stats()
	if want := map[string]int{a: 3, c: 1}; len(st.StatusReadsPerTask) != 2 ||
		st.StatusReadsPerTask[a] != want[a] || st.StatusReadsPerTask[c] != want[c] {
		t.Fatalf("StatusReadsPerTask = %v, want %v", st.StatusReadsPerTask, want)
	}
	st.StatusReadsPerTask[a] = 99
	if again := b.sim.Stats(); again.StatusReadsPerTask[a] != 3 {
		t.Fatal("Stats shares StatusReadsPerTask")
	}
}

package sim

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// reply is what a client got for one request: an answer or an error (a
// dropped connection, a time limit).
type reply struct {
	answer
	err error
}

// try sends one request with the test key through client (the server's
// own when nil) and returns the answer or the transport error.
func (b *bundle) try(t testing.TB, client *http.Client, method, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	if client == nil {
		client = b.srv.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if a.raw, err = io.ReadAll(resp.Body); err != nil {
		return reply{answer: a, err: err}
	}
	if json.Valid(a.raw) {
		json.Unmarshal(a.raw, &a)
	}
	return reply{answer: a}
}

// taskIDOf returns the taskId in a create answer's data, or "".
func taskIDOf(a answer) string {
	var d struct {
		TaskID string `json:"taskId"`
	}
	json.Unmarshal(a.Data, &d)
	return d.TaskID
}

// onlyFault checks that st counts exactly n faults of kind and none of any
// other kind.
func onlyFault(t *testing.T, st Stats, kind string, n int) {
	t.Helper()
	if len(st.Faults) != len(FaultKinds) {
		t.Fatalf("Stats.Faults has %d kinds, want %d: %v", len(st.Faults), len(FaultKinds), st.Faults)
	}
	for k, c := range st.Faults {
		if want := map[bool]int{true: n}[k == kind]; c != want {
			t.Fatalf("Stats.Faults[%s] = %d, want %d (all: %v)", k, c, want, st.Faults)
		}
	}
}

func TestFaultsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults Faults
		field  string
	}{
		{"rate above 1", Faults{Create500: 1.5}, "Create500 (create_500)"},
		{"negative rate", Faults{StatusTruncated: -0.1}, "StatusTruncated (status_truncated)"},
		{"NaN rate", Faults{Stuck: math.NaN()}, "Stuck (stuck)"},
		{"retry-after share", Faults{RetryAfterShare: 2}, "RetryAfterShare"},
		{"callback stale", Faults{CallbackStale: 1.01}, "CallbackStale"},
		{"create rates over 1", Faults{Create500: 0.6, CreateSlowCreated: 0.5}, "create_*"},
		{"status rates over 1", Faults{StatusSlow: 0.5, StatusUnknownState: 0.6}, "status_*"},
		{"negative slow delay", Faults{SlowDelay: -time.Second}, "SlowDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Config{APIKey: "k", Faults: tt.faults}); err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("New = %v, want an error naming %s", err, tt.field)
			}
			s, err := New(Config{APIKey: "k", Faults: Faults{Create500: 0.25}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetFaults(tt.faults); err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("SetFaults = %v, want an error naming %s", err, tt.field)
			}
			if f := s.Faults(); f.Create500 != 0.25 {
				t.Fatalf("faults changed by a refused SetFaults: %+v", f)
			}
		})
	}
	// Rates summing to exactly 1 are fine; a zero SlowDelay gets its default.
	s, err := New(Config{APIKey: "k", Faults: Faults{Create500: 0.5, CreateDropped: 0.25, CreateSlow: 0.25,
		StatusSlow: 1, RateLimited: 1, RetryAfterShare: 1, Stuck: 1, CallbackStale: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Faults(); f.SlowDelay != SlowDelayDefault {
		t.Fatalf("SlowDelay %v, want %v", f.SlowDelay, SlowDelayDefault)
	}
}

func TestFaultsJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Faults{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	const zero = `{"create_500":0,"create_500_created":0,"create_502_created":0,"create_dropped":0,` +
		`"create_dropped_created":0,"create_slow":0,"create_slow_created":0,"status_slow":0,"status_truncated":0,` +
		`"status_unknown_state":0,"slow_delay":"1m30s","rate_limited":0,"retry_after_share":0,"stuck":0,"callback_stale":0}`
	if string(b) != zero {
		t.Fatalf("JSON %s, want %s", b, zero)
	}
	f := Faults{Create500: 0.1, Create500Created: 0.2, Create502Created: 0.03, CreateDropped: 0.04,
		CreateDroppedCreated: 0.05, CreateSlow: 0.06, CreateSlowCreated: 0.07, StatusSlow: 0.08,
		StatusTruncated: 0.09, StatusUnknownState: 0.1, SlowDelay: 1500 * time.Millisecond,
		RateLimited: 0.11, RetryAfterShare: 0.5, Stuck: 0.12, CallbackStale: 0.13}
	b, err = json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Fatalf("round trip of %s: %+v, %v", b, back, err)
	}
	for _, bad := range []string{`{"create500":0.1}`, `{"slow_delay":90}`, `{"slow_delay":"soon"}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
}

func TestCreateFaults(t *testing.T) {
	t.Parallel()
	const slow = 30 * time.Millisecond // real time
	tests := []struct {
		name    string
		faults  Faults
		kind    string
		status  int // HTTP status, StatusLost for no answer
		created bool
		check   func(t *testing.T, a answer)
	}{
		{"500 before creating", Faults{Create500: 1}, FaultCreate500, 500, false, func(t *testing.T, a answer) {
			if a.Code != 500 || a.Msg != "internal error" || a.header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %s", a.raw)
			}
		}},
		{"500 after creating", Faults{Create500Created: 1}, FaultCreate500Created, 500, true, func(t *testing.T, a answer) {
			if a.Code != 500 || a.Msg != "internal error" || len(a.Data) != 0 {
				t.Fatalf("got %s", a.raw)
			}
		}},
		{"502 after creating", Faults{Create502Created: 1}, FaultCreate502Created, 502, true, func(t *testing.T, a answer) {
			if a.header.Get("Content-Type") != "text/html" || string(a.raw) != "<html>Bad Gateway</html>" {
				t.Fatalf("got %v %s", a.header, a.raw)
			}
		}},
		{"dropped before creating", Faults{CreateDropped: 1}, FaultCreateDropped, StatusLost, false, nil},
		{"dropped after creating", Faults{CreateDroppedCreated: 1}, FaultCreateDroppedCreated, StatusLost, true, nil},
		{"slow, nothing created", Faults{CreateSlow: 1, SlowDelay: slow}, FaultCreateSlow, 500, false, func(t *testing.T, a answer) {
			if a.Code != 500 || a.Msg != "internal error" {
				t.Fatalf("got %s", a.raw)
			}
		}},
		{"slow, created", Faults{CreateSlowCreated: 1, SlowDelay: slow}, FaultCreateSlowCreated, 200, true, func(t *testing.T, a answer) {
			if a.Code != 200 || !strings.HasPrefix(taskIDOf(a), "task_") {
				t.Fatalf("got %s", a.raw)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Seed: 1, Faults: tt.faults})
			const prompt = "one row's prompt"
			start := time.Now()
			r := b.try(t, nil, "POST", createPath, promptBody(t, prompt, 8))
			switch {
			case tt.status == StatusLost && r.err == nil:
				t.Fatalf("got an answer %d %s, want none", r.status, r.raw)
			case tt.status != StatusLost && (r.err != nil || r.status != tt.status):
				t.Fatalf("got %d %s %v, want %d", r.status, r.raw, r.err, tt.status)
			}
			if tt.check != nil {
				tt.check(t, r.answer)
			}
			if tt.faults.SlowDelay > 0 && time.Since(start) < slow {
				t.Fatalf("answered after %v, want at least %v", time.Since(start), slow)
			}
			st := b.sim.Stats()
			onlyFault(t, st, tt.kind, 1)
			n := map[bool]int{true: 1}[tt.created]
			if st.Created != n || st.CreatedPerPrompt[prompt] != n || st.InFlight != n || st.CreatedSeconds != 8*n ||
				st.Count(KindCreate, tt.status) != 1 || st.RateLimited != 0 {
				t.Fatalf("stats: %+v", st)
			}
			if len(st.FaultEvents) != 1 {
				t.Fatalf("fault events %+v", st.FaultEvents)
			}
			ev := st.FaultEvents[0]
			if ev.Kind != tt.kind || ev.Prompt != prompt || ev.Created != tt.created || (ev.TaskID != "") != tt.created {
				t.Fatalf("fault event %+v", ev)
			}
			if tt.created { // the task runs and ends as any other
				if id := taskIDOf(r.answer); id != "" && id != ev.TaskID {
					t.Fatalf("answered %s, event names %s", id, ev.TaskID)
				}
				b.clock.Advance(2 * time.Minute)
				if v := b.status(t, ev.TaskID); v.State != stateSuccess {
					t.Fatalf("task %+v", v)
				}
			}
		})
	}
}

// TestCreateFaultsAccounting draws every create fault at random from one
// seed and checks that the simulator's counts stay exact and repeat.
func TestCreateFaultsAccounting(t *testing.T) {
	t.Parallel()
	faults := Faults{Create500: 0.1, Create500Created: 0.1, Create502Created: 0.1, CreateDropped: 0.1,
		CreateDroppedCreated: 0.1, CreateSlow: 0.05, CreateSlowCreated: 0.05, SlowDelay: time.Millisecond, Stuck: 0.1}
	run := func() []FaultEvent {
		b := setup(t, Config{Seed: 42, MaxInFlight: 1000, RequestsPerMinute: 1 << 30, Faults: faults})
		answered := 0 // creates answered 200 with a task id
		for i := range 300 {
			if r := b.try(t, nil, "POST", createPath, promptBody(t, "row "+strconv.Itoa(i), 4)); r.err == nil && r.status == 200 {
				answered++
			}
		}
		st := b.sim.Stats()
		created, byKind := 0, map[string]int{}
		for _, ev := range st.FaultEvents {
			byKind[ev.Kind]++
			if ev.Kind == FaultStuck {
				continue
			}
			if ev.Created {
				created++
			}
			if ev.Created != strings.HasSuffix(ev.Kind, "_created") {
				t.Fatalf("event %+v", ev)
			}
		}
		for _, kind := range FaultKinds {
			if st.Faults[kind] != byKind[kind] {
				t.Fatalf("Faults[%s] = %d, %d events", kind, st.Faults[kind], byKind[kind])
			}
		}
		plain := answered - st.Faults[FaultCreateSlowCreated] // a slow created create also answers 200
		if st.Created != plain+created || st.RateLimited != 0 || st.DuplicateCreates != 0 || st.InFlight != st.Created || st.Stuck != st.Faults[FaultStuck] {
			t.Fatalf("created %d, answered %d plain and %d faulted; stats %+v", st.Created, plain, created, st)
		}
		for _, kind := range []string{FaultCreate500, FaultCreate500Created, FaultCreateDropped, FaultCreateDroppedCreated, FaultStuck} {
			if st.Faults[kind] < 15 {
				t.Fatalf("only %d %s of 300: %v", st.Faults[kind], kind, st.Faults)
			}
		}
		if got := st.Count(KindCreate, StatusLost); got != st.Faults[FaultCreateDropped]+st.Faults[FaultCreateDroppedCreated] {
			t.Fatalf("%d lost answers, faults %v", got, st.Faults)
		}
		return st.FaultEvents
	}
	first, second := run(), run()
	kinds := func(evs []FaultEvent) []string {
		var ks []string
		for _, ev := range evs {
			ks = append(ks, ev.Kind+" "+ev.Prompt)
		}
		return ks
	}
	if !slices.Equal(kinds(first), kinds(second)) {
		t.Fatal("one seed and one sequence of creates drew different faults")
	}
}

// TestCreateFaultsInFlight checks that after-create faults respect the
// in-flight limit, and before-create faults come before it.
func TestCreateFaultsInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 1, Faults: Faults{Create500Created: 1}})
	if r := b.try(t, nil, "POST", createPath, promptBody(t, "first", 4)); r.status != 500 {
		t.Fatalf("first: %d %s", r.status, r.raw)
	}
	if r := b.try(t, nil, "POST", createPath, promptBody(t, "second", 4)); r.status != 429 || r.Msg != msgInFlight {
		t.Fatalf("second: %d %s", r.status, r.raw)
	}
	st := b.sim.Stats()
	if st.Created != 1 || st.PeakInFlight != 1 || st.RateLimited != 1 || st.CreatedPerPrompt["second"] != 0 {
		t.Fatalf("stats: %+v", st)
	}
	onlyFault(t, st, FaultCreate500Created, 1) // the refused create got no fault

	if err := b.sim.SetFaults(Faults{Create500: 1}); err != nil {
		t.Fatal(err)
	}
	if r := b.try(t, nil, "POST", createPath, promptBody(t, "third", 4)); r.status != 500 {
		t.Fatalf("third: %d %s", r.status, r.raw)
	}
	if st := b.sim.Stats(); st.Created != 1 || st.Faults[FaultCreate500] != 1 || st.RateLimited != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestCreateFaultsSpareMarkers(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{CreateDropped: 1}})
	p := "x " + MarkerCreate502
	if r := b.try(t, nil, "POST", createPath, promptBody(t, p, 4)); r.err != nil || r.status != 502 {
		t.Fatalf("marked create: %d %v", r.status, r.err)
	}
	st := b.sim.Stats()
	if st.Created != 1 || st.Faults[FaultCreateDropped] != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// TestSlowAnswers checks on fake time that a slow answer is held exactly
// Faults.SlowDelay, is not written to a client gone before, and is written
// at once on Close.
func TestSlowAnswers(t *testing.T) {
	t.Parallel()
	const delay = 2 * time.Minute
	serve := func(s *Sim, ctx context.Context, method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	tests := []struct {
		name    string
		faults  Faults
		status  int
		created int
	}{
		{"create, nothing created", Faults{CreateSlow: 1}, 500, 0},
		{"create, created", Faults{CreateSlowCreated: 1}, 200, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tt.faults.SlowDelay = delay
				s, err := New(Config{APIKey: testKey, Faults: tt.faults})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				start := time.Now()
				rec := serve(s, t.Context(), "POST", createPath, body(t, nil))
				if took := time.Since(start); took != delay || rec.Code != tt.status {
					t.Fatalf("answered %d after %v, want %d after %v", rec.Code, took, tt.status, delay)
				}
				// A client that gives up after 30 s gets nothing written.
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				start = time.Now()
				rec = serve(s, ctx, "POST", createPath, body(t, nil))
				if took := time.Since(start); took != 30*time.Second || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
					t.Fatalf("after %v: %d %v %q", took, rec.Code, rec.Header(), rec.Body)
				}
				st := s.Stats()
				if st.Created != 2*tt.created || st.Count(KindCreate, tt.status) != 2 || st.Faults[FaultCreateSlow]+st.Faults[FaultCreateSlowCreated] != 2 {
					t.Fatalf("stats: %+v", st)
				}
			})
		})
	}
	t.Run("status", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, err := New(Config{APIKey: testKey, Faults: Faults{SlowDelay: delay}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			created := taskIDOf(decodeAnswer(t, serve(s, t.Context(), "POST", createPath, promptBody(t, "slow reads", 4))))
			time.Sleep(time.Minute) // the task has ended: 40–60 s
			s.SetFaults(Faults{StatusSlow: 1, SlowDelay: delay})
			start := time.Now()
			a := decodeAnswer(t, serve(s, t.Context(), "GET", statusPath(created), ""))
			var v view
			json.Unmarshal(a.Data, &v)
			if took := time.Since(start); took != delay || a.status != 200 || v.State != stateSuccess {
				t.Fatalf("answered %d %s after %v", a.status, a.raw, took)
			}
			// The client learned of the end when the answer was written.
			if st := s.Stats(); st.DetectionLag.Noticed != 1 || st.DetectionLag.P50 < delay.Seconds() || st.Faults[FaultStatusSlow] != 1 {
				t.Fatalf("stats: %+v", st)
			}
		})
	})
	t.Run("Close ends the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s, err := New(Config{APIKey: testKey, Faults: Faults{CreateSlowCreated: 1, SlowDelay: time.Hour}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			done := make(chan *httptest.ResponseRecorder)
			go func() { done <- serve(s, context.Background(), "POST", createPath, body(t, nil)) }()
			time.Sleep(time.Second)
			s.Close()
			rec := <-done
			if took := time.Since(start); took != time.Second || rec.Code != 200 {
				t.Fatalf("answered %d after %v", rec.Code, took)
			}
		})
	})
}

// decodeAnswer decodes a recorded provider answer.
func decodeAnswer(t testing.TB, rec *httptest.ResponseRecorder) answer {
	t.Helper()
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(a.raw, &a); err != nil {
		t.Fatalf("decode %s: %v", a.raw, err)
	}
	return a
}

// TestSlowCreateClientTimeout checks over loopback that a client whose time
// limit is shorter than SlowDelay gives up, and that the task was created
// all the same.
func TestSlowCreateClientTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{CreateSlowCreated: 1, SlowDelay: time.Minute}})
	client := b.srv.Client()
	client.Timeout = 50 * time.Millisecond
	if r := b.try(t, client, "POST", createPath, promptBody(t, "timed out", 4)); r.err == nil {
		t.Fatalf("got an answer %d %s", r.status, r.raw)
	}
	st := b.sim.Stats()
	if st.Created != 1 || st.CreatedPerPrompt["timed out"] != 1 || st.FaultEvents[0].Kind != FaultCreateSlowCreated {
		t.Fatalf("stats: %+v", st)
	}
	// The server's own Close (a cleanup) does not wait out the minute:
	// the handler ended when the client went away.
}

func TestStatusFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults Faults
		kind   string
		check  func(t *testing.T, r reply, id string)
	}{
		{"truncated", Faults{StatusTruncated: 1}, FaultStatusTruncated, func(t *testing.T, r reply, id string) {
			if r.status != 200 || r.header.Get("Content-Type") != "application/json" || json.Valid(r.raw) ||
				!strings.HasPrefix(string(r.raw), `{"code":200`) || r.header.Get("Content-Length") != strconv.Itoa(len(r.raw)) {
				t.Fatalf("got %d %v %s", r.status, r.header, r.raw)
			}
		}},
		{"unknown state", Faults{StatusUnknownState: 1}, FaultStatusUnknownState, func(t *testing.T, r reply, id string) {
			var v view
			if err := json.Unmarshal(r.Data, &v); err != nil || r.status != 200 || v.State != UnknownState || v.TaskID != id || v.ResultJSON == "" {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Seed: 1})
			id := b.create(t, promptBody(t, "status faults", 4))
			b.clock.Advance(time.Minute) // ended
			if err := b.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			tt.check(t, b.try(t, nil, "GET", statusPath(id), ""), id)
			// A faulted read tells nothing: the end is not noticed.
			if st := b.sim.Stats(); st.DetectionLag.NeverNoticed != 1 || st.StatusReadsPerTask[id] != 1 || st.Count(KindStatus, 200) != 1 {
				t.Fatalf("stats: %+v", st)
			}
			// Unknown tasks get no status fault.
			if r := b.try(t, nil, "GET", statusPath("task_nope"), ""); r.status != 404 {
				t.Fatalf("unknown task: %d %s", r.status, r.raw)
			}
			b.sim.SetFaults(Faults{})
			if v := b.status(t, id); v.State != stateSuccess {
				t.Fatalf("next read: %+v", v)
			}
			st := b.sim.Stats()
			onlyFault(t, st, tt.kind, 1)
			if st.DetectionLag.Noticed != 1 || len(st.FaultEvents) != 0 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

func TestRateLimitStorm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		share      float64
		kind       string
		retryAfter string
	}{
		{"without Retry-After", 0, FaultRateLimitedNoRetryAfter, ""},
		{"with Retry-After", 1, FaultRateLimitedRetryAfter, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// One token a minute: a storm 429 that took a token would leave
			// none for the create after the storm.
			b := setup(t, Config{RequestsPerMinute: 1, Burst: 1,
				Faults: Faults{RateLimited: 1, RetryAfterShare: tt.share}})
			for _, path := range []string{createPath, statusPath("task_nope"), createPath} {
				method := map[bool]string{true: "POST", false: "GET"}[path == createPath]
				r := b.try(t, nil, method, path, body(t, nil))
				if r.status != 429 || r.Code != 429 || r.Msg != msgRateLimited || r.header.Get("Retry-After") != tt.retryAfter {
					t.Fatalf("%s in a storm: %d %v %s", method, r.status, r.header, r.raw)
				}
			}
			if a := b.do(t, "POST", createPath, "wrong", body(t, nil)); a.status != 401 {
				t.Fatalf("wrong key in a storm: %d", a.status)
			}
			st := b.sim.Stats()
			onlyFault(t, st, tt.kind, 3)
			if st.RateLimited != 3 || st.Count(KindCreate, 429) != 2 || st.Count(KindStatus, 429) != 1 || st.Created != 0 {
				t.Fatalf("stats: %+v", st)
			}
			b.sim.SetFaults(Faults{}) // the storm ends
			b.create(t, body(t, nil))
			if a := b.do(t, "POST", createPath, testKey, body(t, nil)); a.status != 429 || a.header.Get("Retry-After") != "60" {
				t.Fatalf("past the request limit: %d %v", a.status, a.header)
			}
			if st := b.sim.Stats(); st.RateLimited != 4 || st.Created != 1 || st.Faults[tt.kind] != 3 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
	t.Run("share", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Seed: 3, RequestsPerMinute: 1 << 30, Faults: Faults{RateLimited: 0.5, RetryAfterShare: 0.5}})
		with, without, other := 0, 0, 0
		for range 400 {
			r := b.try(t, nil, "GET", statusPath("task_nope"), "")
			switch {
			case r.status == 429 && r.header.Get("Retry-After") == "1":
				with++
			case r.status == 429 && r.header.Get("Retry-After") == "":
				without++
			default:
				other++
			}
		}
		st := b.sim.Stats()
		if with < 70 || without < 70 || other < 150 || st.Faults[FaultRateLimitedRetryAfter] != with ||
			st.Faults[FaultRateLimitedNoRetryAfter] != without || st.RateLimited != with+without {
			t.Fatalf("%d with, %d without Retry-After, %d others; stats %+v", with, without, other, st)
		}
	})
}

func TestStuck(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 2, Faults: Faults{Stuck: 1}})
	fixedGeneration(b, 40*time.Second)
	ids := []string{b.create(t, promptBody(t, "stuck one", 4)), b.create(t, promptBody(t, "stuck two", 4))}
	b.sim.SetFaults(Faults{})
	b.clock.Advance(time.Hour)
	for _, id := range ids {
		if v := b.status(t, id); v.State != stateProcessing || v.CompleteTime != nil {
			t.Fatalf("an hour on: %+v", v)
		}
	}
	// Stuck tasks count in flight: the limit refuses a third, and says to
	// try again soon rather than at a completion that never comes.
	a := b.do(t, "POST", createPath, testKey, promptBody(t, "third", 4))
	if a.status != 429 || a.Msg != msgInFlight || a.header.Get("Retry-After") != "1" {
		t.Fatalf("third create: %d %v %s", a.status, a.header, a.raw)
	}
	st := b.sim.Stats()
	onlyFault(t, st, FaultStuck, 2)
	if st.Stuck != 2 || st.InFlight != 2 || st.Created != 2 || st.Succeeded != 0 || st.DetectionLag.NeverNoticed != 0 {
		t.Fatalf("stats while stuck: %+v", st)
	}
	if len(st.FaultEvents) != 2 || st.FaultEvents[1] != (FaultEvent{Kind: FaultStuck, Prompt: "stuck two", Created: true, TaskID: ids[1]}) {
		t.Fatalf("fault events %+v", st.FaultEvents)
	}

	if n := b.sim.Unstick(); n != 2 {
		t.Fatalf("Unstick = %d, want 2", n)
	}
	for _, id := range ids {
		v := b.status(t, id)
		if v.State != stateSuccess || v.CostTime == nil || time.Duration(*v.CostTime)*time.Millisecond != time.Hour {
			t.Fatalf("after Unstick: %+v", v)
		}
	}
	b.create(t, promptBody(t, "third", 4))
	if n := b.sim.Unstick(); n != 0 {
		t.Fatalf("second Unstick = %d", n)
	}
	// Both slots were held for the whole hour: the window from the 2nd
	// create to the 3rd was all busy.
	st = b.sim.Stats()
	if st.Stuck != 0 || st.InFlight != 1 || st.Succeeded != 2 || st.Created != 3 || !near(st.BusyUtilization, 1) ||
		!near(st.BusyWindow, 3600) || st.DetectionLag.Noticed != 2 {
		t.Fatalf("stats after Unstick: %+v", st)
	}
}

// TestStuckCallback checks that a stuck callback-mode task gets no callback
// until Unstick ends it.
func TestStuckCallback(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int) int { return http.StatusOK })
	b := setup(t, Config{Faults: Faults{Stuck: 1}})
	id := b.create(t, cbBody(t, rc.url(), "a stuck callback task"))
	b.clock.Advance(time.Hour)
	b.sim.Stats()
	time.Sleep(20 * time.Millisecond) // a delivery started would be on its way
	if n := len(rc.got()); n != 0 {
		t.Fatalf("receiver got %d requests while the task was stuck", n)
	}
	b.sim.Unstick()
	if v := decodeCallback(t, rc.waitHits(t, 1)[0].body); v.TaskID != id || v.State != stateSuccess {
		t.Fatalf("callback %+v", v)
	}
}

func TestCallbackStale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		answer func(n int) int
		states []string // the states delivered, in order
		want   CallbackStats
		stale  int
	}{
		{"after the final delivery", Config{}, func(int) int { return 200 },
			[]string{stateSuccess, stateProcessing}, CallbackStats{Sent: 2, Delivered: 2, Stale: 1}, 1},
		{"after a retried one", Config{}, func(n int) int { return []int{500, 200, 200}[min(n, 2)] },
			[]string{stateSuccess, stateSuccess, stateProcessing}, CallbackStats{Sent: 3, Delivered: 2, Failed: 1, Stale: 1}, 1},
		{"after the duplicate", Config{CallbackDupRate: 1}, func(int) int { return 200 },
			[]string{stateSuccess, stateSuccess, stateProcessing}, CallbackStats{Sent: 3, Delivered: 3, Duplicated: 1, Stale: 1}, 1},
		{"not without a final delivery", Config{}, func(int) int { return 500 },
			[]string{stateSuccess, stateSuccess, stateSuccess, stateSuccess}, CallbackStats{Sent: 4, Failed: 4, Abandoned: 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.answer)
			cfg := tt.cfg
			cfg.Faults = Faults{CallbackStale: 1}
			b := cbSetup(t, cfg)
			id := b.create(t, cbBody(t, rc.url(), "a calm lake"))
			hits := rc.waitHits(t, len(tt.states))
			b.sim.Close() // waits for the deliveries to finish
			if n := len(rc.got()); n != len(tt.states) {
				t.Fatalf("receiver got %d requests, want %d", n, len(tt.states))
			}
			for i, h := range hits {
				v := decodeCallback(t, h.body)
				if v.TaskID != id || v.State != tt.states[i] || (v.State == stateProcessing) != (v.CompleteTime == nil) {
					t.Fatalf("delivery %d: %+v, want state %s", i, v, tt.states[i])
				}
			}
			st := b.sim.Stats()
			want := tt.want
			want.DroppedTasks = []string{}
			if !callbackStatsEqual(st.Callbacks, want) || st.Callbacks.Stale != want.Stale {
				t.Fatalf("callback stats %+v, want %+v", st.Callbacks, want)
			}
			onlyFault(t, st, FaultCallbackStale, tt.stale)
			if tt.stale == 1 && (len(st.FaultEvents) != 1 || st.FaultEvents[0] != (FaultEvent{Kind: FaultCallbackStale, Prompt: "a calm lake", Created: true, TaskID: id})) {
				t.Fatalf("fault events %+v", st.FaultEvents)
			}
			if tt.stale == 1 && st.DetectionLag.Noticed != 1 {
				t.Fatalf("lag %+v", st.DetectionLag)
			}
		})
	}
}

// TestFaultsOverHTTP switches faults on and off at run time over HTTP.
func TestFaultsOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Seed: 1})
	put := func(key, body string) answer {
		t.Helper()
		return b.do(t, "PUT", "/sim/faults", key, body)
	}

	a := b.do(t, "GET", "/sim/faults", "", "") // no key needed
	var got Faults
	if err := json.Unmarshal(a.raw, &got); err != nil || a.status != 200 || got != (Faults{SlowDelay: SlowDelayDefault}) {
		t.Fatalf("GET /sim/faults: %d %s %v", a.status, a.raw, err)
	}
	for _, tt := range []struct {
		name, key, body string
		status          int
		msg             string
	}{
		{"no key", "", `{"create_500":1}`, 401, msgUnauthorized},
		{"wrong key", "wrong", `{"create_500":1}`, 401, msgUnauthorized},
		{"rate above 1", testKey, `{"create_500":2}`, 400, "create_500"},
		{"unknown field", testKey, `{"create500":1}`, 400, "create500"},
		{"bad delay", testKey, `{"slow_delay":"later"}`, 400, "slow_delay"},
		{"not JSON", testKey, `create_500=1`, 400, "faults"},
	} {
		if a := put(tt.key, tt.body); a.status != tt.status || a.Code != tt.status || !strings.Contains(a.Msg, tt.msg) {
			t.Fatalf("%s: %d %s, want %d naming %s", tt.name, a.status, a.raw, tt.status, tt.msg)
		}
	}

	// A storm on: every provider request answers 429.
	if a := put(testKey, `{"rate_limited":1,"retry_after_share":1}`); a.status != 200 ||
		!strings.Contains(string(a.raw), `"rate_limited":1,"retry_after_share":1`) {
		t.Fatalf("PUT storm: %d %s", a.status, a.raw)
	}
	if a := b.do(t, "POST", createPath, testKey, body(t, nil)); a.status != 429 || a.header.Get("Retry-After") != "1" {
		t.Fatalf("create in the storm: %d %v", a.status, a.header)
	}
	// The storm off, creates answered 500 after creating, with a short hold.
	if a := put(testKey, `{"create_500_created":1,"stuck":1,"slow_delay":"10ms"}`); a.status != 200 {
		t.Fatalf("PUT: %d %s", a.status, a.raw)
	}
	a = b.do(t, "GET", "/sim/faults", "", "")
	if err := json.Unmarshal(a.raw, &got); err != nil || got != (Faults{Create500Created: 1, Stuck: 1, SlowDelay: 10 * time.Millisecond}) {
		t.Fatalf("GET after PUT: %s %v", a.raw, err)
	}
	if a := b.do(t, "POST", createPath, testKey, promptBody(t, "billed unseen", 4)); a.status != 500 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	// Every fault off: a create answers normally.
	if a := put(testKey, `{}`); a.status != 200 {
		t.Fatalf("PUT {}: %d %s", a.status, a.raw)
	}
	id := b.create(t, promptBody(t, "normal", 4))

	if a := b.do(t, "POST", "/sim/unstick", "", ""); a.status != 401 {
		t.Fatalf("unstick without key: %d", a.status)
	}
	a = b.do(t, "POST", "/sim/unstick", testKey, "")
	if a.status != 200 || string(a.raw) != `{"unstuck":1}` {
		t.Fatalf("unstick: %d %s", a.status, a.raw)
	}
	b.clock.Advance(time.Minute)
	if v := b.status(t, id); v.State != stateSuccess {
		t.Fatalf("normal task: %+v", v)
	}
	a = b.do(t, "GET", "/sim/stats", "", "")
	var st Stats
	if err := json.Unmarshal(a.raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.Faults[FaultRateLimitedRetryAfter] != 1 || st.Faults[FaultCreate500Created] != 1 || st.Faults[FaultStuck] != 1 ||
		st.Created != 2 || st.Succeeded != 2 || st.Stuck != 0 || st.RateLimited != 1 || len(st.FaultEvents) != 2 ||
		st.FaultEvents[0].Prompt != "billed unseen" || !st.FaultEvents[1].Created {
		t.Fatalf("stats: %s", a.raw)
	}
	for _, key := range []string{`"faults":{`, `"create_dropped_created":0`, `"fault_events":[`, `"stuck":0`, `"stale":0`} {
		if !strings.Contains(string(a.raw), key) {
			t.Errorf("stats JSON lacks %s: %s", key, a.raw)
		}
	}
	// Control requests are neither provider requests nor rate limited.
	if st.Count(KindCreate, 200)+st.Count(KindCreate, 429)+st.Count(KindCreate, 500) != 3 || len(st.Requests) != 2 {
		t.Fatalf("requests: %v", st.Requests)
	}
}

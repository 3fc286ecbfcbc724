package sim

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// SlowDelayDefault is the default Faults.SlowDelay: longer than the 60 s a
// client usually gives one request.
const SlowDelayDefault = 90 * time.Second

// Fault kinds counted in Stats.Faults and named in FaultEvent.Kind. A create
// kind ending in "_created" always creates (and bills) the task; the other
// create kinds never do.
const (
	// FaultCreate500: the create answers 500 with the provider's JSON body
	// and creates nothing.
	FaultCreate500 = "create_500"
	// FaultCreate500Created: the task is created, then the create answers
	// 500 with the provider's JSON body.
	FaultCreate500Created = "create_500_created"
	// FaultCreate502Created: the task is created, then the create answers
	// 502 with an HTML gateway page.
	FaultCreate502Created = "create_502_created"
	// FaultCreateDropped: the connection is closed without an answer before
	// anything is created.
	FaultCreateDropped = "create_dropped"
	// FaultCreateDroppedCreated: the task is created, then the connection
	// is closed without an answer.
	FaultCreateDroppedCreated = "create_dropped_created"
	// FaultCreateSlow: nothing is created; after Faults.SlowDelay the
	// create answers 500 with the provider's JSON body.
	FaultCreateSlow = "create_slow"
	// FaultCreateSlowCreated: the task is created; its normal answer is
	// written after Faults.SlowDelay.
	FaultCreateSlowCreated = "create_slow_created"
	// FaultStatusSlow: a status read's answer is written after
	// Faults.SlowDelay.
	FaultStatusSlow = "status_slow"
	// FaultStatusTruncated: a status read answers 200 with the first half
	// of its JSON body only.
	FaultStatusTruncated = "status_truncated"
	// FaultStatusUnknownState: a status read answers 200 with the state
	// UnknownState.
	FaultStatusUnknownState = "status_unknown_state"
	// FaultRateLimitedRetryAfter: an extra 429 with a Retry-After header.
	FaultRateLimitedRetryAfter = "rate_limited_retry_after"
	// FaultRateLimitedNoRetryAfter: an extra 429 without a Retry-After header.
	FaultRateLimitedNoRetryAfter = "rate_limited_no_retry_after"
	// FaultStuck: a created task stays "processing" until Sim.Unstick.
	FaultStuck = "stuck"
	// FaultCallbackStale: after a task's final callback was delivered, a
	// stale delivery showing it "processing" is sent.
	FaultCallbackStale = "callback_stale"
)

// FaultKinds lists every fault kind, in the order of the Faults fields.
var FaultKinds = []string{
	FaultCreate500, FaultCreate500Created, FaultCreate502Created,
	FaultCreateDropped, FaultCreateDroppedCreated, FaultCreateSlow, FaultCreateSlowCreated,
	FaultStatusSlow, FaultStatusTruncated, FaultStatusUnknownState,
	FaultRateLimitedRetryAfter, FaultRateLimitedNoRetryAfter,
	FaultStuck, FaultCallbackStale,
}

// Faults are the rates (0 to 1) of provider faults the simulator injects at
// random, drawn from its seeded generator under its lock (see the package
// doc, Faults). The zero value injects none. Set them in Config.Faults and
// change them at run time with Sim.SetFaults or PUT /sim/faults.
//
// The create rates are shares of one draw per create, so together they
// may not exceed 1; so for the status rates.
type Faults struct {
	// Create500 is the share of creates answered 500
	// {"code":500,"message":"internal error"} without creating anything.
	Create500 float64
	// Create500Created is the share of creates that create the task, then
	// answer 500 {"code":500,"message":"internal error"}.
	Create500Created float64
	// Create502Created is the share of creates that create the task, then
	// answer 502 with an HTML gateway page.
	Create502Created float64
	// CreateDropped is the share of creates whose connection is closed
	// without an answer, nothing created.
	CreateDropped float64
	// CreateDroppedCreated is the share of creates that create the task,
	// then close the connection without an answer.
	CreateDroppedCreated float64
	// CreateSlow is the share of creates that create nothing and answer
	// 500 {"code":500,"message":"internal error"} after SlowDelay.
	CreateSlow float64
	// CreateSlowCreated is the share of creates that create the task and
	// write their normal answer after SlowDelay.
	CreateSlowCreated float64
	// StatusSlow is the share of status reads whose answer (computed when
	// the read arrives) is written after SlowDelay.
	StatusSlow float64
	// StatusTruncated is the share of status reads answered 200 with a
	// body cut in the middle: malformed JSON.
	StatusTruncated float64
	// StatusUnknownState is the share of status reads answered 200 with the
	// state UnknownState.
	StatusUnknownState float64
	// SlowDelay is how long a slow answer is held, in real time (NOT
	// divided by Config.TimeScale); set it past the client's time limit of
	// a request to make it give up. Default SlowDelayDefault (90s).
	SlowDelay time.Duration
	// RateLimited is the share of provider requests (creates and status
	// reads with a valid key) answered with an extra 429, a 429 storm.
	RateLimited float64
	// RetryAfterShare is the share of those extra 429s that carry a
	// Retry-After header (of 1 second); the others carry none.
	RetryAfterShare float64
	// Stuck is the share of created tasks that stay "processing" for ever,
	// counting in flight, until Sim.Unstick or POST /sim/unstick ends them.
	Stuck float64
	// CallbackStale is the share of callback-mode tasks whose final
	// delivery, once answered 200, is followed by a stale delivery that
	// shows the task "processing".
	CallbackStale float64
}

// faultsJSON is the JSON form of Faults (GET and PUT /sim/faults).
type faultsJSON struct {
	Create500            float64 `json:"create_500"`
	Create500Created     float64 `json:"create_500_created"`
	Create502Created     float64 `json:"create_502_created"`
	CreateDropped        float64 `json:"create_dropped"`
	CreateDroppedCreated float64 `json:"create_dropped_created"`
	CreateSlow           float64 `json:"create_slow"`
	CreateSlowCreated    float64 `json:"create_slow_created"`
	StatusSlow           float64 `json:"status_slow"`
	StatusTruncated      float64 `json:"status_truncated"`
	StatusUnknownState   float64 `json:"status_unknown_state"`
	SlowDelay            string  `json:"slow_delay"`
	RateLimited          float64 `json:"rate_limited"`
	RetryAfterShare      float64 `json:"retry_after_share"`
	Stuck                float64 `json:"stuck"`
	CallbackStale        float64 `json:"callback_stale"`
}

// MarshalJSON encodes f with snake_case names and SlowDelay as a Go
// duration string ("90s").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Create500: f.Create500, Create500Created: f.Create500Created, Create502Created: f.Create502Created,
		CreateDropped: f.CreateDropped, CreateDroppedCreated: f.CreateDroppedCreated,
		CreateSlow: f.CreateSlow, CreateSlowCreated: f.CreateSlowCreated,
		StatusSlow: f.StatusSlow, StatusTruncated: f.StatusTruncated, StatusUnknownState: f.StatusUnknownState,
		SlowDelay:   f.SlowDelay.String(),
		RateLimited: f.RateLimited, RetryAfterShare: f.RetryAfterShare,
		Stuck: f.Stuck, CallbackStale: f.CallbackStale,
	})
}

// UnmarshalJSON decodes the form MarshalJSON writes. Absent fields are
// zero; unknown fields are an error, so that a misspelt rate is not
// silently ignored.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("sim: faults: %w", err)
	}
	var delay time.Duration
	if j.SlowDelay != "" {
		d, err := time.ParseDuration(j.SlowDelay)
		if err != nil {
			return fmt.Errorf("sim: faults: slow_delay: %w", err)
		}
		delay = d
	}
	*f = Faults{
		Create500: j.Create500, Create500Created: j.Create500Created, Create502Created: j.Create502Created,
		CreateDropped: j.CreateDropped, CreateDroppedCreated: j.CreateDroppedCreated,
		CreateSlow: j.CreateSlow, CreateSlowCreated: j.CreateSlowCreated,
		StatusSlow: j.StatusSlow, StatusTruncated: j.StatusTruncated, StatusUnknownState: j.StatusUnknownState,
		SlowDelay:   delay,
		RateLimited: j.RateLimited, RetryAfterShare: j.RetryAfterShare,
		Stuck: j.Stuck, CallbackStale: j.CallbackStale,
	}
	return nil
}

// withDefaults returns f with a zero SlowDelay set to SlowDelayDefault.
func (f Faults) withDefaults() Faults {
	if f.SlowDelay == 0 {
		f.SlowDelay = SlowDelayDefault
	}
	return f
}

// namedRate is one fault rate with the names it goes by.
type namedRate struct {
	field, json string
	v           float64
}

// createRates returns the create fault rates with their kinds, in draw order.
func (f Faults) createRates() []kindRate {
	return []kindRate{
		{FaultCreate500, f.Create500}, {FaultCreate500Created, f.Create500Created},
		{FaultCreate502Created, f.Create502Created}, {FaultCreateDropped, f.CreateDropped},
		{FaultCreateDroppedCreated, f.CreateDroppedCreated}, {FaultCreateSlow, f.CreateSlow},
		{FaultCreateSlowCreated, f.CreateSlowCreated},
	}
}

// statusRates returns the status fault rates with their kinds, in draw order.
func (f Faults) statusRates() []kindRate {
	return []kindRate{
		{FaultStatusSlow, f.StatusSlow}, {FaultStatusTruncated, f.StatusTruncated},
		{FaultStatusUnknownState, f.StatusUnknownState},
	}
}

// kindRate is the rate of one fault kind.
type kindRate struct {
	kind string
	rate float64
}

// validate checks f (defaults applied); the error names the field.
func (f Faults) validate() error {
	for _, r := range []namedRate{
		{"Create500", "create_500", f.Create500}, {"Create500Created", "create_500_created", f.Create500Created},
		{"Create502Created", "create_502_created", f.Create502Created}, {"CreateDropped", "create_dropped", f.CreateDropped},
		{"CreateDroppedCreated", "create_dropped_created", f.CreateDroppedCreated},
		{"CreateSlow", "create_slow", f.CreateSlow}, {"CreateSlowCreated", "create_slow_created", f.CreateSlowCreated},
		{"StatusSlow", "status_slow", f.StatusSlow}, {"StatusTruncated", "status_truncated", f.StatusTruncated},
		{"StatusUnknownState", "status_unknown_state", f.StatusUnknownState},
		{"RateLimited", "rate_limited", f.RateLimited}, {"RetryAfterShare", "retry_after_share", f.RetryAfterShare},
		{"Stuck", "stuck", f.Stuck}, {"CallbackStale", "callback_stale", f.CallbackStale},
	} {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			return fmt.Errorf("sim: Faults.%s (%s) must be between 0 and 1", r.field, r.json)
		}
	}
	if sumRates(f.createRates()) > 1+1e-9 {
		return errors.New("sim: Faults.Create* (create_*) must sum to at most 1")
	}
	if sumRates(f.statusRates()) > 1+1e-9 {
		return errors.New("sim: Faults.Status* (status_*) must sum to at most 1")
	}
	if f.SlowDelay < 0 {
		return errors.New("sim: Faults.SlowDelay (slow_delay) must not be negative")
	}
	return nil
}

// sumRates returns the sum of rates.
func sumRates(rates []kindRate) float64 {
	var sum float64
	for _, r := range rates {
		sum += r.rate
	}
	return sum
}

// FaultEvent is one fault injected into a create or drawn for a task (see
// Stats.FaultEvents).
type FaultEvent struct {
	// Kind is the fault kind (FaultCreate500, ..., FaultStuck,
	// FaultCallbackStale).
	Kind string `json:"kind"`
	// Prompt is the prompt of the create or of the task.
	Prompt string `json:"prompt"`
	// Created reports whether a task was created (and billed).
	Created bool `json:"created"`
	// TaskID is the id of the task created; empty when none was.
	TaskID string `json:"task_id,omitempty"`
}

// SetFaults replaces the fault rates, with a zero SlowDelay set to its
// default. Decisions already drawn (tasks stuck, stale callbacks) stand.
// The error names the first invalid field; the rates are then unchanged.
func (s *Sim) SetFaults(f Faults) error {
	f = f.withDefaults()
	if err := f.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Faults returns the current fault rates.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Unstick ends every task stuck by Faults.Stuck now, as it would have
// ended (success, or its failure), and returns how many it ended. Their
// callbacks, if any, start at once.
func (s *Sim) Unstick() int {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.inflight {
		if !t.stuck {
			continue
		}
		t.stuck = false
		t.complete = now
		if t.pendingUntil.After(now) {
			t.pendingUntil = now
		}
		if t.span >= 0 {
			s.spans[t.span].complete = now.UnixNano()
		}
		n++
	}
	if n > 0 {
		heap.Init(&s.inflight)
		s.stats.Stuck -= n
	}
	s.advance(now)
	return n
}

// drawLocked draws one fault among rates (at most one, the rates being
// shares of one draw), or "" for none. It draws nothing when every rate is
// 0, so that a simulator without faults keeps its sequence of decisions.
// s.mu is held.
func (s *Sim) drawLocked(rates []kindRate) string {
	if sumRates(rates) == 0 {
		return ""
	}
	u := s.rng.Float64()
	for _, r := range rates {
		if u < r.rate {
			return r.kind
		}
		u -= r.rate
	}
	return ""
}

// chanceLocked reports true with probability p, drawing only when p > 0.
// s.mu is held.
func (s *Sim) chanceLocked(p float64) bool {
	return p > 0 && s.rng.Float64() < p
}

// faultLocked counts one fault of kind and, for a create or task fault,
// records it with its prompt and the task created (nil: none). s.mu is held.
func (s *Sim) faultLocked(kind, prompt string, t *task) {
	s.stats.Faults[kind]++
	if prompt == "" && t == nil {
		return
	}
	ev := FaultEvent{Kind: kind, Prompt: prompt}
	if t != nil {
		ev.Created, ev.TaskID = true, t.id
	}
	s.stats.FaultEvents = append(s.stats.FaultEvents, ev)
}

// stormLocked draws an extra 429 (Faults.RateLimited) for a request of
// kind; it counts it and returns whether the answer carries a Retry-After
// header. s.mu is held.
func (s *Sim) stormLocked(kind string) (hit, retryAfter bool) {
	if !s.chanceLocked(s.faults.RateLimited) {
		return false, false
	}
	retryAfter = s.chanceLocked(s.faults.RetryAfterShare)
	fault := FaultRateLimitedNoRetryAfter
	if retryAfter {
		fault = FaultRateLimitedRetryAfter
	}
	s.countLocked(kind, http.StatusTooManyRequests)
	s.stats.RateLimited++
	s.faultLocked(fault, "", nil)
	return true, retryAfter
}

// hold waits d before a slow answer is written. It reports false when the
// client went away first (the answer is then not written), and true at
// once when Close is called.
func (s *Sim) hold(r *http.Request, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.closing:
	case <-r.Context().Done():
		return false
	}
	return true
}

// handleGetFaults answers the current fault rates.
func (s *Sim) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// handlePutFaults replaces the fault rates with the JSON body's (absent
// fields are zero) and answers them.
func (s *Sim) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, envelope{Code: 401, Message: msgUnauthorized})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, envelope{Code: 400, Message: "cannot read request body: " + err.Error()})
		return
	}
	var f Faults
	if err := f.UnmarshalJSON(body); err != nil {
		writeJSON(w, http.StatusBadRequest, envelope{Code: 400, Message: err.Error()})
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeJSON(w, http.StatusBadRequest, envelope{Code: 400, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// handleUnstick ends the stuck tasks and answers {"unstuck":N}.
func (s *Sim) handleUnstick(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, envelope{Code: 401, Message: msgUnauthorized})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Unstuck int `json:"unstuck"`
	}{s.Unstick()})
}

// writeTruncated writes v as a 200 JSON answer cut after half its bytes.
func writeTruncated(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode answer", http.StatusInternalServerError)
		return
	}
	b = b[:len(b)/2]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// neverComplete is the completion time of a stuck task: later than any
// clock reading, and still representable in Unix nanoseconds.
var neverComplete = time.Unix(0, math.MaxInt64)

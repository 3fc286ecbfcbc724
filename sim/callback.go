package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Callback timings at TimeScale 1 (PROVIDER.md, Callbacks); all are divided
// by Config.TimeScale.
const (
	// callbackAnswerTime is how long a receiver has to answer an attempt.
	callbackAnswerTime = 30 * time.Second
	// callbackDupDelay is how long after a successful delivery its
	// duplicate (Config.CallbackDupRate) is sent.
	callbackDupDelay = 2 * time.Second
)

// callbackRetryDelays are the waits before the retries of a failed
// delivery: one retry per entry, so 4 attempts in all.
var callbackRetryDelays = []time.Duration{30 * time.Second, 60 * time.Second, 120 * time.Second}

// callbackBodyLimit bounds how much of a receiver's answer is read.
const callbackBodyLimit = 64 << 10

// callbackTimeout returns the time a receiver has to answer at scale.
func callbackTimeout(scale float64) time.Duration {
	return scaled(callbackAnswerTime, scale)
}

// scaled returns d divided by scale.
func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) / scale)
}

// Close stops the timers of tasks not yet ended, ends the waits of
// deliveries between attempts, and waits for attempts in progress (at most
// 30 s/TimeScale each) to finish. After Close no delivery starts; the
// simulator still answers requests. Close may be called more than once.
func (s *Sim) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
		for _, t := range s.inflight {
			if t.timer != nil {
				t.timer.Stop()
				t.timer = nil
			}
		}
	}
	s.mu.Unlock()
	s.deliveries.Wait()
	s.cfg.CallbackClient.CloseIdleConnections()
}

// setupCallbackLocked makes t a callback-mode task: it draws the drop,
// duplicate and stale decisions and arms a timer for the task's end (none
// for a stuck task: Unstick ends it). s.mu is held.
func (s *Sim) setupCallbackLocked(t *task, now time.Time, url, resultURL string) {
	t.callbackURL, t.resultURL = url, resultURL
	t.dropCB = s.cfg.CallbackDropRate > 0 && s.rng.Float64() < s.cfg.CallbackDropRate
	t.dupCB = s.cfg.CallbackDupRate > 0 && s.rng.Float64() < s.cfg.CallbackDupRate
	t.staleCB = s.chanceLocked(s.faults.CallbackStale)
	if !s.closed && !t.stuck {
		t.timer = time.AfterFunc(t.complete.Sub(now), func() { s.fire(t) })
	}
}

// fire runs when t's timer expires: it ends every task complete by now,
// which starts t's delivery, or, when the clock (Config.Now) does not yet
// show t complete, re-arms the timer for the time left.
func (s *Sim) fire(t *task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || t.timer == nil {
		return
	}
	now := s.cfg.Now()
	s.advance(now)
	if !t.done {
		t.timer.Reset(t.complete.Sub(now))
	}
}

// endCallbackLocked handles the callback of t, which has just ended at now:
// it is dropped, or its delivery starts. s.mu is held.
func (s *Sim) endCallbackLocked(t *task, now time.Time) {
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	cb := &s.stats.Callbacks
	if t.dropCB {
		cb.Dropped++
		cb.DroppedTasks = append(cb.DroppedTasks, t.id)
		s.cfg.Logger.Debug("callback_dropped", slog.String("task_id", t.id))
		return
	}
	if s.closed {
		return
	}
	d := delivery{id: t.id, url: t.callbackURL, dup: t.dupCB}
	var err error
	if d.body, err = json.Marshal(envelope{Code: 200, Message: "success", Data: t.view(now, t.resultURL)}); err != nil {
		return // cannot happen: taskView always encodes
	}
	if t.staleCB {
		// What a delivery sent while the task ran would have carried.
		stale := taskView{TaskID: t.id, State: stateProcessing, CreateTime: t.created.UnixMilli()}
		if d.stale, err = json.Marshal(envelope{Code: 200, Message: "success", Data: stale}); err != nil {
			return
		}
	}
	s.deliveries.Add(1)
	go s.deliver(d)
}

// delivery is the callback of one task.
type delivery struct {
	id, url string
	body    []byte // the final state
	dup     bool   // send body again after a successful attempt
	stale   []byte // if set, sent once after the final state was delivered
}

// attemptKind tells a first attempt or retry from the extra deliveries.
type attemptKind int

const (
	attemptFinal     attemptKind = iota // the final state, first attempt or retry
	attemptDuplicate                    // the final state again (Config.CallbackDupRate)
	attemptStale                        // a stale "processing" state (Faults.CallbackStale)
)

// deliver POSTs d.body to d.url: after Config.CallbackDelay, then again
// after each retry delay while attempts fail. After a successful attempt it
// sends, callbackDupDelay apart, the duplicate when d.dup is set and then
// the stale delivery when d.stale is set. It ends early when Close is
// called.
func (s *Sim) deliver(d delivery) {
	defer s.deliveries.Done()
	if !s.sleep(s.cfg.CallbackDelay) {
		return
	}
	gap := scaled(callbackDupDelay, s.cfg.TimeScale)
	for attempt := 0; ; attempt++ {
		if s.attempt(d.id, d.url, d.body, attempt, attemptFinal) {
			n := attempt + 1
			if d.dup {
				if !s.sleep(gap) {
					return
				}
				s.attempt(d.id, d.url, d.body, n, attemptDuplicate)
				n++
			}
			if d.stale != nil && s.sleep(gap) {
				s.attempt(d.id, d.url, d.stale, n, attemptStale)
			}
			return
		}
		if attempt == len(callbackRetryDelays) {
			s.mu.Lock()
			s.stats.Callbacks.Abandoned++
			s.mu.Unlock()
			s.cfg.Logger.Debug("callback_abandoned", slog.String("task_id", d.id))
			return
		}
		if !s.sleep(scaled(callbackRetryDelays[attempt], s.cfg.TimeScale)) {
			return
		}
	}
}

// attempt makes one delivery attempt (number n, from 0) of kind and counts
// it. It reports whether the receiver answered 200 in time.
func (s *Sim) attempt(id, url string, body []byte, n int, kind attemptKind) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallbackTimeout)
	defer cancel()
	status := 0
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		if resp, err = s.cfg.CallbackClient.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, callbackBodyLimit))
			resp.Body.Close()
			status = resp.StatusCode
		}
	}
	ok := err == nil && status == http.StatusOK

	s.mu.Lock()
	cb := &s.stats.Callbacks
	cb.Sent++
	switch kind {
	case attemptDuplicate:
		cb.Duplicated++
	case attemptStale:
		cb.Stale++
		prompt := ""
		if t := s.tasks[id]; t != nil {
			prompt = t.prompt
		}
		s.stats.Faults[FaultCallbackStale]++
		s.stats.FaultEvents = append(s.stats.FaultEvents, FaultEvent{Kind: FaultCallbackStale, Prompt: prompt, Created: true, TaskID: id})
	}
	if ok {
		cb.Delivered++
		if t := s.tasks[id]; t != nil && kind != attemptStale {
			s.noticeLocked(t, s.cfg.Now())
		}
	} else {
		cb.Failed++
	}
	s.mu.Unlock()

	attrs := []any{slog.String("task_id", id), slog.Int("attempt", n), slog.Bool("duplicate", kind == attemptDuplicate),
		slog.Bool("stale", kind == attemptStale), slog.Int("status", status)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.cfg.Logger.Debug("callback_attempt", attrs...)
	return ok
}

// sleep waits for d, and reports false without waiting it out when Close
// is called (or was already called).
func (s *Sim) sleep(d time.Duration) bool {
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-s.closing:
			return false
		}
	}
	select {
	case <-s.closing:
		return false
	default:
		return true
	}
}

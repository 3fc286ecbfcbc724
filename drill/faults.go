package drill

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/worker"
)

// Fault is one fault injected, with what came of it.
type Fault struct {
	// Kind names the fault.
	Kind string
	// Start and End bound it.
	Start, End time.Time
	// Injected counts what the simulator injected, by its fault kind.
	Injected map[string]int
	// Outcome says what the drill saw.
	Outcome string
	// Recovery is the time from End until completions were back to the
	// pre-fault rate; -1 when not measured or never.
	Recovery time.Duration
	// Failed marks an outcome that breaks a promise.
	Failed bool
	// events are the simulator's fault events of the window: indexes into
	// sim.Stats.FaultEvents, [from, to).
	eventsFrom, eventsTo int
}

// providerFault is one window of simulator faults.
type providerFault struct {
	kind   string
	faults sim.Faults
}

// providerFaults are the provider faults a drill injects, one window each.
func providerFaults() []providerFault {
	return []providerFault{
		// First, while rows are still being created.
		{"tasks stuck in processing (timed out by reconcile)", sim.Faults{Stuck: 0.03}},
		{"5xx, nothing created", sim.Faults{Create500: 0.15}},
		{"5xx after the create", sim.Faults{Create500Created: 0.08, Create502Created: 0.07}},
		{"429 storm with Retry-After", sim.Faults{RateLimited: 0.5, RetryAfterShare: 1}},
		{"429 storm without Retry-After", sim.Faults{RateLimited: 0.5}},
		{"slow answers past the client timeout", sim.Faults{CreateSlow: 0.03, CreateSlowCreated: 0.03, StatusSlow: 0.03, SlowDelay: slowDelay}},
		{"connection reset before / after the create", sim.Faults{CreateDropped: 0.05, CreateDroppedCreated: 0.05}},
		{"malformed JSON", sim.Faults{StatusTruncated: 0.2}},
		{"unknown states", sim.Faults{StatusUnknownState: 0.2}},
	}
}

// injectProvider runs each provider fault for a window, then a quiet
// settle, and records what the simulator injected.
func (d *drill) injectProvider() {
	window, settle := d.cfg.window()
	for _, pf := range providerFaults() {
		if d.finished() {
			d.faults = append(d.faults, Fault{Kind: pf.kind, Outcome: "not run: the batch finished first", Recovery: -1})
			continue
		}
		st := d.c.sim.Stats()
		before := st.Faults
		f := Fault{Kind: pf.kind, Start: time.Now(), Recovery: -1, eventsFrom: len(st.FaultEvents)}
		on := pf.faults
		on.CallbackStale = baseFaults().CallbackStale
		if err := d.c.sim.SetFaults(on); err != nil {
			f.Outcome, f.Failed = "not injected: "+err.Error(), true
			d.faults = append(d.faults, f)
			continue
		}
		sleepUntil(d.ctx, f.Start.Add(window))
		d.c.sim.SetFaults(baseFaults())
		f.End = time.Now()
		st = d.c.sim.Stats()
		f.Injected, f.eventsTo = diff(before, st.Faults), len(st.FaultEvents)
		d.faults = append(d.faults, f)
		sleepUntil(d.ctx, f.End.Add(settle))
	}
}

// diff returns the counts of after that grew since before, the run's
// stale callbacks left out.
func diff(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if k == sim.FaultCallbackStale {
			continue // on for the whole run, not the window's
		}
		if n := v - before[k]; n > 0 {
			out[k] = n
		}
	}
	return out
}

// forgeCallbacks posts callbacks with forged tokens to every worker's
// receiver: each must be refused with 401.
func (d *drill) forgeCallbacks(id string) {
	f := Fault{Kind: "forged callbacks", Start: time.Now(), Recovery: -1, Injected: map[string]int{}}
	refused, other := 0, map[int]int{}
	body := []byte(`{"code":200,"msg":"success","data":{"taskId":"forged","state":"success","resultJson":"{\"resultUrls\":[\"http://127.0.0.1:1/x.mp4\"]}"}}`)
	for _, s := range d.c.slots {
		for row := range 5 {
			url := "http://" + s.cbAddr + worker.CallbackPath + id + "/" + fmt.Sprint(row) + "/0/forged-token"
			code := post(d.ctx, url, body)
			if code == http.StatusUnauthorized {
				refused++
			} else {
				other[code]++
			}
			f.Injected["forged"]++
		}
	}
	f.End = time.Now()
	f.Outcome = fmt.Sprintf("%d of %d refused with 401", refused, f.Injected["forged"])
	if len(other) > 0 {
		f.Outcome += fmt.Sprintf("; other answers %v", other)
		f.Failed = true
	}
	d.faults = append(d.faults, f)
}

// post posts body to url and returns the status, 0 when unanswered.
func post(ctx context.Context, url string, body []byte) int {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// redisDowns kills Redis (SIGKILL) and restarts it from its AOF after each
// downtime; while it is down, a callback with a valid token must get 503.
func (d *drill) redisDowns(cbBatch string) {
	for _, down := range d.cfg.redisDowns() {
		kind := "redis-server killed, down " + down.String()
		if d.finished() {
			d.faults = append(d.faults, Fault{Kind: kind, Outcome: "not run: the batch finished first", Recovery: -1})
			continue
		}
		d.c.procMu.Lock() // no kill while Redis is down: a new worker could not start
		f := Fault{Kind: kind, Start: time.Now(), Recovery: -1, Injected: map[string]int{"redis_kill": 1}}
		probe := 0
		err := d.c.restartRedis(down, "", nil, func() {
			s := d.c.slots[0]
			cb := worker.CallbackConfig{PublicURL: "http://" + s.cbAddr, Secret: []byte(d.c.secret)}
			body := []byte(`{"code":200,"msg":"success","data":{"taskId":"drill-probe","state":"processing"}}`)
			probe = post(d.ctx, cb.URL(cbBatch, 0, 0), body)
		})
		f.End = time.Now()
		exited := 0
		for _, s := range d.c.slots {
			if s.child.Exited() {
				exited++
				d.c.startWorker(s)
			}
		}
		d.c.procMu.Unlock()
		f.Outcome = fmt.Sprintf("callback receiver answered %d while Redis was down", probe)
		if probe != http.StatusServiceUnavailable {
			f.Outcome += " (want 503)"
			f.Failed = true
		}
		if err != nil {
			f.Outcome += "; " + err.Error()
			f.Failed = true
		}
		if exited > 0 {
			f.Outcome += fmt.Sprintf("; %d workers exited and were restarted by the drill", exited)
			f.Failed = true
		} else {
			f.Outcome += "; every worker reconnected on its own"
		}
		d.faults = append(d.faults, f)
		sleepUntil(d.ctx, time.Now().Add(2*down))
	}
}

// sigterm stops every worker with SIGTERM under load and starts them again.
func (d *drill) sigterm() {
	f := Fault{Kind: "SIGTERM to every worker, then restart", Recovery: -1}
	if d.finished() {
		f.Outcome = "not run: the batch finished first"
		d.faults = append(d.faults, f)
		return
	}
	d.c.procMu.Lock()
	defer d.c.procMu.Unlock()
	f.Start, f.Injected = time.Now(), map[string]int{"sigterm": workers}
	errs := d.c.stopWorkers(syscall.SIGTERM)
	stopped := time.Since(f.Start)
	err := d.c.startWorkers()
	f.End = time.Now()
	f.Outcome = fmt.Sprintf("every worker stopped within %v", stopped.Round(100*time.Millisecond))
	if len(errs) > 0 {
		f.Outcome = fmt.Sprintf("%d workers did not exit cleanly: %v", len(errs), errs[0])
		f.Failed = true
	}
	if err != nil {
		f.Outcome += "; restart: " + err.Error()
		f.Failed = true
	}
	d.faults = append(d.faults, f)
}

// outcomes sets the outcome of each provider fault window from the final
// states of the rows its fault events hit (state by prompt).
func outcomes(faults []Fault, events []sim.FaultEvent, state map[string]string) {
	for i := range faults {
		f := &faults[i]
		if f.Outcome != "" || f.eventsTo <= f.eventsFrom {
			continue
		}
		tally := map[string]int{}
		for _, ev := range events[f.eventsFrom:min(f.eventsTo, len(events))] {
			if ev.Kind == sim.FaultCallbackStale {
				continue // on for the whole run, not the window's
			}
			st := state[ev.Prompt]
			if st == "" {
				st = "not a drill row"
			}
			if ev.Created {
				st += " (created)"
			}
			tally[st]++
		}
		var parts []string
		for _, k := range sortedKeys(tally) {
			parts = append(parts, fmt.Sprintf("%s %d", k, tally[k]))
		}
		if len(parts) > 0 {
			f.Outcome = "rows hit: " + strings.Join(parts, ", ")
		}
	}
}

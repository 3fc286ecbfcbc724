package sim

import (
	"maps"
	"time"
)

// Request kinds counted in Stats.Requests.
const (
	// KindCreate counts POST /api/v1/generateTask/seedance-1-5-pro.
	KindCreate = "create"
	// KindStatus counts GET /api/v1/statusTask/seedance-1-5-pro.
	KindStatus = "status"
	// KindFile counts GET /files/{taskId}.mp4.
	KindFile = "file"
)

// StatusLost is the HTTP status under which Stats.Requests counts a request
// whose connection was closed without any answer ([sim:create-lost]).
const StatusLost = 0

// Stats counts what a Sim has seen and done. Stats returned by Sim.Stats
// are copies: the caller may keep and modify them.
type Stats struct {
	// Requests counts answers by request kind (KindCreate, KindStatus,
	// KindFile), then by HTTP status (StatusLost for a dropped connection).
	Requests map[string]map[int]int `json:"requests"`
	// RateLimited counts every 429 answer: request limit and in-flight limit.
	RateLimited int `json:"rate_limited"`
	// Created counts tasks created, answered or not (every one is billed).
	Created int `json:"created"`
	// InFlight is the number of tasks created and not yet succeeded or failed.
	InFlight int `json:"in_flight"`
	// PeakInFlight is the highest InFlight ever reached.
	PeakInFlight int `json:"peak_in_flight"`
	// CreatedPerPrompt counts tasks created per exact prompt text.
	CreatedPerPrompt map[string]int `json:"created_per_prompt"`
	// CreatedSeconds is the sum of the video durations of created tasks:
	// what the provider would bill.
	CreatedSeconds int `json:"created_seconds"`
	// Succeeded counts tasks that ended in success.
	Succeeded int `json:"succeeded"`
	// Failed counts tasks that ended in failure.
	Failed int `json:"failed"`
	// Adopted counts unknown task ids taken on by Config.AdoptUnknown; they
	// are not counted as created.
	Adopted int `json:"adopted"`
	// StatusReadsPerTask counts status reads answered 200, by task id. A
	// client in callback mode that polls only as a safety net reads few or
	// none of its tasks.
	StatusReadsPerTask map[string]int `json:"status_reads_per_task"`
	// Callbacks counts callback deliveries.
	Callbacks CallbackStats `json:"callbacks"`
	// Faults counts the faults injected (Config.Faults, Sim.SetFaults) by
	// kind: every name in FaultKinds is present, 0 when none was injected.
	// A fault drawn but not injected (an after-create fault for a create
	// refused by the in-flight limit, a stale callback whose final
	// delivery never succeeded) is not counted.
	Faults map[string]int `json:"faults"`
	// FaultEvents lists, in order, every create fault (with whether the
	// task was created, and its id), every task drawn stuck and every stale
	// callback sent: what a client's records can be checked against.
	// Status faults and extra 429s are only counted.
	FaultEvents []FaultEvent `json:"fault_events"`
	// Accounts are the counts of each account by name: DefaultAccount
	// (Config.APIKey) and every Config.Accounts entry.
	Accounts map[string]AccountStats `json:"accounts"`
	// Stuck is the number of tasks stuck now (Faults.Stuck); they are
	// counted in InFlight until Sim.Unstick ends them.
	Stuck int `json:"stuck"`

	// BusyUtilization is the share of the provider's MaxInFlight slots that
	// were generating in steady state: over the window from the creation
	// of the MaxInFlight-th task (the start-up ramp is over) to the
	// creation of the last task, the sum of the part of each task's
	// [created, complete] inside the window, divided by MaxInFlight × the
	// window. A client that refills every freed slot at once scores 1. It
	// is 0 while the window is empty (fewer than MaxInFlight creates).
	BusyUtilization float64 `json:"busy_utilization"`
	// BusyWindow is the length of that window in provider seconds
	// (simulated seconds × TimeScale).
	BusyWindow float64 `json:"busy_window_seconds"`
	// DetectionLag is, over the created tasks that have ended, the time from
	// a task's completion to the client's first noticing it: the first
	// status read answered 200 that shows success or failed, or the first
	// callback delivery answered 200, whichever came first.
	DetectionLag LagStats `json:"detection_lag"`
	// RefillLag is, once MaxInFlight tasks were created, the time from the
	// client noticing that a slot is free (a task ended) to its next create
	// filling it: the k-th create after the start-up ramp is paired with
	// the k-th task noticed ended. Noticed counts the pairs.
	RefillLag LagStats `json:"refill_lag"`
	// RequestsPerJob is the number of creates and status reads, whatever
	// their answer, per task created (0 before any).
	RequestsPerJob float64 `json:"requests_per_job"`
	// DuplicateCreates is the sum over prompts of the tasks created for it
	// beyond the first: tasks paid for twice.
	DuplicateCreates int `json:"duplicate_creates"`
}

// CallbackStats counts callback deliveries (see the package doc, Callbacks).
// Once no delivery is in progress, Sent == Delivered + Failed.
type CallbackStats struct {
	// Sent counts delivery attempts made (POSTs to a callback_url), first
	// attempts, retries and duplicates alike.
	Sent int `json:"sent"`
	// Delivered counts attempts the receiver answered with HTTP 200.
	Delivered int `json:"delivered"`
	// Failed counts attempts not answered with HTTP 200: another status, a
	// connection error or no answer within 30 s/TimeScale.
	Failed int `json:"failed"`
	// Dropped counts tasks whose callback was lost on purpose
	// (Config.CallbackDropRate), counted when the task ends.
	Dropped int `json:"dropped"`
	// Duplicated counts extra deliveries sent after a successful one
	// (Config.CallbackDupRate); each is also counted in Sent.
	Duplicated int `json:"duplicated"`
	// Abandoned counts tasks whose 4 attempts (first and 3 retries) all failed.
	Abandoned int `json:"abandoned"`
	// Stale counts stale deliveries (Faults.CallbackStale) sent after a
	// task's final one; each is also counted in Sent.
	Stale int `json:"stale"`
	// DroppedTasks lists, in the order they ended, the ids of the tasks
	// counted in Dropped: the tasks a client can only learn about by polling.
	DroppedTasks []string `json:"dropped_tasks"`
}

// derive sets the fields computed from the counters and from spans (in
// creation order) at now, for a simulator of maxInFlight slots at scale.
func (st *Stats) derive(spans []span, maxInFlight int, now time.Time, scale float64) {
	m := measure(spans, maxInFlight, now.UnixNano(), scale)
	st.BusyUtilization = m.busy
	st.BusyWindow = providerSeconds(int64(m.window), scale)
	st.DetectionLag = m.lag
	st.RefillLag = m.refill
	st.RequestsPerJob = 0
	if st.Created > 0 {
		n := 0
		for _, kind := range []string{KindCreate, KindStatus} {
			for _, c := range st.Requests[kind] {
				n += c
			}
		}
		st.RequestsPerJob = float64(n) / float64(st.Created)
	}
	st.DuplicateCreates = 0
	for _, c := range st.CreatedPerPrompt {
		st.DuplicateCreates += max(0, c-1)
	}
}

// MaxCreatesPerPrompt returns the largest number of tasks created for one
// prompt: more than 1 means some prompt was paid for more than once.
func (st Stats) MaxCreatesPerPrompt() int {
	n := 0
	for _, c := range st.CreatedPerPrompt {
		n = max(n, c)
	}
	return n
}

// Count returns the number of requests of kind answered with HTTP status.
func (st Stats) Count(kind string, status int) int {
	return st.Requests[kind][status]
}

// clone returns a deep copy of st.
func (st Stats) clone() Stats {
	c := st
	c.Requests = make(map[string]map[int]int, len(st.Requests))
	for k, m := range st.Requests {
		c.Requests[k] = maps.Clone(m)
	}
	c.CreatedPerPrompt = maps.Clone(st.CreatedPerPrompt)
	if c.CreatedPerPrompt == nil {
		c.CreatedPerPrompt = map[string]int{}
	}
	c.StatusReadsPerTask = maps.Clone(st.StatusReadsPerTask)
	if c.StatusReadsPerTask == nil {
		c.StatusReadsPerTask = map[string]int{}
	}
	c.Callbacks.DroppedTasks = append([]string{}, st.Callbacks.DroppedTasks...)
	c.Faults = make(map[string]int, len(FaultKinds))
	for _, kind := range FaultKinds {
		c.Faults[kind] = st.Faults[kind]
	}
	c.FaultEvents = append([]FaultEvent{}, st.FaultEvents...)
	c.Accounts = maps.Clone(st.Accounts)
	return c
}

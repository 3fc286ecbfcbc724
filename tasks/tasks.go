package tasks

import (
	"encoding/json"
	"fmt"
	"time"
)

// Task type names, one per kind of asynq task seedbatch enqueues.
const (
	// TypeSubmit creates the provider task for one row.
	TypeSubmit = "video:submit"
	// TypePoll reads the status of one row's provider task.
	TypePoll = "video:poll"
	// TypeCallback applies a callback the provider delivered for one row.
	TypeCallback = "video:callback"
	// TypeDownload stores the videos of one succeeded row.
	TypeDownload = "video:download"
)

// Queue names. Submits and polls live in separate queues served by separate
// asynq servers, so that polls, which free in-flight slots, never wait behind
// submits blocked on those slots.
const (
	// QueueSubmit holds video:submit tasks.
	QueueSubmit = "submit"
	// QueuePoll holds video:poll and video:callback tasks.
	QueuePoll = "poll"
	// QueueDownload holds video:download tasks, served apart so that slow
	// downloads never hold up the polls that free in-flight slots.
	QueueDownload = "download"
)

// State is the state of one job (one CSV row).
type State string

// Job states. See the README's state diagram.
const (
	// StateQueued: enqueued, not yet submitted.
	StateQueued State = "queued"
	// StateBudget: held because submitting it would exceed a budget; an
	// operator releases it with retry after raising the budget.
	StateBudget State = "budget"
	// StateSubmitting: a create request may be on its way to the provider.
	// A submit that finds its row here with no task id marks it ambiguous.
	StateSubmitting State = "submitting"
	// StateSubmitted: the provider accepted the task and gave its id.
	StateSubmitted State = "submitted"
	// StateSucceeded: the provider finished the video; its result URLs are
	// known and the download is pending.
	StateSucceeded State = "succeeded"
	// StateDone: the videos are stored locally.
	StateDone State = "done"
	// StateFailed: the provider failed the task, or its video could not be
	// stored (the fail code says which).
	StateFailed State = "failed"
	// StateRejected: the row was invalid and never submitted.
	StateRejected State = "rejected"
	// StateAmbiguous: a create may or may not have reached the provider; it is
	// never resubmitted automatically. A callback for it binds its task.
	StateAmbiguous State = "ambiguous"
	// StateCanceled: an operator stopped the row before it was submitted.
	StateCanceled State = "canceled"
)

// States lists every state in display order.
var States = []State{StateQueued, StateBudget, StateSubmitting, StateSubmitted, StateSucceeded, StateDone,
	StateFailed, StateRejected, StateAmbiguous, StateCanceled}

// Terminal reports whether a job in state s needs no more work from seedbatch.
func (s State) Terminal() bool {
	switch s {
	case StateDone, StateFailed, StateRejected, StateAmbiguous, StateCanceled:
		return true
	}
	return false
}

// Settled reports whether nothing more happens to a job in state s without
// an operator: it is terminal or held by a budget.
func (s State) Settled() bool { return s.Terminal() || s == StateBudget }

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// JobPayload is the payload of video:submit and video:poll tasks. It holds
// references only, never the prompt's secrets or the API key.
type JobPayload struct {
	// Batch is the batch id.
	Batch string `json:"batch"`
	// Row is the row's 0-based index among the batch's data rows.
	Row int `json:"row"`
	// Attempt is the submit attempt this task belongs to (0 for the first).
	Attempt int `json:"attempt,omitempty"`
	// Poll numbers successive polls of one job (0 for a submit).
	Poll int `json:"poll,omitempty"`
	// NotBeforeMS is the Unix time in milliseconds before which a poll should
	// not read the status; asynq itself schedules in whole seconds.
	NotBeforeMS int64 `json:"nbf,omitempty"`
	// Callback marks the polls of a callback-mode job: safety polls, spaced
	// wider, for a callback that may have been lost.
	Callback bool `json:"cb,omitempty"`
	// TaskID is the provider task a callback named (video:callback only).
	TaskID string `json:"task,omitempty"`
	// Unreadable counts the status reads of the job, just before this poll
	// and in a row, whose answers could not be read (video:poll only).
	Unreadable int `json:"unr,omitempty"`
}

// Marshal encodes p for an asynq task.
func (p JobPayload) Marshal() []byte {
	b, _ := json.Marshal(p) // cannot fail: strings and ints only
	return b
}

// ParseJobPayload decodes a task payload.
func ParseJobPayload(b []byte) (JobPayload, error) {
	var p JobPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("parse job payload: %w", err)
	}
	if p.Batch == "" || p.Row < 0 {
		return p, fmt.Errorf("parse job payload: missing batch or row")
	}
	return p, nil
}

// SubmitTaskID is the asynq task id of a row's submit attempt: derived from
// batch, row and the attempt number (0 for the first, more only when an
// operator resubmits on purpose), so enqueueing the same batch twice adds
// nothing.
func SubmitTaskID(batch string, row, attempt int) string {
	return fmt.Sprintf("submit:%s:%d:%d", batch, row, attempt)
}

// DownloadTaskID is the asynq task id of a row attempt's download.
func DownloadTaskID(batch string, row, attempt int) string {
	return fmt.Sprintf("download:%s:%d:%d", batch, row, attempt)
}

// CallbackTaskID is the asynq task id of a callback being applied; a
// delivery repeated while the first is pending adds nothing.
func CallbackTaskID(batch string, row, attempt int) string {
	return fmt.Sprintf("callback:%s:%d:%d", batch, row, attempt)
}

// Poll numbers that no ordinary chain of polls reaches: a callback's own
// read, and reads that reconcile queues again for a row whose poll was
// lost, so their task ids never clash with a chain's.
const (
	// CallbackPoll numbers the read a callback makes (and the polls after it).
	CallbackPoll = 1000
	// rearmPollBase starts the poll numbers of re-armed reads.
	rearmPollBase = 1_000_000
)

// RearmPoll returns the poll number of a read re-armed at now: above every
// chain's, and different from one second to the next.
func RearmPoll(now time.Time) int { return rearmPollBase + int(now.Unix()%rearmPollBase) }

// PollTaskID is the asynq task id of the n-th poll of a row's attempt. A
// poll that runs twice enqueues its successor under the same id, so a row
// never has two chains of polls.
func PollTaskID(batch string, row, attempt, n int) string {
	return fmt.Sprintf("poll:%s:%d:%d:%d", batch, row, attempt, n)
}

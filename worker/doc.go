// Package worker runs seedbatch's asynq handlers: video:submit creates a
// row's provider task while holding the shared request and in-flight limits,
// and video:poll follows it until it succeeds or fails.
//
// Submits and polls are served by two asynq servers in each process, one per
// queue, so that polls, which free in-flight slots, never wait behind submits
// that are waiting for one.
//
// Every handler error becomes a task outcome in exactly one place
// (outcome.go): waiting for a limit is a NotYet, which asynq counts neither
// as a retry nor as a failure; a permanent problem ends the task; anything
// else is retried with backoff.
//
// Money safety: a row moves to "submitting" in Redis before its create is
// sent. A submit that finds its row already submitting with no task id (its
// worker died mid-create) marks the row ambiguous instead of creating again,
// and so does any create whose outcome the client cannot know.
package worker

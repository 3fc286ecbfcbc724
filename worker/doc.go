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
// and so does any create whose answer does not prove that nothing was
// created (a 5xx, a 2xx without a task id or with an error code; see package
// seedance): its fail message says why and how to resubmit it on purpose.
//
// A task whose status answers cannot be read (seedance.ErrUnreadable) is
// polled again at the planned delay, the count carried in the poll payload;
// after Config.MaxUnreadable such answers in a row the row fails with
// PROVIDER_ANSWER_UNREADABLE and frees its slot, rather than holding it until
// reconcile gives up hours later.
package worker

// Package queue is asynq's producer side for seedbatch: the names of a
// namespace's queues, the tasks that move a job (submit, poll, download,
// callback) and how they are enqueued, the request types a batch can use,
// and pausing and resuming submitting. The worker serves these queues; the
// commands, the dashboard and the housekeeping enqueue into them through
// this package and never import the queue.
package queue

import "github.com/seedbatch/seedbatch/seedance"

// Request types: how the provider reports a task's outcome.
const (
	// RequestAsync: seedbatch polls the task.
	RequestAsync = seedance.RequestTypeAsync
	// RequestCallback: the provider posts the outcome to a callback URL.
	RequestCallback = seedance.RequestTypeCallback
)

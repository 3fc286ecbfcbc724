package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/tasks"
)

// Queues names the asynq queues of one seedbatch namespace. Several
// namespaces can share one Redis without seeing each other's tasks.
type Queues struct {
	Submit, Poll, Download string
}

// QueuesFor returns the queue names under prefix.
func QueuesFor(prefix string) Queues {
	return Queues{Submit: prefix + "-" + tasks.QueueSubmit, Poll: prefix + "-" + tasks.QueuePoll,
		Download: prefix + "-" + tasks.QueueDownload}
}

// Names lists the queue names.
func (q Queues) Names() []string { return []string{q.Submit, q.Poll, q.Download} }

// Mover returns the queue whose tasks move a job on from state st, and
// false for a state no task moves (one that waits for an operator or has
// ended).
func (q Queues) Mover(st tasks.State) (string, bool) {
	switch st {
	case tasks.StateQueued, tasks.StateSubmitting:
		return q.Submit, true
	case tasks.StateSubmitted:
		return q.Poll, true
	case tasks.StateSucceeded:
		return q.Download, true
	}
	return "", false
}

// Served reports whether any active server among servers (as asynq's
// Inspector.Servers lists the live ones) takes tasks from the queue name.
func Served(servers []*asynq.ServerInfo, name string) bool {
	for _, s := range servers {
		if s.Status == "active" && s.Queues[name] > 0 {
			return true
		}
	}
	return false
}

// submitTimeout bounds one submit execution: a create request plus waiting
// for a limit. asynq stores timeouts in whole seconds.
const submitTimeout = 5 * time.Minute

// Queue enqueues seedbatch's tasks. It implements batch.Submitter.
type Queue struct {
	client *asynq.Client
	queues Queues
}

// taskMaxRetry is asynq's retry limit for every seedbatch task: never
// reached. asynq archives a task with no retries left even when it only
// waits for a limit, which would strand its row; the handlers count real
// failures themselves (asynq counts only those) and give up after
// Config.MaxRetry.
const taskMaxRetry = 1 << 20

var _ batch.PipelineSubmitter = (*Queue)(nil)

// NewQueue returns a Queue on rdb; Close it when done.
func NewQueue(rdb redis.UniversalClient, queues Queues) *Queue {
	return &Queue{client: asynq.NewClientFromRedisClient(rdb), queues: queues}
}

// Close releases the queue's resources (not the shared Redis client).
func (q *Queue) Close() error { return q.client.Close() }

// Submit enqueues a row's submit task for attempt. A task that exists
// already (the same batch enqueued twice) is not an error.
func (q *Queue) Submit(ctx context.Context, b string, row, attempt int) error {
	t := asynq.NewTask(tasks.TypeSubmit, tasks.JobPayload{Batch: b, Row: row, Attempt: attempt}.Marshal())
	_, err := q.client.EnqueueContext(ctx, t, asynq.Queue(q.queues.Submit),
		asynq.TaskID(tasks.SubmitTaskID(b, row, attempt)), asynq.MaxRetry(taskMaxRetry), asynq.Timeout(submitTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue submit %s:%d: %w", b, row, err)
	}
	return nil
}

// SubmitPipelined adds to pipe the submit tasks of rows of batch b (one
// per row attempt), so that a chunk of rows and their tasks reach Redis in
// one round trip. Each task is what Submit would enqueue, written as
// asynq's own client writes it: the same task id, type, payload, queue,
// retry limit and timeout, the same encoding and keys. A task whose id
// exists already is left alone. Once pipe has run, the returned command
// holds the number of tasks added. pipe must run on the Redis the queue
// uses.
func (q *Queue) SubmitPipelined(ctx context.Context, pipe redis.Pipeliner, b string, rows []batch.RowAttempt) *redis.Cmd {
	queue := q.queues.Submit
	keys := make([]string, 1, len(rows)+1)
	keys[0] = asynqPendingKey(queue)
	args := make([]any, 1, 2*len(rows)+1)
	args[0] = time.Now().UnixNano()
	for _, r := range rows {
		id := tasks.SubmitTaskID(b, r.Row, r.Attempt)
		msg := appendTaskMessage(nil, taskMessage{Type: tasks.TypeSubmit, ID: id, Queue: queue,
			Payload: tasks.JobPayload{Batch: b, Row: r.Row, Attempt: r.Attempt}.Marshal(),
			Retry:   taskMaxRetry, Timeout: submitTimeout})
		keys = append(keys, asynqTaskKey(queue, id))
		args = append(args, id, msg)
	}
	pipe.SAdd(ctx, asynqAllQueues, queue)
	return enqueueTasksScript.Eval(ctx, pipe, keys, args...)
}

// pollTimeout bounds one poll execution.
const pollTimeout = 2 * time.Minute

// Poll schedules the n-th status read of a row's attempt at time at;
// callback marks the safety polls of a callback-mode job.
func (q *Queue) Poll(ctx context.Context, b string, row, attempt, n int, at time.Time, callback bool) error {
	return q.poll(ctx, tasks.JobPayload{Batch: b, Row: row, Attempt: attempt, Poll: n, Callback: callback}, at)
}

// poll schedules the status read p describes at time at.
func (q *Queue) poll(ctx context.Context, p tasks.JobPayload, at time.Time) error {
	p.NotBeforeMS = at.UnixMilli()
	t := asynq.NewTask(tasks.TypePoll, p.Marshal())
	_, err := q.client.EnqueueContext(ctx, t, asynq.Queue(q.queues.Poll),
		asynq.TaskID(tasks.PollTaskID(p.Batch, p.Row, p.Attempt, p.Poll)),
		asynq.ProcessAt(at), asynq.MaxRetry(taskMaxRetry), asynq.Timeout(pollTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue poll %s:%d #%d: %w", p.Batch, p.Row, p.Poll, err)
	}
	return nil
}

// downloadTimeout bounds one download execution; asynq counts whole seconds.
const downloadTimeout = 30 * time.Minute

// Download queues the download of a succeeded row's videos. A task that
// exists already is not an error.
func (q *Queue) Download(ctx context.Context, b string, row, attempt int) error {
	t := asynq.NewTask(tasks.TypeDownload, tasks.JobPayload{Batch: b, Row: row, Attempt: attempt}.Marshal())
	_, err := q.client.EnqueueContext(ctx, t, asynq.Queue(q.queues.Download),
		asynq.TaskID(tasks.DownloadTaskID(b, row, attempt)), asynq.MaxRetry(taskMaxRetry), asynq.Timeout(downloadTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue download %s:%d: %w", b, row, err)
	}
	return nil
}

// Callback queues the application of a delivered callback. A delivery
// repeated while the first is pending adds nothing.
func (q *Queue) Callback(ctx context.Context, b string, row, attempt int, taskID string) error {
	t := asynq.NewTask(tasks.TypeCallback, tasks.JobPayload{Batch: b, Row: row, Attempt: attempt, TaskID: taskID}.Marshal())
	_, err := q.client.EnqueueContext(ctx, t, asynq.Queue(q.queues.Poll),
		asynq.TaskID(tasks.CallbackTaskID(b, row, attempt)), asynq.MaxRetry(taskMaxRetry), asynq.Timeout(pollTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue callback %s:%d: %w", b, row, err)
	}
	return nil
}

package queue

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

// submitTimeout bounds one submit execution: a create request plus waiting
// for a limit. asynq stores timeouts in whole seconds.
const submitTimeout = 5 * time.Minute

// Client enqueues seedbatch's tasks. It implements batch.Submitter.
type Client struct {
	client *asynq.Client
	queues Names
}

// taskMaxRetry is asynq's retry limit for every seedbatch task: never
// reached. asynq archives a task with no retries left even when it only
// waits for a limit, which would strand its row; the handlers count real
// failures themselves (asynq counts only those) and give up after
// Config.MaxRetry.
const taskMaxRetry = 1 << 20

var _ batch.PipelineSubmitter = (*Client)(nil)

// New returns a Client on rdb; Close it when done.
func New(rdb redis.UniversalClient, queues Names) *Client {
	return &Client{client: asynq.NewClientFromRedisClient(rdb), queues: queues}
}

// Close releases the queue's resources (not the shared Redis client).
func (q *Client) Close() error { return q.client.Close() }

// Submit enqueues a row's submit task for attempt. A task that exists
// already (the same batch enqueued twice) is not an error.
func (q *Client) Submit(ctx context.Context, b string, row, attempt int) error {
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
func (q *Client) SubmitPipelined(ctx context.Context, pipe redis.Pipeliner, b string, rows []batch.RowAttempt) *redis.Cmd {
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
func (q *Client) Poll(ctx context.Context, b string, row, attempt, n int, at time.Time, callback bool) error {
	return q.PollAt(ctx, tasks.JobPayload{Batch: b, Row: row, Attempt: attempt, Poll: n, Callback: callback}, at)
}

// PollAt schedules the status read p describes at time at; its id comes
// from p (tasks.PollTaskID).
func (q *Client) PollAt(ctx context.Context, p tasks.JobPayload, at time.Time) error {
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
func (q *Client) Download(ctx context.Context, b string, row, attempt int) error {
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
func (q *Client) Callback(ctx context.Context, b string, row, attempt int, taskID string) error {
	t := asynq.NewTask(tasks.TypeCallback, tasks.JobPayload{Batch: b, Row: row, Attempt: attempt, TaskID: taskID}.Marshal())
	_, err := q.client.EnqueueContext(ctx, t, asynq.Queue(q.queues.Poll),
		asynq.TaskID(tasks.CallbackTaskID(b, row, attempt)), asynq.MaxRetry(taskMaxRetry), asynq.Timeout(pollTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue callback %s:%d: %w", b, row, err)
	}
	return nil
}

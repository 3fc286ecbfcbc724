package worker

import (
	"context"
	"errors"
	"time"

	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
)

// Metrics receives the worker's measurements (metrics.Recorder).
type Metrics interface {
	// Request counts one provider request by kind ("create", "status") and
	// HTTP status (0 when no answer came).
	Request(ctx context.Context, kind string, status int)
	// Wait adds time spent waiting in place for a limit.
	Wait(ctx context.Context, limit string, d time.Duration)
	// Deferred counts a task handed back to the queue to wait for a limit.
	Deferred(ctx context.Context, limit string)
	// Generation observes a provider generation time.
	Generation(ctx context.Context, d time.Duration)
	// DownloadBytes adds bytes of stored videos.
	DownloadBytes(ctx context.Context, n int64)
}

// noMetrics discards measurements.
type noMetrics struct{}

func (noMetrics) Request(context.Context, string, int)        {}
func (noMetrics) Wait(context.Context, string, time.Duration) {}
func (noMetrics) Deferred(context.Context, string)            {}
func (noMetrics) Generation(context.Context, time.Duration)   {}
func (noMetrics) DownloadBytes(context.Context, int64)        {}

// measuredProvider counts every request it passes on.
type measuredProvider struct {
	next Provider
	m    Metrics
}

func (p measuredProvider) Create(ctx context.Context, req seedance.CreateRequest) (string, error) {
	id, err := p.next.Create(ctx, req)
	p.m.Request(ctx, "create", statusOf(err))
	return id, err
}

func (p measuredProvider) Status(ctx context.Context, taskID string) (seedance.Task, error) {
	t, err := p.next.Status(ctx, taskID)
	p.m.Request(ctx, "status", statusOf(err))
	return t, err
}

// statusOf is the HTTP status behind a provider call's error: 200 for
// none, 0 when no answer came.
func statusOf(err error) int {
	if err == nil {
		return 200
	}
	var se *seedance.Error
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// admit waits in place for a limit (wait is the limiter's WaitSubmit or
// WaitRequest), measuring the wait, and turns a refusal into a NotYet for
// asynq.
func (w *Worker) admit(ctx context.Context, wait func(context.Context) (ratelimit.Result, error)) (ratelimit.Result, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.stopping, cancel)()
	res, err := wait(wctx)
	if res.WaitedFor != "" {
		w.metrics.Wait(ctx, string(res.WaitedFor), res.Waited)
	}
	if err != nil && ctx.Err() == nil && w.stopping.Err() != nil {
		// The worker is stopping: hand the task back, without a retry.
		return res, &NotYet{After: time.Second, Reason: "worker stopping"}
	}
	if err != nil {
		return res, err
	}
	if !res.Allowed {
		w.metrics.Deferred(ctx, string(res.Reason))
		return res, notYet(res)
	}
	return res, nil
}

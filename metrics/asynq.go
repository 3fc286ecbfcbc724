package metrics

import (
	"slices"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// asynqQueues serves asynq's own queue metrics (asynq's x/metrics
// collector: tasks by state, queue size and latency, memory, tasks
// processed and failed, paused) for this namespace's queues. asynq knows a
// queue only once a task was put in it, so each queue it does not know yet
// gets the same series at 0: they exist from the start. Other namespaces'
// queues on the same Redis are left to their own /metrics.
type asynqQueues struct {
	insp   *asynq.Inspector
	inner  prometheus.Collector
	queues []string
}

func newAsynqQueues(insp *asynq.Inspector, queues []string) *asynqQueues {
	return &asynqQueues{insp: insp, inner: asynqmetrics.NewQueueMetricsCollector(insp), queues: queues}
}

// The families of asynq's x/metrics collector, as it names and describes
// them, for the queues it does not report yet. A scrape that mixed other
// help texts or types under these names would fail, so a test scrapes both
// kinds of queue at once.
var (
	asynqTasks = prometheus.NewDesc("asynq_tasks_enqueued_total",
		"Number of tasks enqueued; broken down by queue and state.", []string{"queue", "state"}, nil)
	asynqGauges = []*prometheus.Desc{
		prometheus.NewDesc("asynq_queue_size", "Number of tasks in a queue", []string{"queue"}, nil),
		prometheus.NewDesc("asynq_queue_latency_seconds",
			"Number of seconds the oldest pending task is waiting in pending state to be processed.", []string{"queue"}, nil),
		prometheus.NewDesc("asynq_queue_memory_usage_approx_bytes",
			"Number of memory used by a given queue (approximated number by sampling).", []string{"queue"}, nil),
		prometheus.NewDesc("asynq_queue_paused_total", "Number of queues paused", []string{"queue"}, nil),
	}
	asynqCounters = []*prometheus.Desc{
		prometheus.NewDesc("asynq_tasks_processed_total",
			"Number of tasks processed (both succeeded and failed); broken down by queue", []string{"queue"}, nil),
		prometheus.NewDesc("asynq_tasks_failed_total", "Number of tasks failed; broken down by queue", []string{"queue"}, nil),
	}
	asynqStates = []string{"active", "pending", "scheduled", "retry", "archived", "completed"}
)

// Describe sends nothing: the families are asynq's, and its collector
// describes them only by collecting, which reads Redis.
func (a *asynqQueues) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (a *asynqQueues) Collect(ch chan<- prometheus.Metric) {
	inner := make(chan prometheus.Metric)
	go func() {
		a.inner.Collect(inner)
		close(inner)
	}()
	seen := map[string]bool{}
	for m := range inner {
		q := queueOf(m)
		if len(a.queues) > 0 && !slices.Contains(a.queues, q) {
			continue
		}
		seen[q] = true
		ch <- m
	}
	if _, err := a.insp.Queues(); err != nil {
		return // Redis did not answer (seedbatch_redis_up says so): no zeros
	}
	for _, q := range a.queues {
		if seen[q] {
			continue
		}
		for _, st := range asynqStates {
			ch <- prometheus.MustNewConstMetric(asynqTasks, prometheus.GaugeValue, 0, q, st)
		}
		for _, d := range asynqGauges {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, 0, q)
		}
		for _, d := range asynqCounters {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, 0, q)
		}
	}
}

// queueOf reads the queue label of a metric.
func queueOf(m prometheus.Metric) string {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return ""
	}
	for _, l := range pb.GetLabel() {
		if l.GetName() == "queue" {
			return l.GetValue()
		}
	}
	return ""
}

package sim

import (
	"container/heap"
	"time"
)

// Task states as the provider names them.
const (
	statePending    = "pending"
	stateProcessing = "processing"
	stateSuccess    = "success"
	stateFailed     = "failed"
)

// pendingShare is the part of a task's generation time spent "pending".
const pendingShare = 0.15

// generationRange is the provider's typical generation time per video
// duration in seconds (PROVIDER.md, Timing).
var generationRange = map[int][2]time.Duration{
	4:  {40 * time.Second, 60 * time.Second},
	8:  {60 * time.Second, 90 * time.Second},
	12: {90 * time.Second, 120 * time.Second},
}

// GenerationTime returns the provider's typical generation time for a
// video of duration seconds (4, 8 or 12), from lo to hi at TimeScale 1;
// ok is false for another duration.
func GenerationTime(duration int) (lo, hi time.Duration, ok bool) {
	r, ok := generationRange[duration]
	return r[0], r[1], ok
}

// task is one created provider task. Its state follows from the clock:
// pending before pendingUntil, processing until complete, then success or
// failed (done is set when the task leaves the in-flight heap).
type task struct {
	id           string
	acct         *account // the account that created (or adopted) it
	created      time.Time
	pendingUntil time.Time
	complete     time.Time
	failCode     string // empty: the task succeeds
	failMsg      string
	statusErrors int  // status reads still to answer with 500
	echoStatus   bool // the next status read answers 500 with an echo (MarkerEchoStatus)
	unknownState bool // [sim:status-unknown-state]: reads report UnknownState
	badResult    bool // [sim:status-bad-result]: a success's resultJson is not JSON
	stuck        bool // Faults.Stuck: complete is neverComplete until Sim.Unstick
	prompt       string
	done         bool // popped from the heap, counted as ended
	index        int  // position in the heap while in flight
	span         int  // index in Sim.spans; -1 for an adopted task

	// Callback mode only (callbackURL != "").
	callbackURL string
	resultURL   string      // result file URL on the host the create reached
	dropCB      bool        // the callback is lost (Config.CallbackDropRate)
	dupCB       bool        // a successful delivery is sent twice (Config.CallbackDupRate)
	staleCB     bool        // a stale delivery follows the final one (Faults.CallbackStale)
	timer       *time.Timer // fires at complete; nil once the task has ended
}

// state returns the task's provider state at now. The caller has already
// moved every task complete at now out of the heap.
func (t *task) state(now time.Time) string {
	switch {
	case t.done && t.failCode != "":
		return stateFailed
	case t.done:
		return stateSuccess
	case now.Before(t.pendingUntil):
		return statePending
	default:
		return stateProcessing
	}
}

// view returns the "data" of a status answer for the task at now, with
// resultURL as the result file's URL. The caller has already moved every
// task complete at now out of the heap; s.mu is held, or the task is done
// (its fields no longer change).
func (t *task) view(now time.Time, resultURL string) taskView {
	v := taskView{TaskID: t.id, State: t.state(now), CreateTime: t.created.UnixMilli()}
	if t.done {
		completeMS, costMS := t.complete.UnixMilli(), t.complete.Sub(t.created).Milliseconds()
		v.CompleteTime, v.CostTime = &completeMS, &costMS
		v.FailCode, v.FailMsg = t.failCode, t.failMsg
		if t.failCode == "" {
			v.ResultJSON = resultJSON(resultURL)
			if t.badResult {
				v.ResultJSON = badResultJSON
			}
		}
	}
	if t.unknownState {
		v.State = UnknownState
	}
	return v
}

// taskHeap is a min-heap of in-flight tasks by completion time.
type taskHeap []*task

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].complete.Before(h[j].complete) }
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *taskHeap) Push(x any) {
	t := x.(*task)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *taskHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}

var _ heap.Interface = (*taskHeap)(nil)

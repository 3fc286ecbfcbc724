package worker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/testwait"
	"github.com/seedbatch/seedbatch/tasks"
)

// waitPaused waits until submitting is paused and returns the reason.
func (h *harness) waitPaused(within time.Duration) string {
	h.t.Helper()
	var reason string
	testwait.Until(h.t, within, func() error {
		var paused bool
		var err error
		if reason, paused, err = h.lim.Paused(h.t.Context()); err != nil || !paused {
			return fmt.Errorf("submitting not paused (%v)", err)
		}
		return nil
	})
	return reason
}

// TestRedisThatLostDataStopsCreates checks each way the epoch shows that
// Redis lost data: the worker must create nothing more and pause with a
// reason that says why.
func TestRedisThatLostDataStopsCreates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// lose damages Redis once `after` rows are done.
		after int
		lose  func(h *harness, epochKey string)
		want  string
	}{
		{"restarted empty", 0, func(h *harness, k string) { h.rs.Client.Del(h.t.Context(), k) }, "restarted without its data"},
		{"another Redis's data", 0, func(h *harness, k string) { h.rs.Client.HSet(h.t.Context(), k, "id", "someone-else") }, "was created in epoch"},
		{"stale replica", 2, func(h *harness, k string) { h.rs.Client.HSet(h.t.Context(), k, "seq", 0) }, "went back from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, func(o *options) {
				o.limits.MaxInFlight = 1
				o.worker.SubmitConcurrency = 1
			})
			plan := h.enqueue("prompt\nscene one here\nscene two here\nscene three here\nscene four here\nscene five here\nscene six here\n")
			epochKey := h.rs.Prefix + ":epoch"
			if tt.after == 0 {
				tt.lose(h, epochKey)
			}
			h.start()
			if tt.after > 0 {
				h.waitFor(plan.ID, 30*time.Second, func(c batch.Counts) bool { return c[tasks.StateDone] >= tt.after })
				tt.lose(h, epochKey)
			}
			reason := h.waitPaused(30 * time.Second)
			if !strings.Contains(reason, "Redis lost data") || !strings.Contains(reason, tt.want) {
				t.Errorf("pause reason %q, want it to say Redis lost data and %q", reason, tt.want)
			}
			created := h.sim.Stats().Created
			time.Sleep(300 * time.Millisecond)
			_, c, _ := h.store.Get(t.Context(), plan.ID)
			if st := h.sim.Stats(); st.Created != created || st.Created > tt.after+1 {
				t.Errorf("%d creates after the loss showed (%d before), rows %v", st.Created, created, c)
			}
			if c[tasks.StateQueued] < 6-tt.after-1 {
				t.Errorf("rows %v: the rows not yet created should wait, queued", c)
			}
		})
	}
}

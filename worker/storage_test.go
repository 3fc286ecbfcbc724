package worker_test

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// storageFault fails every download with a full or read-only output
// directory while its fault is set, as the fetcher reports one.
type storageFault struct {
	next  worker.Fetcher
	fault atomic.Pointer[fetch.Error]
}

func (f *storageFault) Get(ctx context.Context, url, relPath string, want fetch.File) (fetch.File, error) {
	if e := f.fault.Load(); e != nil {
		return fetch.File{}, e
	}
	return f.next.Get(ctx, url, relPath, want)
}

// TestStorageFaults: a download the output directory cannot take (full, or
// read-only) fails its row at once with STORAGE_FULL or STORAGE_READONLY, a
// message saying what to do, and its result URLs kept; once the directory
// takes files again, retry --state failed downloads the videos again
// without creating any task again.
func TestStorageFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault *fetch.Error
		code  string
		says  string
	}{
		{"full", &fetch.Error{Kind: fetch.ErrStorageFull, Err: syscall.ENOSPC}, tasks.CodeStorageFull, "is full"},
		{"read-only", &fetch.Error{Kind: fetch.ErrStorageReadOnly, Err: syscall.EROFS}, tasks.CodeStorageReadOnly, "cannot be written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			faulty := &storageFault{}
			faulty.fault.Store(tt.fault)
			h := newHarnessWith(t, func(o *options) {
				o.wrapFetch = func(f worker.Fetcher) worker.Fetcher { faulty.next = f; return faulty }
			})
			h.start()
			plan := h.enqueue("id,prompt\nr1,a lighthouse in the fog\nr2,a kite over the dunes\n")
			c := h.waitFor(plan.ID, 20*time.Second, allTerminal(2))
			if c[tasks.StateFailed] != 2 {
				t.Fatalf("counts %v, want both rows failed", c)
			}
			for _, j := range h.jobs(plan.ID, 2) {
				if j.FailCode != tt.code || len(j.ResultURLs) == 0 || !strings.Contains(j.FailMsg, tt.says) ||
					!strings.Contains(j.FailMsg, "retry "+plan.ID+" --state failed") {
					t.Errorf("row %s: %s %q, %d result URLs", j.Spec.ID, j.FailCode, j.FailMsg, len(j.ResultURLs))
				}
			}
			faulty.fault.Store(nil)
			q := queue.New(h.rs.Client, h.queues)
			defer q.Close()
			res, err := h.store.Resubmit(t.Context(), q, plan.ID, batch.ResubmitOptions{From: tasks.StateFailed})
			if err != nil || res.Queued != 2 || len(res.Skipped) != 0 {
				t.Fatalf("retry --state failed: %+v, %v", res, err)
			}
			c = h.waitFor(plan.ID, 20*time.Second, func(c batch.Counts) bool { return c[tasks.StateDone] == 2 })
			if st := h.sim.Stats(); st.Created != 2 || st.MaxCreatesPerPrompt() != 1 {
				t.Errorf("%d tasks created (max %d per prompt), want 2: the videos were created again", st.Created, st.MaxCreatesPerPrompt())
			}
		})
	}
}

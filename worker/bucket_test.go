package worker_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/s3test"
	"github.com/seedbatch/seedbatch/objstore"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestUploadFailureKeepsTheVideo: while the bucket refuses uploads, a row
// whose video was made (and billed) is not done, leaves no object, and
// keeps its result URL; retry --state failed then downloads it again
// without creating anything.
func TestUploadFailureKeepsTheVideo(t *testing.T) {
	srv := s3test.New(t, "videos")
	bucket, err := objstore.Open(t.Context(), srv.URL("videos", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	h := newHarnessWith(t, func(o *options) {
		o.sink = bucket
		o.worker.MaxRetry = 1
	})
	h.start()
	srv.FailUploads(true)
	const rows = 3
	var csv strings.Builder
	csv.WriteString("id,prompt\n")
	for i := range rows {
		fmt.Fprintf(&csv, "r%d,a scene number %d\n", i, i)
	}
	plan := h.enqueue(csv.String())
	h.waitFor(plan.ID, time.Minute, allTerminal(rows))
	for _, j := range h.jobs(plan.ID, rows) {
		if j.State != tasks.StateFailed || j.FailCode != tasks.CodeDownloadFailed || len(j.ResultURLs) == 0 || len(j.Files) != 0 {
			t.Errorf("row %d: %s %s, %d result URLs, %d files; want failed DOWNLOAD_FAILED with its URL kept and no file",
				j.Row, j.State, j.FailCode, len(j.ResultURLs), len(j.Files))
		}
	}
	if keys := srv.Keys("videos", "out/"); len(keys) != 0 {
		t.Errorf("failed uploads left objects: %v", keys)
	}
	if srv.Uploads() == 0 {
		t.Fatal("no upload was tried")
	}

	srv.FailUploads(false)
	q := queue.New(h.rs.Client, h.queues)
	defer q.Close()
	res, err := h.store.Resubmit(t.Context(), q, plan.ID, batch.ResubmitOptions{From: tasks.StateFailed})
	if err != nil || res.Queued != rows || len(res.Skipped) != 0 {
		t.Fatalf("retry --state failed: %+v, %v; want every row downloaded again", res, err)
	}
	h.waitFor(plan.ID, time.Minute, func(c batch.Counts) bool { return c[tasks.StateDone] == rows })
	for _, j := range h.jobs(plan.ID, rows) {
		data, ok := srv.Object("videos", "out/"+j.Files[0].Path)
		sum := sha256.Sum256(data)
		if !ok || hex.EncodeToString(sum[:]) != j.Files[0].SHA256 || int64(len(data)) != j.Files[0].Size {
			t.Errorf("row %d: object %s (exists %v) does not match the recorded size and sha256", j.Row, j.Files[0].Path, ok)
		}
	}
	if st := h.sim.Stats(); st.Created != rows {
		t.Errorf("%d tasks created for %d rows: a failed upload must not create again", st.Created, rows)
	}
}

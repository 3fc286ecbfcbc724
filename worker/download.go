package worker

import (
	"context"
	"errors"
	"path"
	"strconv"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/tasks"
)

// FilePath is where a row's i-th video (from 0) is stored, relative to the
// output directory: <batch>/<row id>.mp4 for the first, <batch>/<row
// id>+2.mp4, +3... for further ones. The batch and row ids pass through
// [tasks.SafeFileName], whose names never hold '+', so two rows of a batch,
// or two videos of a row, never share a path: row "a"'s second video is
// a+2.mp4, while a row named "a+2" is stored under a changed name
// ("a_2~" and a hash) and a row named "a-2" as a-2.mp4.
func FilePath(b, id string, i int) string {
	name := tasks.SafeFileName(id)
	if i > 0 {
		name += string(tasks.FileNameIndexSep) + strconv.Itoa(i+1)
	}
	return path.Join(tasks.SafeFileName(b), name+".mp4")
}

// handleDownload stores every result video of a succeeded row and marks it
// done with each file's size and sha256.
func (w *Worker) handleDownload(ctx context.Context, t *asynq.Task) error {
	p, job, err := w.load(ctx, t)
	if err != nil {
		return err
	}
	if job.State != tasks.StateSucceeded || job.Attempt != p.Attempt {
		return nil
	}
	log := w.log.With("batch", job.Batch, "row", job.Row, "task_id", job.TaskID)
	files := make([]batch.File, 0, len(job.ResultURLs))
	for i, u := range job.ResultURLs {
		f, err := w.fetcher.Get(ctx, u, FilePath(job.Batch, job.Spec.ID, i), fetch.File{})
		if err != nil {
			return w.downloadFailed(ctx, job, err)
		}
		files = append(files, batch.File{Path: f.Path, Size: f.Size, SHA256: f.SHA256})
		w.metrics.DownloadBytes(ctx, f.Size)
	}
	_, err = w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
		From: []tasks.State{tasks.StateSucceeded}, To: tasks.StateDone, Attempt: &job.Attempt,
		Files: files, Downloaded: w.cfg.Now()})
	log.Info("downloaded", "files", len(files))
	return ignoreConflict(err)
}

// downloadFailed ends a row whose video cannot be stored, or lets asynq
// retry a transient failure.
func (w *Worker) downloadFailed(ctx context.Context, job batch.Job, err error) error {
	code, msg := "", "the video could not be stored: "+err.Error()
	switch {
	case errors.Is(err, fetch.ErrExpired):
		code = tasks.CodeResultExpired
	case errors.Is(err, fetch.ErrTooLarge):
		code = tasks.CodeDownloadTooLarge
	case errors.Is(err, fetch.ErrStorageFull), errors.Is(err, fetch.ErrStorageReadOnly):
		// Retrying now only fails again: keep the result URLs and say how
		// to store the video once the directory can take it.
		code = tasks.CodeStorageFull
		if errors.Is(err, fetch.ErrStorageReadOnly) {
			code = tasks.CodeStorageReadOnly
		}
		msg = storageMessage(job.Batch, err)
	case errors.Is(err, fetch.ErrPermanent), w.finalAttempt(ctx):
		code = tasks.CodeDownloadFailed
	default:
		_ = w.store.SetLastError(ctx, job.Batch, job.Row, err.Error())
		return err
	}
	w.log.Warn("download_failed", "batch", job.Batch, "row", job.Row, "code", code, "err", err)
	_, terr := w.store.Transition(ctx, job.Batch, job.Row, batch.Change{
		From: []tasks.State{tasks.StateSucceeded}, To: tasks.StateFailed, Attempt: &job.Attempt,
		FailCode: code, FailMsg: msg})
	return ignoreConflict(terr)
}

// storageMessage is the failure message of a row whose video the output
// directory could not take.
func storageMessage(batchID string, err error) string {
	what := "the output directory (out_dir) is full"
	if errors.Is(err, fetch.ErrStorageReadOnly) {
		what = "the output directory (out_dir) cannot be written (read-only, or no permission)"
	}
	return what + ": the video was created (billed) and its result URL is kept. Make room or fix the directory, then " +
		"run seedbatch retry " + batchID + " --state failed (or seedbatch expiry) within 24 hours of its creation: " +
		"it is downloaded again, not created again. (" + err.Error() + ")"
}

package worker

import (
	"context"
	"fmt"
	"sync"

	"github.com/seedbatch/seedbatch/batch"
)

// epochGuard remembers the Redis epoch this process has seen and the
// highest create count in it: a count that goes back means Redis lost
// acknowledged writes (see batch.Epoch).
type epochGuard struct {
	mu  sync.Mutex
	id  string
	seq int64
}

// checkEpoch counts one create of a batch in the Redis epoch and returns
// an error wrapping batch.ErrDataLost when Redis shows that it lost data:
// it has no epoch, another epoch than the batch was created in, or a create
// count lower than one of a create this process sent (see noteEpoch).
func (w *Worker) checkEpoch(ctx context.Context, meta batch.Meta) (batch.Epoch, error) {
	w.epoch.mu.Lock()
	seenID, seenSeq := w.epoch.id, w.epoch.seq
	w.epoch.mu.Unlock()
	e, err := w.store.NextCreate(ctx)
	if err != nil {
		return batch.Epoch{}, err
	}
	if e.ID == "" && meta.Epoch == "" && seenID == "" {
		// A batch of an earlier version, on a Redis that never had an epoch.
		if _, err := w.store.EnsureEpoch(ctx); err != nil {
			return batch.Epoch{}, err
		}
		if e, err = w.store.NextCreate(ctx); err != nil {
			return batch.Epoch{}, err
		}
	}
	lost := func(format string, args ...any) (batch.Epoch, error) {
		return batch.Epoch{}, fmt.Errorf("%w: %s", batch.ErrDataLost, fmt.Sprintf(format, args...))
	}
	switch {
	case e.ID == "":
		return lost("its epoch record is gone, so it was restarted without its data (no persistence) or emptied")
	case meta.Epoch != "" && meta.Epoch != e.ID:
		return lost("batch %s was created in epoch %s, but Redis now holds epoch %s: its data was replaced", meta.ID, meta.Epoch, e.ID)
	case seenID == e.ID && e.Seq <= seenSeq:
		return lost("its count of creates went back from %d to %d: it failed over to a replica that missed writes, or was restored from an older copy", seenSeq, e.Seq)
	}
	return e, nil
}

// noteEpoch remembers the count of a create about to be sent, once its
// row's submitting state is in Redis (and its replicas, when required): a
// count that a failover lost along with a create never sent is no sign of
// lost data.
func (w *Worker) noteEpoch(e batch.Epoch) {
	w.epoch.mu.Lock()
	if w.epoch.id != e.ID {
		w.epoch.id, w.epoch.seq = e.ID, e.Seq
	} else {
		w.epoch.seq = max(w.epoch.seq, e.Seq)
	}
	w.epoch.mu.Unlock()
}

// dataLostReason is the pause reason shown when Redis lost data.
func dataLostReason(err error) string {
	return err.Error() + ". Nothing more is created: job records may have gone back to before their create, " +
		"and creating them again would pay twice. Check Redis and its persistence, rebuild what was lost, " +
		"restart every worker, then run seedbatch resume"
}

package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/seedbatch/seedbatch/batch"
)

// Account is a provider account the worker serves batches of: the client
// that holds its API key and base URL, and the limiter that holds its
// limits across processes.
type Account struct {
	Provider Provider
	Limiter  Limiter
}

// unknownAccountWait is how long the task of a batch whose account this
// worker does not have waits before it is tried again (by any worker).
const unknownAccountWait = 30 * time.Second

// pausedAccountWait is how long a submit of a paused account waits before
// it asks again; the batches of other accounts go on meanwhile.
const pausedAccountWait = 5 * time.Second

// busyAccountWait is how long a submit waits before it asks again when as
// many submit handlers of this process as its account may take are busy
// with that account's rows.
const busyAccountWait = time.Second

// account is one account as the worker uses it.
type account struct {
	name     string
	limiter  Limiter
	provider Provider // measured
	plans    *planner // when to read the account's running tasks
	// submitting holds a token for each submit handler busy with the
	// account's rows: a share of the handlers, so that handlers waiting
	// in place for a slot of a full account leave the others for the
	// other accounts' rows.
	submitting chan struct{}
}

// takeSubmitter reserves one of the account's share of the submit handlers
// for the caller, which calls the returned function when done; when the
// share is taken, it returns a NotYet that hands the task back.
func (a *account) takeSubmitter() (func(), error) {
	select {
	case a.submitting <- struct{}{}:
		return func() { <-a.submitting }, nil
	default:
		return nil, &NotYet{After: busyAccountWait, Reason: "account " + a.name + " busy"}
	}
}

// accounts finds the account of a batch. A batch's account never changes,
// so it is looked up once per batch.
type accounts struct {
	byName map[string]*account
	first  *account

	mu      sync.Mutex
	byBatch map[string]*account
}

// accountFor returns the account meta names (AccountDefault for a batch
// recorded without one), or a NotYet when this worker has none by that name.
func (w *Worker) accountFor(meta batch.Meta) (*account, error) {
	a := w.accounts.byName[meta.Account]
	if a == nil {
		w.log.Warn("account_unknown", "batch", meta.ID, "account", meta.Account)
		return nil, &NotYet{After: unknownAccountWait, Reason: fmt.Sprintf("no account %q in this worker's configuration", meta.Account)}
	}
	w.accounts.mu.Lock()
	w.accounts.byBatch[meta.ID] = a
	w.accounts.mu.Unlock()
	return a, nil
}

// accountOf returns the account of batch id, reading its record the first time.
func (w *Worker) accountOf(ctx context.Context, id string) (*account, error) {
	w.accounts.mu.Lock()
	a := w.accounts.byBatch[id]
	w.accounts.mu.Unlock()
	if a != nil {
		return a, nil
	}
	meta, err := w.store.Meta(ctx, id)
	if err != nil {
		return nil, err
	}
	return w.accountFor(meta)
}

// pauseAccount stops the account's submits in every process, with reason
// shown to operators. With one account that is the submit queue's pause
// (Pause); with several, only the account's limiter refuses submits, so
// the batches of the others go on.
func (w *Worker) pauseAccount(ctx context.Context, a *account, reason string) error {
	if len(w.accounts.byName) == 1 {
		return w.Pause(ctx, reason)
	}
	w.log.Error("account_paused", "account", a.name, "reason", reason)
	if err := a.limiter.Pause(ctx, reason); err != nil {
		return fmt.Errorf("pause account %s: %w", a.name, err)
	}
	return nil
}

// plansOf returns the read planner of batch id's account (the first
// account's when it cannot be known: only the pace of reads differs).
func (w *Worker) plansOf(ctx context.Context, id string) *planner {
	if a, err := w.accountOf(ctx, id); err == nil {
		return a.plans
	}
	return w.accounts.first.plans
}

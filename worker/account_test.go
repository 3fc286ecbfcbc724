package worker_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
	"github.com/seedbatch/seedbatch/seedance"
	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// accountsScale compresses time less than timeScale: a 12-second video
// takes 9 to 12 s, long enough for every slot of an account to be filled
// before the first of its tasks ends, even on a busy machine.
const accountsScale = 10

// twoAccounts is a simulator serving the keys of two accounts, "a" (the
// simulator's DefaultAccount) and "b", with the given in-flight limits, and
// workers that serve both, with clientKeyB as b's key.
type twoAccounts struct {
	t      *testing.T
	rs     *redistest.Server
	sim    *sim.Sim
	store  *batch.Store
	queues queue.Names
	lims   map[string]*ratelimit.Limiter
}

func newTwoAccounts(t *testing.T, inFlightA, inFlightB int, clientKeyB string, workers, submitters int) *twoAccounts {
	t.Helper()
	rs := redistest.New(t)
	s, err := sim.New(sim.Config{APIKey: "key-a", TimeScale: accountsScale, Seed: 1, MaxInFlight: inFlightA,
		Accounts: []sim.Account{{Name: "b", APIKey: "key-b", MaxInFlight: inFlightB}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	ta := &twoAccounts{t: t, rs: rs, sim: s, store: batch.NewStore(rs.Client, rs.Prefix), queues: queue.NamesFor(rs.Prefix),
		lims: map[string]*ratelimit.Limiter{}}
	keys := map[string]string{"a": "key-a", "b": clientKeyB}
	limits := map[string]int{"a": inFlightA, "b": inFlightB}
	for range workers {
		accounts := map[string]worker.Account{}
		for name, key := range keys {
			client, err := seedance.New(seedance.Config{BaseURL: srv.URL, APIKey: key, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			lim, err := ratelimit.New(rs.Client, ratelimit.Config{Prefix: rs.Prefix, Scope: "acct-" + name,
				RequestsPerMinute: 10000 * accountsScale, Burst: 100, MaxInFlight: limits[name]})
			if err != nil {
				t.Fatal(err)
			}
			ta.lims[name] = lim
			accounts[name] = worker.Account{Provider: client, Limiter: lim}
		}
		f, err := fetch.New(fetch.Config{Dir: t.TempDir(), AllowPrivate: true})
		if err != nil {
			t.Fatal(err)
		}
		first := accounts["a"]
		delete(accounts, "a")
		wk, err := worker.New(rs.Client, ta.store, first.Limiter, first.Provider, f, worker.Config{
			Queues: ta.queues, TimeScale: accountsScale, MaxRetry: 4, MaxWait: time.Second,
			SubmitConcurrency: submitters, PollConcurrency: 60, Account: "a", Accounts: accounts})
		if err != nil {
			t.Fatal(err)
		}
		if err := wk.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wk.Shutdown)
	}
	return ta
}

// enqueue enqueues rows rows, each with a prompt of its own, as a batch of account.
func (ta *twoAccounts) enqueue(account string, rows int) string {
	ta.t.Helper()
	var csv strings.Builder
	csv.WriteString("prompt,duration\n")
	for i := range rows {
		fmt.Fprintf(&csv, "account %s scene number %d,12\n", account, i)
	}
	path := filepath.Join(ta.t.TempDir(), account+".csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
		ta.t.Fatal(err)
	}
	plan, err := batch.PlanFile(path, batch.PlanOptions{})
	if err != nil {
		ta.t.Fatal(err)
	}
	q := queue.New(ta.rs.Client, ta.queues)
	defer q.Close()
	if _, err := ta.store.EnqueueBatch(ta.t.Context(), q, plan, batch.PlanOptions{},
		batch.Settings{BudgetSeconds: -1, Account: account}); err != nil {
		ta.t.Fatal(err)
	}
	return plan.ID
}

// waitFor polls the counts of batch id until cond holds or the time runs out.
func (ta *twoAccounts) waitFor(id string, within time.Duration, cond func(batch.Counts) bool) batch.Counts {
	ta.t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, c, err := ta.store.Get(ta.t.Context(), id)
		if err != nil {
			ta.t.Fatal(err)
		}
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			ta.t.Fatalf("batch %s: condition not met within %v; counts %v", id, within, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTwoAccounts runs a batch on each of two accounts (in-flight limits 20
// and 30) through two workers: each account's tasks in flight at the
// provider reach its own limit and never pass it, together they pass
// either, and every row is created once.
func TestTwoAccounts(t *testing.T) {
	t.Parallel()
	const limitA, limitB = 20, 30
	rows := map[string]int{sim.DefaultAccount: 2 * limitA, "b": 2 * limitB}
	ta := newTwoAccounts(t, limitA, limitB, "key-b", 2, 10)
	a, b := ta.enqueue("a", rows[sim.DefaultAccount]), ta.enqueue("b", rows["b"])
	for id, n := range map[string]int{a: rows[sim.DefaultAccount], b: rows["b"]} {
		if c := ta.waitFor(id, 3*time.Minute, allTerminal(n)); c[tasks.StateDone] != n {
			t.Fatalf("batch %s: %v, want %d done", id, c, n)
		}
	}
	st := ta.sim.Stats()
	for name, limit := range map[string]int{sim.DefaultAccount: limitA, "b": limitB} {
		acct := st.Accounts[name]
		t.Logf("account %s: %+v", name, acct)
		if acct.PeakInFlight != limit {
			t.Errorf("account %s: peak in flight %d, want its limit %d", name, acct.PeakInFlight, limit)
		}
		if acct.RateLimited != 0 {
			t.Errorf("account %s: %d answers 429: the limits were passed", name, acct.RateLimited)
		}
		if acct.Created != rows[name] {
			t.Errorf("account %s: %d tasks created, want %d", name, acct.Created, rows[name])
		}
	}
	t.Logf("both accounts: peak in flight %d, %d created", st.PeakInFlight, st.Created)
	// Both accounts were near their limits at once: neither one's rows
	// waited for the other's (a full account holding every handler).
	if st.PeakInFlight <= limitB+limitA/2 {
		t.Errorf("peak in flight of both accounts %d, want more than %d (either's limit is at most %d)", st.PeakInFlight, limitB+limitA/2, limitB)
	}
	for prompt, n := range st.CreatedPerPrompt {
		if n != 1 {
			t.Errorf("%q created %d times", prompt, n)
		}
	}
	if want := rows[sim.DefaultAccount] + rows["b"]; st.Created != want {
		t.Errorf("%d tasks created, want %d", st.Created, want)
	}
}

// TestRefusedKeyPausesItsAccountAlone: the provider refuses account b's
// key; b's batch pauses with the reason, a's batch finishes, and the
// submit queue itself stays open.
func TestRefusedKeyPausesItsAccountAlone(t *testing.T) {
	t.Parallel()
	const rows = 20
	ta := newTwoAccounts(t, 10, 10, "key-refused", 1, 10)
	a, b := ta.enqueue("a", rows), ta.enqueue("b", rows)
	if c := ta.waitFor(a, 2*time.Minute, allTerminal(rows)); c[tasks.StateDone] != rows {
		t.Fatalf("batch of account a: %v, want %d done", c, rows)
	}
	ctx := t.Context()
	deadline := time.Now().Add(20 * time.Second)
	var reason string
	for paused := false; !paused; {
		var err error
		if reason, paused, err = ta.lims["b"].Paused(ctx); err != nil {
			t.Fatal(err)
		}
		if !paused && time.Now().After(deadline) {
			t.Fatal("account b was not paused after its key was refused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(reason, "refused the API key") || strings.Contains(reason, "key-refused") {
		t.Errorf("pause reason of b = %q", reason)
	}
	if _, paused, _ := ta.lims["a"].Paused(ctx); paused {
		t.Error("account a paused too")
	}
	insp := asynq.NewInspectorFromRedisClient(ta.rs.Client)
	defer insp.Close()
	if info, err := insp.GetQueueInfo(ta.queues.Submit); err != nil || info.Paused {
		t.Errorf("submit queue paused (%v): the other accounts' batches would stop", err)
	}
	_, c, err := ta.store.Get(ctx, b)
	if err != nil || c.Sum(tasks.StateQueued, tasks.StateSubmitting) != rows || c.Terminal() != 0 {
		t.Errorf("batch of account b: %v, %v; want every row waiting", c, err)
	}
	st := ta.sim.Stats()
	if st.Accounts["b"].Created != 0 || st.Accounts[sim.DefaultAccount].Created != rows {
		t.Errorf("created: %+v, want %d on a, none on b", st.Accounts, rows)
	}
}

// TestFullAccountLeavesHandlersToOthers: with two submit handlers and
// account a's one slot taken, a's rows queued ahead of b's do not hold
// both handlers waiting for a's slot: b's row is created while a's first
// task still runs.
func TestFullAccountLeavesHandlersToOthers(t *testing.T) {
	t.Parallel()
	ta := newTwoAccounts(t, 1, 1, "key-b", 1, 2)
	ta.enqueue("a", 6)
	ta.enqueue("b", 1)
	deadline := time.Now().Add(time.Minute)
	for ta.sim.Stats().Accounts["b"].Created == 0 {
		if time.Now().After(deadline) {
			t.Fatal("account b's row was not created within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A task of 12 s takes 9 to 12 s here: a's second create would come
	// only after its first task ended.
	if a := ta.sim.Stats().Accounts[sim.DefaultAccount]; a.Created != 1 || a.InFlight != 1 {
		t.Errorf("account a when b's row was created: %+v; want its first task still running, nothing more created", a)
	}
}

package batch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/tasks"
)

// ErrNotFound is returned for a batch or job that does not exist.
var ErrNotFound = errors.New("not found")

// Store reads and writes batch and job records.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	now     func() time.Time
	journal Journal
	redact  func(string) string
	// chunk is how many rows Enqueue writes per round trip.
	chunk int
	// retention is how long a finished batch's records are kept (0: forever).
	retention time.Duration
	// retiring tracks the retirements running apart (see afterTransition).
	retiring *sync.WaitGroup
	// batchLocks holds a *sync.Mutex per batch being retired or reopened.
	batchLocks *sync.Map
	log        *slog.Logger
	// waitReplicas is how many replicas must hold a row's submitting state
	// before its create is sent (see WaitReplicated).
	waitReplicas int
}

// SetRedactor makes the store pass every failure message and last error
// through redact before it is written, to Redis and to the journal alike,
// so that no secret an error carried is ever stored.
func (s *Store) SetRedactor(redact func(string) string) { s.redact = redact }

// clean redacts a message the store is about to write.
func (s *Store) clean(msg string) string {
	if s.redact == nil || msg == "" {
		return msg
	}
	return s.redact(msg)
}

// NewStore returns a Store whose keys start with prefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	return &Store{rdb: rdb, prefix: prefix, now: time.Now, chunk: enqueueChunk, retention: RetentionDefault,
		retiring: &sync.WaitGroup{}, batchLocks: &sync.Map{}, log: slog.New(slog.DiscardHandler)}
}

// Meta describes a batch.
type Meta struct {
	// ID is the batch id.
	ID string `json:"id"`
	// Source is the name of the CSV file the batch came from.
	Source string `json:"source"`
	// Rows is the number of data rows in the file, valid or not.
	Rows int `json:"rows"`
	// Created is when the batch was first enqueued.
	Created time.Time `json:"created"`
	// Canceled is set when an operator stopped submitting the batch.
	Canceled bool `json:"canceled"`
	// RequestType is how the provider reports results for this batch:
	// "async" (seedbatch polls) or "callback" (the provider posts them).
	RequestType string `json:"request_type"`
	// Hash is the sha256 of the file the batch came from.
	Hash string `json:"hash"`
	// Epoch is the id of the Redis epoch the batch was created in (empty
	// for a batch created by an earlier version).
	Epoch string `json:"epoch"`
	// Account names the provider account (API key) that creates and reads
	// the batch's tasks (AccountDefault for a batch recorded without one).
	Account string `json:"account"`
	// Finished is when the transition that made its last row terminal ran
	// (zero while a row is not, and for a batch finished by an earlier
	// version or with no transition: every row rejected).
	Finished time.Time `json:"finished"`
}

// Counts is the number of a batch's jobs in each state.
type Counts map[tasks.State]int

// Total is the number of jobs counted.
func (c Counts) Total() int { return c.count(func(tasks.State) bool { return true }) }

// Terminal is the number of jobs in a terminal state.
func (c Counts) Terminal() int { return c.count(tasks.State.Terminal) }

// Settled is the number of jobs that need an operator to move again:
// terminal, or held by a budget.
func (c Counts) Settled() int { return c.count(tasks.State.Settled) }

// Sum is the number of jobs in the states given.
func (c Counts) Sum(states ...tasks.State) int {
	n := 0
	for _, s := range states {
		n += c[s]
	}
	return n
}

func (c Counts) count(in func(tasks.State) bool) int {
	n := 0
	for s, v := range c {
		if in(s) {
			n += v
		}
	}
	return n
}

// CreateBatch records a batch unless it exists; it reports whether it did.
func (s *Store) CreateBatch(ctx context.Context, m Meta) (bool, error) {
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	ok, err := s.rdb.HSetNX(ctx, s.metaKey(m.ID), "id", m.ID).Result()
	if err != nil {
		return false, fmt.Errorf("create batch %s: %w", m.ID, err)
	}
	if !ok {
		return false, nil
	}
	epoch, err := s.EnsureEpoch(ctx)
	if err != nil {
		return false, fmt.Errorf("create batch %s: %w", m.ID, err)
	}
	// The meta and the batch list hash to different Cluster slots: one
	// round trip, not one transaction. A process stopping in between leaves
	// a meta that CreateBatch refuses again and Batches does not list; the
	// HSETNX above already made that window, and the meta is written first.
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, s.metaKey(m.ID), "source", m.Source, "rows", m.Rows, "created_ms", m.Created.UnixMilli(),
		"request_type", m.RequestType, "hash", m.Hash, "epoch", epoch, "account", cmp.Or(m.Account, AccountDefault))
	pipe.ZAdd(ctx, s.batchesKey(), redis.Z{Score: float64(m.Created.UnixMilli()), Member: m.ID})
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("create batch %s: %w", m.ID, err)
	}
	return true, nil
}

// Get returns a batch's record and counts.
func (s *Store) Get(ctx context.Context, id string) (Meta, Counts, error) {
	pipe := s.rdb.Pipeline()
	mc := pipe.HGetAll(ctx, s.metaKey(id))
	cc := pipe.HGetAll(ctx, s.countsKey(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return Meta{}, nil, fmt.Errorf("read batch %s: %w", id, err)
	}
	m, err := decodeMeta(id, mc.Val())
	if err != nil {
		return m, nil, err
	}
	counts := Counts{}
	for k, v := range cc.Val() {
		if n, _ := strconv.Atoi(v); n != 0 {
			counts[tasks.State(k)] = n
		}
	}
	return m, counts, nil
}

// Meta returns a batch's record without its counts.
func (s *Store) Meta(ctx context.Context, id string) (Meta, error) {
	v, err := s.rdb.HGetAll(ctx, s.metaKey(id)).Result()
	if err != nil {
		return Meta{}, fmt.Errorf("read batch %s: %w", id, err)
	}
	return decodeMeta(id, v)
}

func decodeMeta(id string, mv map[string]string) (Meta, error) {
	if len(mv) == 0 {
		return Meta{}, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	rows, _ := strconv.Atoi(mv["rows"])
	ms, _ := strconv.ParseInt(mv["created_ms"], 10, 64)
	return Meta{ID: id, Source: mv["source"], Rows: rows, Created: time.UnixMilli(ms), Canceled: mv["canceled"] == "1",
		RequestType: mv["request_type"], Hash: mv["hash"], Epoch: mv["epoch"], Finished: msTime(mv["finished_ms"]),
		Account: cmp.Or(mv["account"], AccountDefault)}, nil
}

// Batches lists batch ids, oldest first. A batch whose records expired
// (see Retire) is left out, and taken off the list.
func (s *Store) Batches(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.ZRange(ctx, s.batchesKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list batches: %w", err)
	}
	pipe := s.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		exists[i] = pipe.Exists(ctx, s.metaKey(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
	}
	live := ids[:0]
	for i, id := range ids {
		if exists[i].Val() == 1 {
			live = append(live, id)
		} else if err := s.rdb.ZRem(ctx, s.batchesKey(), id).Err(); err != nil {
			return nil, fmt.Errorf("list batches: %w", err)
		}
	}
	return live, nil
}

// SetCanceled marks a batch canceled: its queued rows are not submitted.
func (s *Store) SetCanceled(ctx context.Context, id string) error {
	if _, _, err := s.Get(ctx, id); err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.metaKey(id), "canceled", "1").Err(); err != nil {
		return fmt.Errorf("cancel batch %s: %w", id, err)
	}
	return s.record(Record{Kind: RecordCancel, Batch: id})
}

// Wait reads a batch's counts every every, and passes each reading to
// watch, until watch says the wait is over or returns an error, or ctx
// ends (then it returns ctx's error). It returns the last counts read.
func (s *Store) Wait(ctx context.Context, id string, every time.Duration, watch func(Counts) (bool, error)) (Counts, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	var counts Counts
	for {
		// Read even while ctx ends: the caller reports where the batch stands.
		_, c, err := s.Get(context.WithoutCancel(ctx), id)
		if err != nil {
			return counts, err
		}
		counts = c
		if done, err := watch(counts); done || err != nil {
			return counts, err
		}
		select {
		case <-ctx.Done():
			return counts, ctx.Err()
		case <-t.C:
		}
	}
}

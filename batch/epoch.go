package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The epoch tells a Redis that lost data from one that did not. It is a
// hash under <prefix>:epoch: "id", a random name written when the first
// batch is created (and recorded on every batch created after), and "seq",
// incremented before every create. A Redis restarted empty has no epoch;
// one failed over to a stale replica, or restored from an old snapshot, has
// a lower seq than a worker has already seen, or another id than its
// batches record. A worker checks before each create (see EpochGuard) and
// stops creating when Redis lost data: a job record rolled back to queued
// would otherwise be created, and billed, a second time.

// ErrDataLost is returned (wrapped) when Redis shows that it lost data.
var ErrDataLost = errors.New("Redis lost data")

// EnsureEpoch writes the epoch's id unless it has one, and returns it.
// Creating a batch does it; a worker does it for batches created by an
// earlier version, which record none.
func (s *Store) EnsureEpoch(ctx context.Context) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if err := s.rdb.HSetNX(ctx, s.epochKey(), "id", hex.EncodeToString(b[:])).Err(); err != nil {
		return "", fmt.Errorf("epoch: %w", err)
	}
	id, err := s.rdb.HGet(ctx, s.epochKey(), "id").Result()
	if err != nil {
		return "", fmt.Errorf("epoch: %w", err)
	}
	return id, nil
}

// Epoch is the state of the epoch at one create.
type Epoch struct {
	// ID names the epoch; "" when Redis has none.
	ID string
	// Seq counts the creates of the epoch, this one included.
	Seq int64
}

// nextCreateScript counts one create of the epoch, if there is one.
//
//	KEYS[1] epoch. Returns {id, seq}, or {} when the epoch is missing.
var nextCreateScript = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], 'id')
if not id then return {} end
return {id, redis.call('HINCRBY', KEYS[1], 'seq', 1)}
`)

// NextCreate counts one create in the epoch and returns its state.
func (s *Store) NextCreate(ctx context.Context) (Epoch, error) {
	v, err := nextCreateScript.Run(ctx, s.rdb, []string{s.epochKey()}).Slice()
	if err != nil {
		return Epoch{}, fmt.Errorf("epoch: %w", err)
	}
	if len(v) != 2 {
		return Epoch{}, nil
	}
	id, _ := v[0].(string)
	seq, _ := v[1].(int64)
	return Epoch{ID: id, Seq: seq}, nil
}

// DurabilityWarnings reads Redis's persistence and eviction settings
// (CONFIG GET, when the server allows it) and returns what would let it lose
// seedbatch's records: no append-only file, or a maxmemory policy that
// evicts keys. It returns nothing when the settings cannot be read.
func (s *Store) DurabilityWarnings(ctx context.Context) []string {
	var warnings []string
	if v, err := s.rdb.ConfigGet(ctx, "appendonly").Result(); err == nil && v["appendonly"] == "no" {
		warnings = append(warnings, "Redis runs without an append-only file (appendonly no): a restart loses "+
			"the queues and job records, and rows created since the last snapshot could be created again; "+
			"set appendonly yes (appendfsync everysec)")
	}
	if v, err := s.rdb.ConfigGet(ctx, "maxmemory-policy").Result(); err == nil {
		if p := v["maxmemory-policy"]; p != "" && p != "noeviction" {
			warnings = append(warnings, "Redis may evict keys when full (maxmemory-policy "+p+"): an evicted job "+
				"record or queue loses work; set maxmemory-policy noeviction")
		}
	}
	return warnings
}

// RenewEpoch starts a new epoch after Redis lost data and what was lost was
// rebuilt (seedbatch recover): a new random id, its count of creates at 0,
// recorded on every batch Redis lists. A worker that paused on the loss
// takes the new epoch as it finds it, its memory of the old count no longer
// applying. It returns the new id.
func (s *Store) RenewEpoch(ctx context.Context) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	ids, err := s.Batches(ctx)
	if err != nil {
		return "", fmt.Errorf("renew epoch: %w", err)
	}
	pipe := s.rdb.Pipeline() // the keys live in several cluster slots
	pipe.Del(ctx, s.epochKey())
	pipe.HSet(ctx, s.epochKey(), "id", id, "seq", 0)
	for _, b := range ids {
		pipe.HSet(ctx, s.metaKey(b), "epoch", id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("renew epoch: %w", err)
	}
	return id, nil
}

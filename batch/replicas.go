package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis replicates asynchronously: a failover (Sentinel's or Cluster's)
// promotes a replica that may lack the master's last writes, acknowledged
// to clients though they were. The write that matters for money is a
// row's move to submitting, made before its create is sent: lost, the row
// goes back to queued and would be created a second time. With
// SetWaitReplicas, a worker waits for replicas to hold it (Redis WAIT)
// before sending the create, and sends nothing when they do not; what a
// failover can still lose is written after the create (the task id, the
// outcome), and a row rolled back to submitting ends ambiguous, never
// created twice.

// WaitReplicasTimeout bounds the wait for replicas before one create.
const WaitReplicasTimeout = 2 * time.Second

// syncKeyTTL is how long a batch's sync counter outlives its last write.
const syncKeyTTL = time.Hour

// ErrNotReplicated is returned (wrapped) by WaitReplicated when fewer
// replicas than required acknowledged the batch's writes in time.
var ErrNotReplicated = errors.New("not replicated")

// SetWaitReplicas makes WaitReplicated wait for n replicas (0: never
// waits, for a Redis without replicas).
func (s *Store) SetWaitReplicas(n int) { s.waitReplicas = n }

// WaitReplicated waits until the store's replica count of replicas hold
// every write made so far to the Redis server of batch b's keys (a write to
// the batch's sync counter, then WAIT, on one connection of that server),
// or returns an error wrapping ErrNotReplicated after WaitReplicasTimeout.
// It does nothing when no replica is required.
func (s *Store) WaitReplicated(ctx context.Context, b string) error {
	if s.waitReplicas <= 0 {
		return nil
	}
	key := s.syncKey(b)
	var c redis.Cmdable = s.rdb
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// WAIT names no key: send it to the master of the batch's slot.
		m, err := cc.MasterForKey(ctx, key)
		if err != nil {
			return fmt.Errorf("wait for replicas of batch %s: %w", b, err)
		}
		c = m
	}
	pipe := c.Pipeline()
	pipe.Incr(ctx, key)
	pipe.PExpire(ctx, key, syncKeyTTL)
	wait := pipe.Do(ctx, "WAIT", s.waitReplicas, WaitReplicasTimeout.Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("wait for replicas of batch %s: %w", b, err)
	}
	n, _ := wait.Int()
	if n < s.waitReplicas {
		return fmt.Errorf("batch %s: %d of %d replicas acknowledged within %s: %w", b, n, s.waitReplicas,
			WaitReplicasTimeout, ErrNotReplicated)
	}
	return nil
}

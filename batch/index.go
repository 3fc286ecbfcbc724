package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The task index names the row that owns each provider task, so that a
// callback can never bind a task another row owns; file claims name the
// batch each file content was enqueued as, so that a renamed copy is
// recognised. Both expire with their batch (see Retire).

// IndexTask records which row (its holder, Job.Holder: "batch:row:attempt")
// a provider task belongs to. The entry lives as long as the row's batch.
func (s *Store) IndexTask(ctx context.Context, taskID, holder string) error {
	b, _, _ := strings.Cut(holder, ":")
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, s.taskKey(taskID), holder, 0)
	pipe.SAdd(ctx, s.batchTasksKey(b), taskID)
	ttl := pipe.PTTL(ctx, s.metaKey(b))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("index task %s: %w", taskID, err)
	}
	// A batch retired meanwhile: the entry expires with it. (Retiring
	// expires the entries listed before it; this one may have come after.)
	if d := ttl.Val(); d > 0 {
		pipe := s.rdb.Pipeline()
		pipe.PExpire(ctx, s.taskKey(taskID), d)
		pipe.PExpire(ctx, s.batchTasksKey(b), d)
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("index task %s: %w", taskID, err)
		}
	}
	return nil
}

// TaskOwner returns the holder of the row a provider task belongs to, or ""
// if no row has claimed it.
func (s *Store) TaskOwner(ctx context.Context, taskID string) (string, error) {
	v, err := s.rdb.Get(ctx, s.taskKey(taskID)).Result()
	if errors.Is(err, redis.Nil) {
		// Recorded by an earlier version, in one hash.
		v, err = s.rdb.HGet(ctx, s.legacyTasksKey(), taskID).Result()
	}
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("task owner %s: %w", taskID, err)
	}
	return v, nil
}

// claimFile records that the content with sha256 hash is batch id, unless
// another batch has it; it returns that other batch, or "".
func (s *Store) claimFile(ctx context.Context, hash, id string) (string, error) {
	if legacy, err := s.rdb.HGet(ctx, s.legacyFilesKey(), hash).Result(); err == nil && legacy != id {
		return legacy, nil
	}
	pipe := s.rdb.Pipeline()
	pipe.SetNX(ctx, s.fileKey(hash), id, 0)
	owner := pipe.Get(ctx, s.fileKey(hash))
	if _, err := pipe.Exec(ctx); err != nil {
		return "", fmt.Errorf("enqueue %s: %w", id, err)
	}
	if owner.Val() == id {
		return "", nil
	}
	return owner.Val(), nil
}

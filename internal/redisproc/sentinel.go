package redisproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name under which StartSentinel's sentinels monitor
// the master.
const MasterName = "seedbatch"

// Sentinel is a master, its replicas and the sentinels that watch them.
type Sentinel struct {
	// Servers are the master first (at the start), then its replicas.
	Servers []*Server
	// Sentinels are the redis-sentinel processes.
	Sentinels []*Server
}

// SentinelAddrs are the sentinels' host:port addresses.
func (s *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		out[i] = n.Addr
	}
	return out
}

// Stop ends every process.
func (s *Sentinel) Stop() {
	for _, n := range append(append([]*Server(nil), s.Sentinels...), s.Servers...) {
		n.Stop()
	}
}

// StartSentinel starts a master and replicas replicas (files under dir,
// extra arguments to each), then sentinels redis-sentinel processes that
// monitor the master as MasterName with a quorum of a majority, and waits
// until the replicas are in sync and every sentinel knows the replicas and
// the other sentinels (what a failover needs).
func StartSentinel(ctx context.Context, dir string, replicas, sentinels int, extra ...string) (*Sentinel, error) {
	s := &Sentinel{}
	master, err := Start(ctx, filepath.Join(dir, "master"), extra...)
	if err != nil {
		return nil, err
	}
	s.Servers = append(s.Servers, master)
	for i := range replicas {
		args := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}, extra...)
		r, err := Start(ctx, filepath.Join(dir, "replica"+strconv.Itoa(i)), args...)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Servers = append(s.Servers, r)
	}
	for i := range sentinels {
		port, err := freePort(false)
		if err != nil {
			s.Stop()
			return nil, err
		}
		sdir := filepath.Join(dir, "sentinel"+strconv.Itoa(i))
		conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %[1]s 2000\n"+
			"sentinel failover-timeout %[1]s 10000\n"+
			"sentinel parallel-syncs %[1]s 1\n", MasterName, master.Port, sentinels/2+1)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			s.Stop()
			return nil, fmt.Errorf("sentinel files: %w", err)
		}
		if err := os.WriteFile(filepath.Join(sdir, "sentinel.conf"), []byte(conf), 0o644); err != nil {
			s.Stop()
			return nil, fmt.Errorf("sentinel config: %w", err)
		}
		n, err := startOn(ctx, port, sdir, "redis-sentinel")
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, n)
	}
	if err := s.waitReady(ctx, replicas); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady waits until every sentinel knows replicas replicas and every
// other sentinel.
func (s *Sentinel) waitReady(ctx context.Context, replicas int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, n := range s.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: n.Addr})
			reps, err := sc.Replicas(ctx, MasterName).Result()
			others, err2 := sc.Sentinels(ctx, MasterName).Result()
			sc.Close()
			if err != nil || err2 != nil || len(reps) < replicas || len(others) < len(s.Sentinels)-1 {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the sentinels do not know every replica and sentinel after 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Master asks a sentinel which server is the master now.
func (s *Sentinel) Master(ctx context.Context) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel get-master-addr-by-name: %w", err)
	}
	return addr[0] + ":" + addr[1], nil
}

// Failover forces a failover (SENTINEL FAILOVER) and waits until the
// sentinels name another master and that server answers as one.
func (s *Sentinel) Failover(ctx context.Context) (string, error) {
	before, err := s.Master(ctx)
	if err != nil {
		return "", err
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr})
	defer sc.Close()
	if err := sc.Failover(ctx, MasterName).Err(); err != nil {
		return "", fmt.Errorf("sentinel failover: %w", err)
	}
	return s.WaitNewMaster(ctx, before)
}

// WaitNewMaster waits until the sentinels name another master than before
// and that server answers as one.
func (s *Sentinel) WaitNewMaster(ctx context.Context, before string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, err := s.Master(ctx)
		if err == nil && after != before {
			c := redis.NewClient(&redis.Options{Addr: after})
			role, rerr := c.Do(ctx, "ROLE").Slice()
			c.Close()
			if rerr == nil && len(role) > 0 && role[0] == "master" {
				return after, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no new master after 30 s (still %s)", before)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

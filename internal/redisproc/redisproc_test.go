package redisproc

import (
	"context"
	"os"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// need skips the test when a program is missing, or fails it on CI.
func need(t *testing.T) {
	t.Helper()
	if m := Missing("redis-server", "redis-cli"); len(m) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("missing on CI: %v", m)
		}
		t.Skipf("missing: %v", m)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	need(t)
	c, err := StartCluster(t.Context(), t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	var masters atomic.Int32 // ForEachMaster calls fn on every master at once
	if err := cc.ForEachMaster(t.Context(), func(ctx context.Context, m *redis.Client) error {
		masters.Add(1)
		return nil
	}); err != nil || masters.Load() != 3 {
		t.Fatalf("%d masters, %v", masters.Load(), err)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := cc.Set(t.Context(), k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	need(t)
	s, err := StartSentinel(t.Context(), t.TempDir(), 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: s.SentinelAddrs()})
	defer fc.Close()
	if err := fc.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := fc.Wait(t.Context(), 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Master(t.Context())
	after, err := s.Failover(t.Context())
	if err != nil || after == before {
		t.Fatalf("failover from %s: %s, %v", before, after, err)
	}
	if v, err := fc.Get(t.Context(), "k").Result(); err != nil || v != "v" {
		t.Fatalf("after failover: %q, %v", v, err)
	}
	if err := fc.Set(t.Context(), "k2", "v", 0).Err(); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
}

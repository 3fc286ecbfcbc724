package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redisconn"
	"github.com/seedbatch/seedbatch/internal/redisproc"
	"github.com/seedbatch/seedbatch/tasks"
)

// needRedisBinaries skips the test when redis-server or redis-cli is
// missing, or fails it on CI (CI=true), which installs them.
func needRedisBinaries(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end run of 2000 rows on real Redis servers")
	}
	if m := redisproc.Missing("redis-server", "redis-cli"); len(m) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("missing on CI: %s", strings.Join(m, ", "))
		}
		t.Skipf("missing: %s", strings.Join(m, ", "))
	}
}

// TestThreeWorkersOnCluster is TestThreeWorkerProcesses on a Redis Cluster
// of three masters with a replica each: the same limits held, every row
// done, one create per row.
func TestThreeWorkersOnCluster(t *testing.T) {
	t.Parallel()
	needRedisBinaries(t)
	c, err := redisproc.StartCluster(t.Context(), t.TempDir(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	conn := redisconn.Settings{ClusterAddrs: c.Addrs()[:3]}
	rdb, err := conn.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	res := e2eRun{rows: 2000, rdb: rdb, prefix: "e2e-cluster",
		env: []string{"REDIS_URL=", "REDIS_CLUSTER_ADDRS=" + strings.Join(conn.ClusterAddrs, ","), "SEEDBATCH_REDIS_WAIT_REPLICAS=1"}}.run(t)
	res.check(t, true)
}

// TestThreeWorkersThroughSentinelFailover runs the batch on a master with
// one replica watched by three sentinels, and forces a failover (SENTINEL
// FAILOVER) when a third of the rows are terminal. The batch still ends
// with every row terminal, the limits held and no row created twice.
func TestThreeWorkersThroughSentinelFailover(t *testing.T) {
	t.Parallel()
	needRedisBinaries(t)
	s, err := redisproc.StartSentinel(t.Context(), t.TempDir(), 1, 3, "--appendonly", "yes")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	conn := redisconn.Settings{MasterName: redisproc.MasterName, SentinelAddrs: s.SentinelAddrs()}
	rdb, err := conn.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	failedOver := ""
	res := e2eRun{rows: 2000, rdb: rdb, prefix: "e2e-sentinel",
		env: []string{"REDIS_URL=", "REDIS_MASTER_NAME=" + conn.MasterName,
			"REDIS_SENTINEL_ADDRS=" + strings.Join(conn.SentinelAddrs, ","), "SEEDBATCH_REDIS_WAIT_REPLICAS=1"},
		midway: func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			before, _ := s.Master(ctx)
			after, err := s.Failover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			failedOver = before + " -> " + after
		}}.run(t)
	if failedOver == "" {
		t.Fatal("the batch ended before the failover")
	}
	t.Logf("failover %s", failedOver)
	res.check(t, false)
	// Rows whose outcome the failover lost end ambiguous, each saying why;
	// every other row is done.
	if res.counts["done"]+res.counts["ambiguous"] != res.rows {
		t.Errorf("rows neither done nor ambiguous: %v", res.counts)
	}
	amb, _, err := batch.NewStore(rdb, "e2e-sentinel").JobsInState(t.Context(), "e2e", tasks.StateAmbiguous, 0, 100, res.rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range amb {
		if j.FailMsg == "" {
			t.Errorf("row %d ambiguous without a reason", j.Row)
		}
		t.Logf("row %d ambiguous: %s: %s", j.Row, j.FailCode, j.FailMsg)
	}
}

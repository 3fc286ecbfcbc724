package redisproc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Cluster is a Redis Cluster of local servers.
type Cluster struct {
	// Nodes are its servers, masters first.
	Nodes []*Server
}

// Addrs are the host:port addresses of every node.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Stop ends every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// StartCluster starts masters servers with replicas replicas each (files
// under dir), joins them with redis-cli --cluster create, and waits until
// every node reports the cluster ok. Extra arguments go to every server.
func StartCluster(ctx context.Context, dir string, masters, replicas int, extra ...string) (*Cluster, error) {
	if masters < 3 {
		return nil, errors.New("a Redis Cluster needs at least 3 masters")
	}
	c := &Cluster{}
	for i := range masters * (1 + replicas) {
		port, err := freePort(true)
		if err != nil {
			c.Stop()
			return nil, err
		}
		args := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000"}, extra...)
		n, err := startOn(ctx, port, filepath.Join(dir, "node"+strconv.Itoa(i)), "redis-server", args...)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.waitOK(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// waitOK waits until every node says cluster_state:ok and knows every
// other node.
func (c *Cluster) waitOK(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, n := range c.Nodes {
			cl := n.Client()
			info, err := cl.ClusterInfo(ctx).Result()
			nodes, err2 := cl.ClusterNodes(ctx).Result()
			cl.Close()
			if err != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") ||
				strings.Count(strings.TrimSpace(nodes), "\n")+1 != len(c.Nodes) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the Redis Cluster is not ok after 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

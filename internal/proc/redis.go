package proc

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds a redis-server's start, the loading of its data
// included.
const redisStartTimeout = 30 * time.Second

// HasRedisServer reports whether a redis-server is on PATH.
func HasRedisServer() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// RedisServer is a redis-server process on a loopback port.
type RedisServer struct {
	// Port is the loopback port it listens on.
	Port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

// URL returns the server's redis:// URL.
func (r *RedisServer) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(r.Port) }

// StartRedis starts redis-server on port (0: a free one) with its files in
// dir and the extra configuration args (such as "--appendonly", "yes"),
// and waits until it answers PING. Without args it keeps nothing: no RDB
// snapshots, no AOF.
func StartRedis(ctx context.Context, port int, dir string, args ...string) (*RedisServer, error) {
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	all := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning"}, args...)
	cmd := exec.Command("redis-server", all...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &RedisServer{Port: port, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(r.exited) }()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		if c.Ping(ctx).Err() == nil {
			return r, nil
		}
		select {
		case <-r.exited:
			return nil, errors.New("redis-server exited at start")
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server did not answer within %v", redisStartTimeout)
		}
	}
}

// Stop asks the server to exit (SIGTERM), kills it if it has not within
// 10 s, and waits for it.
func (r *RedisServer) Stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// Kill kills the server at once (SIGKILL), as a crash would, and waits for
// it.
func (r *RedisServer) Kill() {
	r.cmd.Process.Kill()
	<-r.exited
}

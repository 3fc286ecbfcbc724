// Package redisproc starts real Redis servers for tests and benchmarks: a
// redis-server on a free loopback port, a Redis Cluster of several of them
// (redis-cli --cluster create), or a master with replicas watched by
// redis-sentinel processes. Each server keeps its files in a directory of
// the caller's and runs until stopped.
package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binaries are the programs this package runs: redis-server, redis-cli
// (to create a Cluster) and redis-sentinel (redis-server --sentinel when
// it is missing).
var Binaries = []string{"redis-server", "redis-cli", "redis-sentinel"}

// Missing returns the names of the programs of names not on PATH.
func Missing(names ...string) []string {
	var out []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			out = append(out, n)
		}
	}
	return out
}

// startTimeout bounds the wait for a server to answer, the loading of its
// data (an AOF after a restart) included.
const startTimeout = 30 * time.Second

// Server is one redis-server (or redis-sentinel) process.
type Server struct {
	// Addr is its loopback host:port.
	Addr string
	// Port is the port of Addr.
	Port int
	// Dir holds its files.
	Dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs redis-server on a free loopback port without persistence,
// its files in dir, with extra arguments (e.g. "--appendonly", "yes"), and
// waits until it answers.
func Start(ctx context.Context, dir string, extra ...string) (*Server, error) {
	return StartOn(ctx, 0, dir, extra...)
}

// StartOn is Start on port (0: a free one), so that a server started
// again, with other files or arguments, keeps its clients' address.
func StartOn(ctx context.Context, port int, dir string, extra ...string) (*Server, error) {
	if port == 0 {
		p, err := freePort(false)
		if err != nil {
			return nil, err
		}
		port = p
	}
	return startOn(ctx, port, dir, "redis-server", extra...)
}

func startOn(ctx context.Context, port int, dir, program string, extra ...string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis-server files: %w", err)
	}
	if filepath.IsAbs(program) {
		// A restart: the same program and arguments.
		return run(ctx, port, dir, program, extra)
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--logfile", filepath.Join(dir, "redis.log")}
	args = append(args, extra...)
	if program == "redis-sentinel" {
		// A sentinel reads and rewrites its config file, given first.
		args = append([]string{filepath.Join(dir, "sentinel.conf")}, args...)
		if len(Missing("redis-sentinel")) > 0 {
			program, args = "redis-server", append(args, "--sentinel")
		}
		args = slicesWithout(args, "--save", "--appendonly")
	}
	return run(ctx, port, dir, program, args)
}

// run starts program with args and waits until it answers on port.
func run(ctx context.Context, port int, dir, program string, args []string) (*Server, error) {
	cmd := exec.Command(program, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", program, err)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, Dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(s.exited) }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for c.Ping(ctx).Err() != nil {
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("%s on port %d exited at start: %s", program, port, strings.TrimSpace(string(log)))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s on port %d did not answer within %s", program, port, startTimeout)
		}
	}
	return s, nil
}

// slicesWithout drops the options named in opts, each with its value.
func slicesWithout(args []string, opts ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		drop := false
		for _, o := range opts {
			if args[i] == o {
				drop = true
			}
		}
		if drop {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// Client returns a client of this one server; the caller closes it.
func (s *Server) Client() *redis.Client { return redis.NewClient(&redis.Options{Addr: s.Addr}) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot stop
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// Pause stops the process (SIGSTOP) until Resume: a replica paused so
// misses the master's writes meanwhile.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Restart starts a stopped server again on its port, with its files and
// arguments.
func (s *Server) Restart(ctx context.Context) error {
	n, err := startOn(ctx, s.Port, s.Dir, s.cmd.Path, s.cmd.Args[1:]...)
	if err != nil {
		return err
	}
	*s = *n
	return nil
}

// Kill ends the server at once (SIGKILL), as a crash would, and waits.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// freePort returns a loopback TCP port that was free a moment ago; with
// bus, one whose Cluster bus port (port + 10000) was free too.
func freePort(bus bool) (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if !bus {
			ln.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			ln.Close()
			continue
		}
		ln2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		ln.Close()
		if err == nil {
			ln2.Close()
			return port, nil
		}
	}
	return 0, errors.New("find a free port: none with a free Cluster bus port")
}

// Package redistest gives tests a Redis connection: the real server named by
// REDIS_URL when it is set (CI always sets it), an in-process miniredis
// otherwise. Each call also returns a key prefix of its own, so tests can run
// in parallel on one server without seeing each other's keys.
package redistest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/internal/redisconn"
)

var seq atomic.Int64

// Server is a Redis for one test.
type Server struct {
	// Client is connected to the server and closed by the test's cleanup.
	Client *redis.Client
	// URL reaches the same server from another client or process.
	URL string
	// Prefix is a key namespace unique to this test.
	Prefix string
	// Mini is the embedded server when REDIS_URL is not set, nil otherwise.
	Mini *miniredis.Miniredis
}

// Real reports whether tests run against a real Redis (REDIS_URL is set).
func Real() bool { return os.Getenv("REDIS_URL") != "" }

// New returns a Redis for t, real when REDIS_URL is set.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Prefix: fmt.Sprintf("sbtest-%d-%d-%s", os.Getpid(), seq.Add(1), safeName(t.Name()))}
	if u := os.Getenv("REDIS_URL"); u != "" {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatalf("REDIS_URL: %v", err)
		}
		s.URL = u
		s.Client = redis.NewClient(opt)
	} else {
		m := miniredis.NewMiniRedis()
		if err := m.Start(); err != nil {
			t.Fatalf("start miniredis: %v", err)
		}
		m.ClockTTL(true)
		t.Cleanup(m.Close)
		s.Mini = m
		s.URL = "redis://" + m.Addr()
		s.Client = redis.NewClient(&redis.Options{Addr: m.Addr()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Client.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis ping %s: %v", s.URL, err)
	}
	t.Cleanup(func() { s.cleanup() })
	return s
}

// cleanup deletes the test's keys from a shared server and closes the client.
func (s *Server) cleanup() {
	defer s.Client.Close()
	if s.Mini != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pat := range []string{s.Prefix + "*", "*" + s.Prefix + "*"} {
		iter := s.Client.Scan(ctx, 0, pat, 1000).Iterator()
		for iter.Next(ctx) {
			s.Client.Del(ctx, iter.Val())
		}
	}
	// asynq lists every queue in one set of the whole server: forget the
	// test's queues, or every later inspector walks them all.
	iter := s.Client.SScan(ctx, asynqQueues, 0, "*"+s.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		s.Client.SRem(ctx, asynqQueues, iter.Val())
	}
}

// scriptCall matches a redis.call in a Lua script: the command and its
// first argument.
var scriptCall = regexp.MustCompile(`redis\.call\(\s*['"](\w+)['"]\s*,?\s*([^,)]*)`)

// keyless are the commands a script may call without a key.
var keyless = map[string]bool{"TIME": true}

// asynqQueues is the set in which asynq records every queue's name.
const asynqQueues = "asynq:queues"

func safeName(n string) string {
	n = strings.NewReplacer("/", "-", " ", "-", "{", "", "}", "").Replace(n)
	if len(n) > 40 {
		n = n[:40]
	}
	return n
}

// CheckSlots makes the test fail unless every command, transaction and
// script that the server's client runs from now on keeps its keys in one
// Redis Cluster hash slot, and every script defined in the Go files of dir
// (the package under test: ".") has run at least once, so a new script
// without such a test fails too. It checks at the test's end.
func (s *Server) CheckSlots(t testing.TB, dir string) {
	t.Helper()
	srcs, err := redisconn.ScriptsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs {
		// A key built inside the script escapes the check of KEYS below.
		for _, m := range scriptCall.FindAllStringSubmatch(src, -1) {
			if !keyless[strings.ToUpper(m[1])] && !strings.HasPrefix(strings.TrimSpace(m[2]), "KEYS[") {
				t.Errorf("script calls %s on %q, not on one of its KEYS:\n%s", m[1], m[2], src)
			}
		}
	}
	h := &redisconn.SlotHook{}
	s.Client.AddHook(h)
	t.Cleanup(func() {
		for _, v := range h.Violations() {
			t.Errorf("not runnable on Redis Cluster: %s", v)
		}
		ran := h.Scripts()
		for _, src := range srcs {
			if ran[redisconn.ScriptSHA(src)] == 0 {
				t.Errorf("script never run by the test, its keys unchecked:\n%s", src)
			}
		}
	})
}

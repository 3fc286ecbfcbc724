package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/internal/proc"
	"github.com/seedbatch/seedbatch/internal/redisconn"
	"github.com/seedbatch/seedbatch/internal/redisproc"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/ratelimit"
)

// Kinds of Redis a run uses.
const (
	redisGiven    = "given"
	redisServer   = "redis-server"
	redisEmbedded = "miniredis"
)

// benchRedis is the Redis of a run and how to stop it.
type benchRedis struct {
	kind    string
	url     string
	version string
	client  redis.UniversalClient
	stop    func()
}

// openRedis connects to url, or starts a redis-server found on PATH (its
// files in dir), or, without one, the embedded miniredis.
func openRedis(ctx context.Context, url, dir string) (*benchRedis, error) {
	r := &benchRedis{kind: redisGiven, url: url, stop: func() {}}
	switch {
	case url != "":
	case hasRedisServer():
		if err := r.startServer(ctx, dir); err != nil {
			return nil, err
		}
	default:
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded Redis: %w", err)
		}
		mr.ClockTTL(true)
		r.kind, r.url, r.stop = redisEmbedded, "redis://"+mr.Addr(), mr.Close
	}
	client, err := redisconn.Settings{URL: r.url, PoolSize: 2 * enqueueGoroutines}.Client()
	if err != nil {
		r.stop()
		return nil, err
	}
	r.client = client
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.Close()
		return nil, fmt.Errorf("cannot reach Redis: %w", err)
	}
	r.version = "unknown"
	if info, err := r.info(ctx, "server"); err == nil && info["redis_version"] != "" {
		r.version = info["redis_version"]
	} else if r.kind == redisEmbedded {
		r.version = "miniredis"
	}
	return r, nil
}

// hasRedisServer reports whether a redis-server is on PATH.
func hasRedisServer() bool { return len(redisproc.Missing("redis-server")) == 0 }

// startServer starts redis-server on a free loopback port, without
// persistence, and waits until it answers.
func (r *benchRedis) startServer(ctx context.Context, dir string) error {
	srv, err := redisproc.Start(ctx, dir)
	if err != nil {
		return err
	}
	r.kind, r.url, r.stop = redisServer, srv.URL(), srv.Stop
	return nil
}

// Close closes the client and stops a Redis started for the run.
func (r *benchRedis) Close() {
	if r.client != nil {
		r.client.Close()
	}
	r.stop()
}

// describe says which Redis the run used, for the report.
func (r *benchRedis) describe() string {
	switch r.kind {
	case redisServer:
		return "redis-server " + r.version + ", started for this run on a loopback port without persistence"
	case redisEmbedded:
		return "the embedded miniredis (no redis-server on PATH): figures not comparable with a real server's"
	}
	return "Redis " + r.version + " given by --redis or REDIS_URL; its counters include any other client's commands"
}

// info returns the fields of one section of INFO.
func (r *benchRedis) info(ctx context.Context, section string) (map[string]string, error) {
	text, err := r.client.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO %s: %w", section, err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// traffic is a reading of Redis's counters.
type traffic struct {
	commands, bytes int64
	ok              bool
}

// traffic reads the commands processed and the network bytes in and out;
// ok is false when the server does not report them (miniredis).
func (r *benchRedis) traffic(ctx context.Context) traffic {
	f, err := r.info(ctx, "stats")
	if err != nil {
		return traffic{}
	}
	cmds, err1 := strconv.ParseInt(f["total_commands_processed"], 10, 64)
	in, err2 := strconv.ParseInt(f["total_net_input_bytes"], 10, 64)
	out, err3 := strconv.ParseInt(f["total_net_output_bytes"], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return traffic{}
	}
	return traffic{commands: cmds, bytes: in + out, ok: true}
}

// namespace is one scenario's share of Redis: a seedbatch key prefix (and
// its queues) and an API key, whose shared limits live under their own
// scope.
type namespace struct {
	prefix string
	apiKey string
}

// newNamespace returns a namespace no run has used, named after tag.
func newNamespace(tag string) namespace {
	return namespace{prefix: "sbbench-" + proc.RandomHex(4) + "-" + tag, apiKey: "bench-" + proc.RandomHex(16)}
}

// queues returns the asynq queue names of the namespace, extra included.
func (n namespace) queues(extra ...string) []string {
	return append(queue.NamesFor(n.prefix).All(), extra...)
}

// drop deletes every key of n: seedbatch's, the account's limits, and
// asynq's of its queues (and of the extra queues).
func (r *benchRedis) drop(ctx context.Context, n namespace, extra ...string) error {
	patterns := []string{n.prefix + ":*", ratelimit.KeyPattern(ratelimit.AccountPrefix, ratelimit.AccountScope(n.apiKey))}
	queues := n.queues(extra...)
	for _, q := range queues {
		patterns = append(patterns, "asynq:{"+q+"}:*")
	}
	var errs []error
	for _, p := range patterns {
		iter := r.client.Scan(ctx, 0, p, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 500 {
				errs = append(errs, r.client.Del(ctx, batch...).Err())
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			errs = append(errs, r.client.Del(ctx, batch...).Err())
		}
		errs = append(errs, iter.Err())
	}
	args := make([]any, len(queues))
	for i, q := range queues {
		args[i] = q
	}
	errs = append(errs, r.client.SRem(ctx, "asynq:queues", args...).Err())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete keys of %s: %w", n.prefix, err)
	}
	return nil
}

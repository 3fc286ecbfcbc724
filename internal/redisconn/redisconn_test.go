package redisconn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func TestSlot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3}, // CRC-16/XMODEM's check value
		{"foo", 12182},
		{"bar", 5061},
		{"{foo}:anything", 12182},
		{"a:{foo}:b", 12182},
		{"{}foo", Slot("{}foo")},             // an empty tag hashes the whole key
		{"x{foo}{bar}", 12182},               // the first tag counts
		{"{foo", int(crc16("{foo") % Slots)}, // no closing brace: the whole key
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	if Slot("{}foo") == Slot("foo") {
		t.Errorf("an empty hash tag must not be used")
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		s       Settings
		mode    string
		client  any
		connOpt any
		err     string
	}{
		{"none", Settings{}, "", nil, nil, "no Redis configured"},
		{"single", Settings{URL: "redis://:pw@127.0.0.1:6379/2"}, ModeSingle, &redis.Client{}, asynq.RedisClientOpt{}, ""},
		{"bad url", Settings{URL: "redis://:secret@host:notaport/x/y"}, ModeSingle, nil, nil, "URL redis://***@host:notaport/x/y: not a valid Redis URL"},
		{"sentinel", Settings{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:26379"}}, ModeSentinel, &redis.Client{}, asynq.RedisFailoverClientOpt{}, ""},
		{"sentinel without master", Settings{SentinelAddrs: []string{"127.0.0.1:26379"}}, ModeSentinel, nil, nil, "MasterName: must be set"},
		{"master without sentinels", Settings{URL: "redis://x:1", MasterName: "m"}, ModeSingle, nil, nil, "SentinelAddrs: must be set"},
		{"cluster", Settings{ClusterAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"}}, ModeCluster, &redis.ClusterClient{}, asynq.RedisClusterClientOpt{}, ""},
		{"both", Settings{MasterName: "m", SentinelAddrs: []string{"a:1"}, ClusterAddrs: []string{"b:2"}}, ModeSentinel, nil, nil, "not both"},
		{"bad address", Settings{ClusterAddrs: []string{"127.0.0.1"}}, ModeCluster, nil, nil, `ClusterAddrs: "127.0.0.1": want host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if m := tc.s.Mode(); m != tc.mode {
				t.Errorf("Mode = %q, want %q", m, tc.mode)
			}
			c, err := tc.s.Client()
			opt, oerr := tc.s.ConnOpt()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || oerr == nil {
					t.Fatalf("Client: %v, ConnOpt: %v; want an error with %q", err, oerr, tc.err)
				}
				return
			}
			if err != nil || oerr != nil {
				t.Fatalf("Client: %v, ConnOpt: %v", err, oerr)
			}
			defer c.Close()
			if got, want := typeName(c), typeName(tc.client); got != want {
				t.Errorf("client %s, want %s", got, want)
			}
			if got, want := typeName(opt), typeName(tc.connOpt); got != want {
				t.Errorf("asynq option %s, want %s", got, want)
			}
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestSlotHook(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	h := &SlotHook{}
	c.AddHook(h)
	ctx := t.Context()
	script := redis.NewScript(`return redis.call('GET', KEYS[1])`)
	// Allowed: one slot per command, script and transaction; a plain
	// pipeline's commands each on their own.
	c.Del(ctx, "{a}:1", "{a}:2")
	script.Run(ctx, c, []string{"{a}:1"})
	tx := c.TxPipeline()
	tx.Set(ctx, "x{b}", 1, 0)
	tx.Incr(ctx, "y{b}")
	tx.Exec(ctx)
	p := c.Pipeline()
	p.Set(ctx, "p", 1, 0)
	p.Set(ctx, "q", 1, 0)
	p.Exec(ctx)
	if v := h.Violations(); len(v) != 0 {
		t.Fatalf("violations: %q", v)
	}
	if h.Scripts()[ScriptSHA(`return redis.call('GET', KEYS[1])`)] == 0 {
		t.Errorf("script not recorded: %v", h.Scripts())
	}
	// Refused by a Cluster: each of these.
	c.Del(ctx, "p", "q")
	script.Run(ctx, c, []string{"p", "q"})
	tx = c.TxPipeline()
	tx.Set(ctx, "p", 1, 0)
	tx.Set(ctx, "q", 1, 0)
	tx.Exec(ctx)
	c.Scan(ctx, 0, "*", 10)
	if v := h.Violations(); len(v) != 4 {
		t.Fatalf("%d violations, want 4: %q", len(v), v)
	}
}

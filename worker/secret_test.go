package worker_test

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/internal/syncbuf"
	"github.com/seedbatch/seedbatch/metrics"
	"github.com/seedbatch/seedbatch/redact"
	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

// TestNoSecretIsStored runs a callback-mode batch against a provider that
// echoes the API key and the callback URL in its error messages, then
// searches every stored string (job records, asynq's tasks and their last
// errors), every log line and the metrics for the key, the callback secret
// and the rows' callback tokens.
func TestNoSecretIsStored(t *testing.T) {
	t.Parallel()
	const key = "sk-canary-4f1d9e2b77"
	logs := &syncbuf.Buffer{}
	h := newHarnessWith(t, func(o *options) {
		o.apiKey, o.sim.APIKey = key, key
		o.callback = true
		o.worker.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.worker.LogLevel = asynq.DebugLevel
		o.worker.Redactor = redact.New(key, "test-secret")
	})
	plan := h.enqueue("id,prompt\n" +
		"create,a scene whose create echoes secrets [sim:echo-create]\n" +
		"status,a scene whose status echoes secrets [sim:echo-status]\n" +
		"fine,a scene with nothing odd\n")
	h.start()
	h.waitFor(plan.ID, 60*time.Second, allTerminal(3))
	jobs := h.jobs(plan.ID, 3)
	if jobs[0].State != tasks.StateFailed || !strings.Contains(jobs[0].FailMsg, redact.Mask) {
		t.Errorf("the echoing create: %s %q; want failed with the echo masked", jobs[0].State, jobs[0].FailMsg)
	}

	cb := worker.CallbackConfig{PublicURL: h.receiver, Secret: []byte("test-secret")}
	secrets := []string{key, "test-secret"}
	for row := range 3 {
		secrets = append(secrets, path.Base(cb.URL(plan.ID, row, 0)))
	}

	var stored strings.Builder
	ctx := t.Context()
	iter := h.rs.Client.Scan(ctx, 0, "*"+h.rs.Prefix+"*", 1000).Iterator()
	keys := 0
	for iter.Next(ctx) {
		keys++
		k := iter.Val()
		typ, err := h.rs.Client.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = h.rs.Client.Get(ctx, k).Result()
		case "hash":
			v, err = h.rs.Client.HGetAll(ctx, k).Result()
		case "list":
			v, err = h.rs.Client.LRange(ctx, k, 0, -1).Result()
		case "set":
			v, err = h.rs.Client.SMembers(ctx, k).Result()
		case "zset":
			v, err = h.rs.Client.ZRangeWithScores(ctx, k, 0, -1).Result()
		}
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&stored, "%s %v\n", k, v)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if keys < 10 {
		t.Fatalf("only %d keys found: the scan missed the records", keys)
	}
	rec := metrics.NewRecorder(h.rs.Client, h.rs.Prefix)
	insp := asynq.NewInspectorFromRedisClient(h.rs.Client)
	defer insp.Close()
	rw := httptest.NewRecorder()
	metrics.Handler(metrics.NewCollector(rec, h.store, h.lim, insp, h.queues.All())).ServeHTTP(rw, httptest.NewRequest("GET", "/metrics", nil))

	for name, text := range map[string]string{"Redis": stored.String(), "logs": logs.String(), "metrics": rw.Body.String()} {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("%s hold the secret %q: ...%s...", name, s, text[max(0, i-120):min(len(text), i+len(s)+40)])
			}
		}
	}
	// The echoes did reach the stores, masked: the test looked where they go.
	if !strings.Contains(stored.String(), redact.Mask) || !strings.Contains(logs.String(), redact.Mask) {
		t.Error("no masked echo was stored or logged: the provider's echoes were not exercised")
	}
}

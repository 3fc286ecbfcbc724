package queue

// This file writes asynq's storage format directly, so that many tasks can
// be enqueued in one Redis round trip: the task message encoding and the
// keys and enqueue script of asynq v0.26.0 (internal/proto/asynq.proto,
// internal/base, internal/rdb), without importing its internal packages.
// queue_test.go checks byte for byte that it writes what asynq's client
// writes.

import (
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"
)

// taskMessage is the part of asynq's task message (asynq v0.26.0,
// internal/proto/asynq.proto, TaskMessage) that a new pending task carries.
// Fields left at their zero value (headers, retried, error, last failure,
// deadline, unique key, group, retention, completion) are not written, as
// proto3 does not write them either.
type taskMessage struct {
	Type    string
	Payload []byte
	ID      string
	Queue   string
	Retry   int
	Timeout time.Duration
}

// TaskMessage field numbers.
const (
	fieldType    protowire.Number = 1
	fieldPayload protowire.Number = 2
	fieldID      protowire.Number = 3
	fieldQueue   protowire.Number = 4
	fieldRetry   protowire.Number = 5
	fieldTimeout protowire.Number = 8
)

// appendTaskMessage appends m encoded as asynq's client encodes it: the
// fields in number order, the timeout in whole seconds.
func appendTaskMessage(b []byte, m taskMessage) []byte {
	str := func(b []byte, n protowire.Number, s string) []byte {
		if s == "" {
			return b
		}
		b = protowire.AppendTag(b, n, protowire.BytesType)
		return protowire.AppendString(b, s)
	}
	num := func(b []byte, n protowire.Number, v int64) []byte {
		if v == 0 {
			return b
		}
		b = protowire.AppendTag(b, n, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v))
	}
	b = str(b, fieldType, m.Type)
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	b = str(b, fieldID, m.ID)
	b = str(b, fieldQueue, m.Queue)
	b = num(b, fieldRetry, int64(int32(m.Retry)))
	b = num(b, fieldTimeout, int64(m.Timeout/time.Second))
	return b
}

// asynq's keys (asynq v0.26.0, internal/base).
const asynqAllQueues = "asynq:queues" // SET of every queue name

func asynqPendingKey(queue string) string { return "asynq:{" + queue + "}:pending" }

func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// enqueueTasksScript adds pending tasks to one queue unless their ids
// exist, each exactly as asynq's own enqueue script (enqueueCmd in
// internal/rdb/rdb.go) adds one: the task hash with its message, state and
// pending time, and the id pushed on the pending list (a thousand ids per
// LPUSH, in order, which leaves the list as one LPUSH per task would).
//
//	KEYS[1] the queue's pending list, KEYS[2..] the task hashes
//	ARGV[1] the time in Unix nanoseconds, then per task hash KEYS[i] its id
//	(ARGV[2i-2]) and its encoded message (ARGV[2i-1])
//
// Returns the number of tasks added.
var enqueueTasksScript = redis.NewScript(`
local ids = {}
for i = 2, #KEYS do
  if redis.call("EXISTS", KEYS[i]) == 0 then
    redis.call("HSET", KEYS[i], "msg", ARGV[2*i-1], "state", "pending", "pending_since", ARGV[1])
    ids[#ids+1] = ARGV[2*i-2]
  end
end
for i = 1, #ids, 1000 do
  redis.call("LPUSH", KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
end
return #ids
`)

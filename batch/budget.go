package batch

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Budgets cap the video seconds seedbatch may create: one for everything
// in this namespace (the total), one per provider account and one per
// batch. All budget keys share one hash tag, so a reservation is one atomic
// step even on Redis Cluster:
//
//	<prefix>:{budget}:limits  hash: "total", "b:<batch>", "a:<account>" -> seconds;
//	                          "acct:b:<batch>" -> the batch's account
//	<prefix>:{budget}:spent   hash: "total", "b:<batch>", "a:<account>" -> seconds reserved
//	<prefix>:{budget}:held    set of "<batch>:<row>:<attempt>" holding a reservation

// Budget is what a budget allows and what has been reserved against it.
// A limit of 0 means no limit.
type Budget struct {
	TotalLimit, TotalSpent int
	BatchLimit, BatchSpent int
	// Account is the batch's account ("" for a batch recorded without
	// one); AccountLimit and AccountSpent are its budget.
	Account                    string
	AccountLimit, AccountSpent int
}

// Scopes a reservation can be refused by.
const (
	BudgetTotal   = "total"
	BudgetBatch   = "batch"
	BudgetAccount = "account"
)

// SetAccountBudget sets the budget of a provider account in video seconds:
// what every batch of the account may create together; 0 removes it.
func (s *Store) SetAccountBudget(ctx context.Context, account string, seconds int) error {
	if seconds < 0 {
		return fmt.Errorf("budget of account %s: %d seconds: must not be negative", account, seconds)
	}
	var err error
	if seconds == 0 {
		err = s.rdb.HDel(ctx, s.budgetKeys()[0], accountField(account)).Err()
	} else {
		err = s.rdb.HSet(ctx, s.budgetKeys()[0], accountField(account), seconds).Err()
	}
	if err != nil {
		return fmt.Errorf("set budget of account %s: %w", account, err)
	}
	return nil
}

// setBatchAccount records which account's budget a batch's reservations
// count against.
func (s *Store) setBatchAccount(ctx context.Context, batch, account string) error {
	if err := s.rdb.HSet(ctx, s.budgetKeys()[0], batchAccountField(batch), account).Err(); err != nil {
		return fmt.Errorf("set account of batch %s: %w", batch, err)
	}
	return nil
}

func accountField(account string) string { return "a:" + account }

func batchAccountField(batch string) string { return "acct:" + budgetField(batch) }

// SetBudget sets the budget of a batch, or the total when batch is empty,
// in video seconds; 0 removes it.
func (s *Store) SetBudget(ctx context.Context, batch string, seconds int) error {
	if seconds < 0 {
		return fmt.Errorf("budget: %d seconds: must not be negative", seconds)
	}
	field := budgetField(batch)
	var err error
	if seconds == 0 {
		err = s.rdb.HDel(ctx, s.budgetKeys()[0], field).Err()
	} else {
		err = s.rdb.HSet(ctx, s.budgetKeys()[0], field, seconds).Err()
	}
	if err != nil {
		return fmt.Errorf("set budget %s: %w", field, err)
	}
	return s.record(Record{Kind: RecordBudget, Batch: batch, Seconds: seconds})
}

// Budget reads the total budget and a batch's.
func (s *Store) Budget(ctx context.Context, batch string) (Budget, error) {
	k := s.budgetKeys()
	pipe := s.rdb.Pipeline()
	lim := pipe.HMGet(ctx, k[0], BudgetTotal, budgetField(batch), batchAccountField(batch))
	spent := pipe.HMGet(ctx, k[1], BudgetTotal, budgetField(batch))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Budget{}, fmt.Errorf("read budget: %w", err)
	}
	n := func(v any) int {
		str, _ := v.(string)
		i, _ := strconv.Atoi(str)
		return i
	}
	l, sp := lim.Val(), spent.Val()
	b := Budget{TotalLimit: n(l[0]), BatchLimit: n(l[1]), TotalSpent: n(sp[0]), BatchSpent: n(sp[1])}
	b.Account, _ = l[2].(string)
	if b.Account == "" {
		return b, nil
	}
	al, err := s.rdb.HGet(ctx, k[0], accountField(b.Account)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return b, fmt.Errorf("read budget of account %s: %w", b.Account, err)
	}
	as, err := s.rdb.HGet(ctx, k[1], accountField(b.Account)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return b, fmt.Errorf("read budget of account %s: %w", b.Account, err)
	}
	b.AccountLimit, b.AccountSpent = n(al), n(as)
	return b, nil
}

func budgetField(batch string) string {
	if batch == "" {
		return BudgetTotal
	}
	return "b:" + batch
}

// reserveScript reserves seconds for one row attempt unless that would
// pass a limit: the total, the budget of the batch's account (when the
// batch has one), the batch's. KEYS: limits, spent, held. ARGV: batch
// field, member, seconds, force ("1" skips the limits, for replay).
var reserveScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1 then return 'ok' end
local s = tonumber(ARGV[3])
local acct = redis.call('HGET', KEYS[1], 'acct:' .. ARGV[1])
if ARGV[4] ~= '1' then
  local tl = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
  if tl > 0 and tonumber(redis.call('HGET', KEYS[2], 'total') or '0') + s > tl then return 'total' end
  if acct then
    local al = tonumber(redis.call('HGET', KEYS[1], 'a:' .. acct) or '0')
    if al > 0 and tonumber(redis.call('HGET', KEYS[2], 'a:' .. acct) or '0') + s > al then return 'account' end
  end
  local bl = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if bl > 0 and tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') + s > bl then return 'batch' end
end
redis.call('HINCRBY', KEYS[2], 'total', s)
if acct then redis.call('HINCRBY', KEYS[2], 'a:' .. acct, s) end
redis.call('HINCRBY', KEYS[2], ARGV[1], s)
redis.call('SADD', KEYS[3], ARGV[2])
return 'ok'
`)

// Reserve takes seconds from the total and the batch budget for one row
// attempt, atomically, before its create is sent; several workers racing
// cannot pass a budget by even one video. Reserving the same attempt again
// is a no-op that succeeds. When refused, scope says which budget is spent.
func (s *Store) Reserve(ctx context.Context, batch string, row, attempt, seconds int) (ok bool, scope string, err error) {
	return s.reserve(ctx, batch, row, attempt, seconds, false)
}

func (s *Store) reserve(ctx context.Context, batch string, row, attempt, seconds int, force bool) (bool, string, error) {
	f := "0"
	if force {
		f = "1"
	}
	res, err := reserveScript.Run(ctx, s.rdb, s.budgetKeys(), budgetField(batch), member(batch, row, attempt), seconds, f).Text()
	if err != nil {
		return false, "", fmt.Errorf("reserve budget %s:%d: %w", batch, row, err)
	}
	if res != "ok" {
		return false, res, nil
	}
	return true, "", s.record(Record{Kind: RecordReserve, Batch: batch, Row: row, Attempt: attempt, Seconds: seconds})
}

var refundScript = redis.NewScript(`
if redis.call('SREM', KEYS[3], ARGV[2]) == 0 then return 0 end
local s = tonumber(ARGV[3])
redis.call('HINCRBY', KEYS[2], 'total', -s)
local acct = redis.call('HGET', KEYS[1], 'acct:' .. ARGV[1])
if acct then redis.call('HINCRBY', KEYS[2], 'a:' .. acct, -s) end
redis.call('HINCRBY', KEYS[2], ARGV[1], -s)
return 1
`)

// Refund returns a reservation whose create certainly created nothing.
func (s *Store) Refund(ctx context.Context, batch string, row, attempt, seconds int) error {
	n, err := refundScript.Run(ctx, s.rdb, s.budgetKeys(), budgetField(batch), member(batch, row, attempt), seconds).Int()
	if err != nil {
		return fmt.Errorf("refund budget %s:%d: %w", batch, row, err)
	}
	if n == 0 {
		return nil
	}
	return s.record(Record{Kind: RecordRefund, Batch: batch, Row: row, Attempt: attempt, Seconds: seconds})
}

func member(batch string, row, attempt int) string {
	return batch + ":" + strconv.Itoa(row) + ":" + strconv.Itoa(attempt)
}

package main

import (
	"context"
	"errors"
	"strings"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/queue"
)

// namespace is one key prefix's records and queues on the stack's Redis.
type namespace struct {
	prefix string
	store  *batch.Store
	queues queue.Names
}

// simulated returns the namespace of the batches run with the built-in
// simulator on this Redis (see config.Redis.SimulatedPrefix), or nil when
// the stack's prefix is itself that namespace.
func (s *stack) simulated() *namespace {
	p := s.cfg.Redis.SimulatedPrefix()
	if p == "" {
		return nil
	}
	if s.sim != nil {
		return s.sim
	}
	st := batch.NewStore(s.rdb, p)
	st.SetRedactor(redactor(s.cfg).String)
	st.SetRetention(s.cfg.Retention)
	st.SetLogger(s.log)
	s.closers = append(s.closers, st.WaitRetired)
	s.sim = &namespace{prefix: p, store: st, queues: queue.NamesFor(p)}
	return s.sim
}

// find looks batch id up among the real batches, then among the simulated
// ones, and returns the store that has it and whether it is simulated. A
// batch found in neither is a usage error that says where it was looked
// for, and a malformed id one that says what an id looks like.
func (s *stack) find(ctx context.Context, id string) (*batch.Store, bool, error) {
	_, err := s.store.Meta(ctx, id)
	if err == nil {
		return s.store, false, nil
	}
	if !errors.Is(err, batch.ErrNotFound) {
		return nil, false, fail(exitUnreachable, "%v", err)
	}
	if sim := s.simulated(); sim != nil {
		_, err := sim.store.Meta(ctx, id)
		if err == nil {
			return sim.store, true, nil
		}
		if !errors.Is(err, batch.ErrNotFound) {
			return nil, false, fail(exitUnreachable, "%v", err)
		}
	}
	return nil, false, s.notFound(id)
}

// notFound says that batch id is not in this Redis, and where to look.
func (s *stack) notFound(id string) error {
	if err := batch.ValidateBatchID(id); err != nil {
		return fail(exitUsage, "%q is not a batch id: batch ids are 1-64 letters, digits, '.', '_' or '-' "+
			"(seedbatch status lists the batches)", id)
	}
	hint := ""
	if strings.HasSuffix(id, ".csv") {
		hint = "; it takes a batch id, which seedbatch run and enqueue print, not a file name"
	}
	return fail(exitUsage, "no batch %s in the Redis at %s (key prefix %s): seedbatch status lists the batches there "+
		"(a finished batch's records are deleted after retention, %s)%s", id, s.cfg.Redis.Describe(), s.cfg.Redis.Prefix,
		retentionText(s.cfg), hint)
}

// notReal says, for a command that works only on real batches, that batch
// id is not one: a simulated batch of that name, or none at all.
func (s *stack) notReal(ctx context.Context, id string) error {
	if sim := s.simulated(); sim != nil {
		if _, err := sim.store.Meta(ctx, id); err == nil {
			return fail(exitUsage, "batch %s is a simulated batch (run without an API key), kept apart under the key prefix %s: "+
				"add --set redis.prefix=%s to act on it", id, sim.prefix, sim.prefix)
		}
	}
	return s.notFound(id)
}

// retentionText says how long finished batches are kept, as the
// configuration would write it (720h, not 720h0m0s).
func retentionText(cfg config.Config) string {
	if cfg.Retention == 0 {
		return "never here"
	}
	d := cfg.Retention.String()
	if strings.HasSuffix(d, "m0s") {
		d = strings.TrimSuffix(d, "0s")
	}
	return strings.TrimSuffix(d, "0m")
}

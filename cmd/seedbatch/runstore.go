package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/rundir"
)

// runStore is where a run keeps a batch's records: the embedded Redis,
// whose state the run's journal keeps, or a Redis server under a key
// prefix; and whether the provider was the built-in simulator. The batch's
// directory records it (rundir.Store), so that a later run on another store
// never replays a journal over the videos a run on another store wrote.
type runStore struct {
	// Redis is the server's URL, its password masked; empty for the
	// embedded Redis.
	Redis  string `json:"redis,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	// Simulated says the provider was the built-in simulator: nothing was
	// billed, the videos are placeholders.
	Simulated bool `json:"simulated,omitempty"`
}

// storeOf is the store of a run with cfg (its prefix already the simulated
// one for a simulated run on a shared Redis).
func storeOf(cfg config.Config, simulated bool) runStore {
	if !cfg.Redis.Configured() {
		return runStore{Simulated: simulated}
	}
	return runStore{Redis: cfg.Redis.Describe(), Prefix: cfg.Redis.Prefix, Simulated: simulated}
}

func (r runStore) String() string {
	s := "an embedded Redis"
	if r.Redis != "" {
		s = fmt.Sprintf("the Redis at %s (key prefix %s)", r.Redis, r.Prefix)
	}
	if r.Simulated {
		return s + " with the simulator"
	}
	return s + " with an API key"
}

// how says how to run a batch on r again.
func (r runStore) how() string {
	var ways []string
	if r.Redis == "" {
		ways = append(ways, "without --redis or REDIS_URL")
	} else {
		ways = append(ways, "with --redis "+r.Redis)
		prefix := r.Prefix
		if r.Simulated {
			prefix = strings.TrimSuffix(prefix, config.SimulatedSuffix) // run adds it again
		}
		if prefix != config.Default().Redis.Prefix {
			ways = append(ways, "--set redis.prefix="+prefix)
		}
	}
	if r.Simulated {
		ways = append(ways, "without SEEDANCE_API_KEY")
	} else {
		ways = append(ways, "with the same SEEDANCE_API_KEY")
	}
	return strings.Join(ways, " and ")
}

// checkStore compares the store a batch's directory records with want, the
// store of this run. It returns nil when they are the same, or when the
// directory records none (a new batch). When they differ, the earlier run's
// state (journal, results) describes videos this run may write over: it
// returns that store, whose state the run retires once it has enqueued the
// batch, if the earlier run was simulated (nothing billed) or
// allowDuplicates is set; otherwise it refuses, since starting the batch
// over creates and bills every row again.
func checkStore(rd *rundir.Dir, id string, want runStore, allowDuplicates bool) (*runStore, error) {
	raw, err := rd.Store()
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	var got runStore
	switch {
	case raw != "":
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			return nil, fail(exitUsage, "%s does not say which store keeps batch %s (%v): delete it to run the batch anew", rd.Path(rundir.Store), id, err)
		}
	case exists(rd.Path(rundir.Journal)):
		// A journal an earlier version wrote, of a run on an embedded Redis,
		// with or without a key: resumed as before; another store counts as
		// a switch away from a run with a key.
		if want.Redis == "" {
			return nil, nil
		}
	default:
		return nil, nil
	}
	if got == want {
		return nil, nil
	}
	if !got.Simulated && !allowDuplicates {
		return nil, fail(exitUsage, "batch %s ran before on %s, which keeps its records; this run uses %s, which does not know them, "+
			"and would start the batch over: every row created, and billed, again, and its videos written over.\n"+
			"To resume it, run it again %s; to start it over on this store anyway, add --allow-duplicates", id, got, want, got.how())
	}
	return &got, nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

package drill

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/seedbatch/seedbatch/internal/proc"
	"github.com/seedbatch/seedbatch/queue"
)

// Loss is one drill of a Redis that lost data under running workers.
type Loss struct {
	// Kind names it.
	Kind string
	// Rows is the batch's size; CreatedBefore the creates of its rows
	// when Redis went down, CreatedAfter those since.
	Rows, CreatedBefore, CreatedAfter int
	// Duplicates is the number of the batch's rows created again after
	// the loss: paid twice.
	Duplicates int
	// Paused is why submitting is paused afterwards ("" when it is not).
	Paused string
	// Recover says whether seedbatch recover ran, and how it went.
	Recover string
	// Err is why the drill could not run to its end.
	Err string
}

// Failed reports whether the loss cost money twice (a row created again)
// or the drill could not run.
func (l Loss) Failed() bool { return l.Duplicates > 0 || l.Err != "" }

// lossWatch is how long the drill watches for creates after a loss.
func (c Config) lossWatch() time.Duration {
	if c.Short {
		return 6 * time.Second
	}
	return 15 * time.Second
}

// loseData starts a batch on a fresh Redis, then, once some of its rows
// are created, restarts Redis empty (stale false) or from a snapshot taken
// before the last creates (stale true), and watches what the workers do.
func (d *drill) loseData(id string, stale bool) Loss {
	c := d.c
	l := Loss{Kind: "Redis restarted empty (no persistence)", Rows: d.cfg.maxInFlight() + 200}
	if stale {
		l.Kind = "failover to a stale copy (a snapshot older than the last creates)"
	}
	c.procMu.Lock()
	defer c.procMu.Unlock()
	fail := func(err error) Loss { l.Err = err.Error(); return l }
	// A fresh start: the earlier phases' data is checked already.
	c.stopWorkers(syscall.SIGTERM)
	if err := c.restartRedis(0, "", nil, func() { emptyRedisDir(c.redisDir) }); err != nil {
		return fail(err)
	}
	if err := c.startWorkers(); err != nil {
		return fail(err)
	}
	if err := c.enqueue(id, l.Rows, queue.RequestAsync); err != nil {
		return fail(err)
	}
	if !d.waitCreated(id, 50) {
		return fail(fmt.Errorf("fewer than 50 rows of %s were created within %v", id, startTimeout))
	}
	dir, args := "", []string(nil)
	if stale {
		snap := filepath.Join(c.dir, "stale")
		if err := d.snapshot(snap); err != nil {
			return fail(err)
		}
		if !d.waitCreated(id, c.created(id)+50) {
			return fail(fmt.Errorf("no 50 more rows of %s were created after the snapshot", id))
		}
		dir, args = snap, []string{"--dbfilename", "dump.rdb"}
	}
	var before map[string]int
	err := c.restartRedis(time.Second, dir, args, func() {
		before = c.sim.Stats().CreatedPerPrompt
		l.CreatedBefore = c.created(id)
		if !stale {
			emptyRedisDir(c.redisDir)
		}
	})
	if err != nil {
		return fail(err)
	}
	sleepUntil(d.ctx, time.Now().Add(d.cfg.lossWatch()))
	l.CreatedAfter = c.created(id) - l.CreatedBefore
	for p, n := range c.sim.Stats().CreatedPerPrompt {
		if strings.HasPrefix(p, promptPrefix(id)) && n > 1 && n > before[p] {
			l.Duplicates++
		}
	}
	if lim, err := c.limiter(); err == nil {
		if reason, ok, err := lim.Paused(d.ctx); err == nil && ok {
			l.Paused = reason
		}
	}
	l.Recover = d.recoverHook(id)
	return l
}

// waitCreated waits until n rows of batch id were created.
func (d *drill) waitCreated(id string, n int) bool {
	deadline := time.Now().Add(startTimeout)
	for d.c.created(id) < n {
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			return false
		}
		sleepUntil(d.ctx, time.Now().Add(100*time.Millisecond))
	}
	return true
}

// snapshot saves Redis's data (SAVE) and copies the RDB file into dir.
func (d *drill) snapshot(dir string) error {
	if err := d.c.rdb.Save(d.ctx).Err(); err != nil {
		return fmt.Errorf("redis SAVE: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	src, err := os.Open(filepath.Join(d.c.redisDir, "dump.rdb"))
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer src.Close()
	dst, err := os.Create(filepath.Join(dir, "dump.rdb"))
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("snapshot: %w", err)
	}
	return dst.Close()
}

// recoverHook runs seedbatch recover when the binary has it.
func (d *drill) recoverHook(id string) string {
	ch, err := proc.Start(d.ctx, d.cfg.Executable, d.c.dir, d.c.env(), "", "help", "recover")
	if err != nil {
		return "not run: " + err.Error()
	}
	<-ch.Done()
	if ch.ExitErr() != nil {
		return "not run: this binary has no seedbatch recover"
	}
	ch, err = proc.Start(d.ctx, d.cfg.Executable, d.c.dir, d.c.env(), "", "recover", "--batch", id, filepath.Join(d.c.dir, id+".csv"))
	if err != nil {
		return "not run: " + err.Error()
	}
	<-ch.Done()
	if ch.ExitErr() != nil {
		// The drill's batches are worked by enqueue and worker, which keep
		// no create journal: recover says what it cannot rebuild.
		out := strings.ReplaceAll(ch.Out.String(), d.c.dir+string(filepath.Separator), "")
		status := "did not run"
		if ps := ch.Cmd.ProcessState; ps != nil {
			status = ps.String()
		}
		return "refused (" + status + "): " + oneLine(out)
	}
	return "ran: " + oneLine(ch.Out.String())
}

// oneLine returns s on one line, at most 300 characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

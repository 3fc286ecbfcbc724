package drill

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seedbatch/seedbatch/internal/crashpoint"
	"github.com/seedbatch/seedbatch/internal/proc"
	"github.com/seedbatch/seedbatch/queue"
)

// crashPointNames are the named crash points a worker may be armed with,
// by SEEDBATCH_CRASHPOINT=NAME[@N]: the process kills itself (SIGKILL) the
// Nth time it reaches the point.
var crashPointNames = []string{"after-submitting", "after-create-sent", "after-create-answer", "mid-download", "mid-journal-write"}

// Crash point drill sizes.
const (
	crashRows  = 40               // rows of each crash point's batch
	crashAfter = 5                // the armed worker dies the 5th time it reaches its point
	crashWait  = 45 * time.Second // how long the armed workers get to reach their points
)

// CrashPoint is the drill of one named crash point.
type CrashPoint struct {
	// Name is the crash point.
	Name string
	// Hit reports whether the armed worker killed itself there.
	Hit bool
	// Verdict compares the batch run under it with the ledger.
	Verdict Verdict
}

// CrashPoints is the crash point step.
type CrashPoints struct {
	// Skipped says why it did not run; "" when it did.
	Skipped string
	// Points are the crash points drilled.
	Points []CrashPoint
}

// crashPoints enqueues a batch per named crash point, runs one worker
// armed with each point (and no other worker) until they have all died or
// crashWait passed, then lets the usual workers finish every batch, and
// checks each against the ledger. A binary without crash points runs the
// batches to their end without dying: every point shows as not hit.
func (d *drill) crashPoints() CrashPoints {
	c := d.c
	c.procMu.Lock()
	defer c.procMu.Unlock()
	fail := func(err error) CrashPoints { return CrashPoints{Skipped: "failed: " + oneLine(err.Error())} }
	c.stopWorkers(syscall.SIGTERM)
	var armed []*slot
	for i, name := range crashPointNames {
		if err := c.enqueue(crashBatch(name), crashRows, queue.RequestAsync); err != nil {
			return fail(err)
		}
		port, err := proc.FreePort()
		if err != nil {
			return fail(err)
		}
		s := &slot{n: 100 + i, cbAddr: "127.0.0.1:" + strconv.Itoa(port)}
		if err := c.startWorker(s, "SEEDBATCH_CRASHPOINT="+name+"@"+strconv.Itoa(crashAfter)); err != nil {
			return fail(err)
		}
		armed = append(armed, s)
	}
	wctx, cancel := context.WithTimeout(d.ctx, crashWait)
	for _, s := range armed {
		select {
		case <-s.child.Done():
		case <-wctx.Done():
		}
	}
	cancel()
	out := CrashPoints{}
	for i, s := range armed {
		s.child.Signal(syscall.SIGTERM)
		<-s.child.Done()
		ws, ok := s.child.Cmd.ProcessState.Sys().(syscall.WaitStatus)
		out.Points = append(out.Points, CrashPoint{Name: crashPointNames[i], Hit: ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL})
	}
	if err := c.startWorkers(); err != nil {
		return fail(err)
	}
	for i := range out.Points {
		p := &out.Points[i]
		id := crashBatch(p.Name)
		if !d.waitBatch(id, crashRows, finishTimeout) {
			p.Verdict.Lost = append(p.Verdict.Lost, "the batch did not end within "+finishTimeout.String())
			continue
		}
		if v, err := d.checkBatch(id, crashRows); err != nil {
			p.Verdict.Lost = append(p.Verdict.Lost, "cannot check: "+err.Error())
		} else {
			p.Verdict = v
		}
	}
	return out
}

// crashBatch is the batch id of a crash point's drill.
func crashBatch(name string) string { return "drill-cp-" + name }

// waitBatch waits until rows rows of batch id are terminal, at most limit.
func (d *drill) waitBatch(id string, rows int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for d.c.terminal(id) < rows {
		if time.Now().After(deadline) || d.ctx.Err() != nil {
			return false
		}
		sleepUntil(d.ctx, time.Now().Add(time.Second))
	}
	return true
}

// checkBatch checks one batch's rows and its leases against the ledger.
func (d *drill) checkBatch(id string, rows int) (Verdict, error) {
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	recs, err := d.c.rows(ctx, id)
	if err != nil {
		return Verdict{}, err
	}
	holders, err := d.c.leases(ctx)
	if err != nil {
		return Verdict{}, err
	}
	var mine []string
	for _, h := range holders {
		if strings.HasPrefix(h, id+":") {
			mine = append(mine, h)
		}
	}
	return Check(rows, recs, d.c.sim.Stats().CreatedPerPrompt, mine), nil
}

// String sums the step up for the report.
func (cp CrashPoints) String() string {
	if cp.Skipped != "" {
		return cp.Skipped
	}
	var parts []string
	for _, p := range cp.Points {
		hit := "not hit (this binary may not have it)"
		switch {
		case p.Hit:
			hit = "hit"
		case p.Name == crashpoint.MidJournalWrite:
			hit = "not hit (only `seedbatch run` keeps a journal; TestCrashPoints crashes it there)"
		}
		parts = append(parts, fmt.Sprintf("%s: %s, %d lost, %d created twice, %d leases leaked, %d ambiguous",
			p.Name, hit, len(p.Verdict.Lost), len(p.Verdict.Duplicates), len(p.Verdict.Leases), p.Verdict.States["ambiguous"]))
	}
	return strings.Join(parts, "; ")
}

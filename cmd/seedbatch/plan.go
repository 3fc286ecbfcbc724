package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/config"
	"github.com/seedbatch/seedbatch/queue"
	"github.com/seedbatch/seedbatch/tasks"
)

// planFlags are the flags of commands that read a CSV file.
type planFlags struct {
	batchID         string
	strict          bool
	dryRun          bool
	allowDuplicates bool
	requestType     string
	budget          int
	account         string
}

func (p *planFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.batchID, "batch", "", "name the batch `ID` (default: the file's name and a hash of its content)")
	fs.BoolVar(&p.strict, "strict", false, "refuse the whole file if any row is bad or duplicated")
	fs.BoolVar(&p.dryRun, "dry-run", false, "print rows, video seconds and cost, and submit nothing")
	fs.BoolVar(&p.allowDuplicates, "allow-duplicates", false, "submit rows identical to an earlier row too, a renamed copy of a file that ran, "+
		"or a batch that ran with a key on another store (each one is billed)")
	fs.StringVar(&p.requestType, "request-type", "", "follow tasks by polling or by the provider's callbacks, `async|callback` (default: callback.request_type)")
	fs.IntVar(&p.budget, "budget", -1, "cap this batch at `SECONDS` of video; 0 = no cap (default: budget.batch_seconds)")
	fs.StringVar(&p.account, "account", "", "create and read the batch's tasks with the provider account `NAME` of the accounts list (default: the first)")
}

// enqueuePlan records the batch with its request type and budgets, then
// enqueues its rows.
func (m *Main) enqueuePlan(ctx context.Context, s *stack, q batch.Submitter, plan *batch.Plan, pf planFlags) (batch.EnqueueResult, error) {
	bopts, err := pf.settings(s.cfg)
	if err != nil {
		return batch.EnqueueResult{}, err
	}
	res, err := s.store.EnqueueBatch(ctx, q, plan, pf.options(s.cfg), bopts)
	if errors.Is(err, batch.ErrBatchMismatch) || errors.Is(err, os.ErrNotExist) {
		return res, fail(exitUsage, "%v", err)
	}
	if err != nil {
		return res, fail(exitUnreachable, "%v", err)
	}
	return res, nil
}

// options are the reading options from the flags and config.
func (p *planFlags) options(cfg config.Config) batch.PlanOptions {
	return batch.PlanOptions{
		Reader:          tasks.ReaderOptions{Defaults: cfg.Defaults},
		BatchID:         p.batchID,
		AllowDuplicates: p.allowDuplicates,
	}
}

// batchOptions are the batch-wide settings from the flags and config.
func (p *planFlags) settings(cfg config.Config) (batch.Settings, error) {
	rt := cmp.Or(p.requestType, cfg.Callback.RequestType)
	if rt != queue.RequestAsync && rt != queue.RequestCallback {
		return batch.Settings{}, fail(exitUsage, "--request-type %q: want async (poll the provider) or callback", rt)
	}
	acct, err := cfg.AccountNamed(p.account)
	if err != nil {
		return batch.Settings{}, fail(exitUsage, "--account: %v", err)
	}
	o := batch.Settings{RequestType: rt, BudgetSeconds: -1, TotalBudgetSeconds: cfg.Budget.TotalSeconds,
		Account: acct.Name, AccountBudgetSeconds: acct.BudgetSeconds}
	switch {
	case p.budget >= 0:
		o.BudgetSeconds = p.budget
	case cfg.Budget.BatchSeconds > 0:
		o.BudgetSeconds = cfg.Budget.BatchSeconds
	}
	return o, nil
}

// maxPrintedErrors bounds the row errors printed for one file.
const maxPrintedErrors = 20

// plan reads the file once, reports its bad rows on w, and refuses it when
// it cannot be used (or, with --strict, when any row is bad).
func (m *Main) plan(cfg config.Config, path string, pf planFlags) (*batch.Plan, error) {
	if _, err := pf.settings(cfg); err != nil {
		return nil, err
	}
	if pf.batchID != "" {
		if err := batch.ValidateBatchID(pf.batchID); err != nil {
			return nil, fail(exitUsage, "--batch %q: a batch id is 1-64 letters, digits, '.', '_' or '-', "+
				"starting with a letter or digit", pf.batchID)
		}
	}
	if err := checkInput(path); err != nil {
		return nil, err
	}
	plan, err := batch.PlanFile(path, pf.options(cfg))
	if err != nil {
		var fe *tasks.FileError
		if errors.As(err, &fe) {
			return nil, fail(exitUsage, "%s: refused, nothing enqueued: %v", path, err)
		}
		return nil, inputProblem(path, err)
	}
	w := m.Stderr
	for i, e := range plan.Errors {
		if i == maxPrintedErrors {
			break
		}
		fmt.Fprintf(w, "%s: %v\n", path, e)
	}
	if plan.Invalid > maxPrintedErrors {
		fmt.Fprintf(w, "%s: ... and %d more bad rows (all are listed in the results)\n", path, plan.Invalid-maxPrintedErrors)
	}
	for i, d := range plan.Duplicates {
		if i == maxPrintedErrors {
			fmt.Fprintf(w, "%s: ... and %d more duplicate rows\n", path, len(plan.Duplicates)-i)
			break
		}
		verdict := "not submitted; --allow-duplicates submits it"
		if pf.allowDuplicates {
			verdict = "submitted (--allow-duplicates)"
		}
		fmt.Fprintf(w, "%s: line %d: identical to line %d: %s\n", path, d.Line, d.FirstLine, verdict)
	}
	if plan.Skipped > 0 {
		fmt.Fprintf(w, "%s: %d rows already ran (their state is not rejected) and are skipped; the %d others are read again\n",
			path, plan.Skipped, plan.Rows)
	}
	if pf.strict && (plan.Invalid > 0 || (len(plan.Duplicates) > 0 && !pf.allowDuplicates)) {
		return nil, fail(exitUsage, "%s: refused by --strict: %d bad and %d duplicate rows; nothing enqueued", path, plan.Invalid, len(plan.Duplicates))
	}
	return plan, nil
}

// printPlan prints what a batch would cost. With prices configured, the
// seconds of a resolution without a price are named, never silently left
// out of the total.
func printPlan(w io.Writer, plan *batch.Plan, prices map[string]float64) {
	fmt.Fprintf(w, "batch %s: %d rows, %d to submit, %d bad, %d duplicate\n",
		plan.ID, plan.Rows, plan.Valid, plan.Invalid, len(plan.Duplicates))
	res := plan.Resolutions()
	sort.Strings(res)
	total := 0.0
	priced := len(prices) > 0
	var unpriced []string
	for _, r := range res {
		line := fmt.Sprintf("  %-5s %6d video seconds", r, plan.Seconds[r])
		if p, ok := prices[r]; ok {
			cost := p * float64(plan.Seconds[r])
			total += cost
			line += fmt.Sprintf("  %10.2f", cost)
		} else if priced {
			line += "  (no price: set prices." + r + ")"
			unpriced = append(unpriced, fmt.Sprintf("%d seconds at %s", plan.Seconds[r], r))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  total %6d video seconds", plan.TotalSeconds())
	if priced {
		fmt.Fprintf(w, "  %10.2f estimated", total)
		if len(unpriced) > 0 {
			fmt.Fprintf(w, ", not counting the %s, which have no price", strings.Join(unpriced, " and the "))
		}
	}
	fmt.Fprintln(w)
}

// checkInput makes sure path is a file this process can read, and says in
// plain words what to do when it is not.
func checkInput(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return inputProblem(path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return inputProblem(path, err)
	}
	if info.IsDir() {
		msg := fmt.Sprintf("%s is a directory, not a CSV file: name a .csv file", path)
		if files, _ := filepath.Glob(filepath.Join(path, "*.csv")); len(files) > 0 {
			msg += " such as " + files[0]
		}
		return fail(exitUsage, "%s", msg)
	}
	return nil
}

// inputProblem turns an error met reading the input file at path into a
// usage error that names the file, the cause and the fix.
func inputProblem(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOTDIR):
		return fail(exitUsage, "%s: no such file: a part of the path before its last is a file, not a directory", path)
	case errors.Is(err, fs.ErrNotExist):
		msg := fmt.Sprintf("%s: no such file", path)
		if wd, err := os.Getwd(); err == nil && !filepath.IsAbs(path) {
			msg += " in " + wd
		}
		dir := filepath.Dir(path)
		var names []string
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				if !e.IsDir() && strings.HasSuffix(e.Name(), ".csv") {
					names = append(names, e.Name())
				}
			}
		}
		if s := suggest(filepath.Base(path), names); s != "" {
			return fail(exitUsage, "%s; did you mean %s?", msg, filepath.Join(dir, s))
		}
		if _, err := os.Stat(dir); err != nil {
			return fail(exitUsage, "%s (the directory %s does not exist either): check the path", msg, dir)
		}
		return fail(exitUsage, "%s: check the name", msg)
	case errors.Is(err, fs.ErrPermission):
		return fail(exitUsage, "%s: permission denied: this user (uid %d) cannot read it; make it readable (chmod a+r %s) or run as its owner",
			path, os.Getuid(), path)
	}
	return fail(exitUsage, "%s cannot be read: %v", path, pathError(err))
}

// outputProblem turns an error met creating the output file at path
// (results --out) into a usage error that says why, in plain words.
func outputProblem(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(exitUsage, "--out %s: the directory %s does not exist: create it, or name another file", path, filepath.Dir(path))
	case errors.Is(err, fs.ErrPermission):
		return fail(exitUsage, "--out %s: permission denied: this user (uid %d) cannot write there", path, os.Getuid())
	case errors.Is(err, syscall.EISDIR):
		return fail(exitUsage, "--out %s is a directory: name a file in it, such as %s", path, filepath.Join(path, "results.csv"))
	}
	return fail(exitUsage, "--out %s cannot be written: %v", path, pathError(err))
}

// pathError is the cause of a file error without the operation and path
// it repeats ("permission denied" of "open x.csv: permission denied").
func pathError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/seedbatch/seedbatch/bench"
	"github.com/seedbatch/seedbatch/internal/redisconn"
)

func (m *Main) benchCmd(ctx context.Context, args []string) error {
	var c common
	fs := m.flags("bench", "", &c)
	jobs := fs.Int("jobs", bench.JobsDefault, "jobs of each scenario")
	scale := fs.Float64("time-scale", bench.TimeScaleDefault, "divide every provider timing by this")
	duration := fs.Int("duration", bench.DurationDefault, "video length of every job: 4, 8 or 12 seconds")
	scenarios := fs.String("scenarios", strings.Join(bench.ScenariosDefault(), ","), "scenarios to run: baseline, polling, callback")
	workers := fs.String("workers", joinInts(bench.WorkersDefault()), "worker process counts of the polling and callback scenarios")
	enqueueRows := fs.Int("enqueue-rows", bench.EnqueueRowsDefault, "rows of the enqueue measurement (0 skips it)")
	out := fs.String("out", "", "also write the report to this file")
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fail(exitUsage, "bench: takes no arguments")
	}
	if m := cfg.Redis.Conn().Mode(); m != "" && m != redisconn.ModeSingle {
		// Its figures come from one server's INFO counters.
		return fail(exitUsage, "bench: measures a single Redis (REDIS_URL or --redis), not %s", cfg.Redis.Describe())
	}
	counts, err := parseInts(*workers)
	if err != nil {
		return fail(exitUsage, "bench: --workers: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(exitUsage, "bench: cannot find this program's executable: %v", err)
	}
	bcfg := bench.Config{
		Jobs: *jobs, TimeScale: *scale, Duration: *duration,
		Scenarios: splitList(*scenarios), Workers: counts, EnqueueRows: *enqueueRows,
		Executable: exe, RedisURL: cfg.Redis.URL,
		Command: strings.TrimSpace("seedbatch bench " + strings.Join(args, " ")),
		Logger:  m.logger(cfg),
	}
	if *jobs < 1 || *scale < 1 || *enqueueRows < 0 {
		return fail(exitUsage, "bench: --jobs and --time-scale must be at least 1, --enqueue-rows at least 0")
	}
	rep, err := bench.Run(ctx, bcfg)
	if rep == nil {
		return fail(exitUsage, "%v", err)
	}
	if werr := m.writeReport("bench", rep, *out); werr != nil {
		return werr
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fail(exitRows, "bench: interrupted")
		}
		return fail(exitRows, "bench: %v", err)
	}
	if rep.Failed() {
		return fail(exitRows, "bench: a measurement failed; its error is in the report")
	}
	return nil
}

// markdownReport is a report that bench or drill writes as Markdown.
type markdownReport interface {
	WriteMarkdown(w io.Writer) error
}

// writeReport writes the report of command cmd to stdout and, if out is
// set, to that file.
func (m *Main) writeReport(cmd string, rep markdownReport, out string) error {
	var buf bytes.Buffer
	if err := rep.WriteMarkdown(&buf); err != nil {
		return err
	}
	m.Stdout.Write(buf.Bytes())
	if out != "" {
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			return fail(exitRows, "%s: --out: %v", cmd, err)
		}
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseInts parses a comma-separated list of integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, v := range splitList(s) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", v)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

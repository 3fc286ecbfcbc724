package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/seedbatch/seedbatch/drill"
)

func (m *Main) drillCmd(ctx context.Context, args []string) error {
	var c common
	fs := m.flags("drill", "", &c)
	rows := fs.Int("rows", 0, "rows of the polling batch (a callback batch of a fifth as many runs beside it; default 10000, short 1500)")
	scale := fs.Float64("time-scale", 0, "divide every provider timing by this (default 4, short 10)")
	short := fs.Bool("short", false, "the CI size: fewer rows, kills and faults, shorter Redis downtimes, no fuzzing")
	fuzzTime := fs.Duration("fuzztime", 0, "fuzz each target this long; 0: 1m, or none with --short")
	out := fs.String("out", "", "write the report to this file (default RELIABILITY.md; with --short only standard output)")
	cfg, err := m.parse(fs, &c, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fail(exitUsage, "drill: takes no arguments")
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(exitUsage, "drill: cannot find this program's executable: %v", err)
	}
	dcfg := drill.Config{Rows: *rows, TimeScale: *scale, Short: *short, FuzzTime: *fuzzTime,
		Executable: exe, SourceDir: moduleDir(),
		Command: strings.TrimSpace("seedbatch drill " + strings.Join(args, " ")), Logger: m.logger(cfg)}
	if *out == "" && !*short {
		*out = "RELIABILITY.md"
	}
	rep, err := drill.Run(ctx, dcfg)
	if rep == nil {
		return fail(exitUsage, "%v", err)
	}
	if werr := m.writeReport("drill", rep, *out); werr != nil {
		return werr
	}
	switch {
	case errors.Is(err, context.Canceled):
		return fail(exitRows, "drill: interrupted")
	case err != nil:
		return fail(exitRows, "drill: %v", err)
	case rep.Failed():
		return fail(exitRows, "drill: FAILED: a row lost or created twice, a lease leaked, or a provider limit broken (see the report)")
	}
	return nil
}

// moduleDir returns the directory of the go.mod above the working
// directory when it is seedbatch's module, for fuzzing; "" otherwise.
func moduleDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if bytes.HasPrefix(b, []byte("module github.com/seedbatch/seedbatch\n")) {
				return dir
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

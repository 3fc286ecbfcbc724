package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

func (m *Main) versionCmd(_ context.Context, args []string) error {
	fs := m.newFlags("version", "")
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fail(exitUsage, "version: unexpected arguments %v", fs.Args())
	}
	info, ok := debug.ReadBuildInfo()
	writeVersion(m.Stdout, info, ok)
	return nil
}

// writeVersion prints the module version, the VCS revision and commit time
// it was built from (and whether the work tree had uncommitted changes),
// and the Go version. A binary built without VCS information says so.
func writeVersion(w io.Writer, info *debug.BuildInfo, ok bool) {
	if !ok || info == nil {
		fmt.Fprintln(w, "seedbatch: no build information (built without module support)")
		return
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	line := func(k, v string) { fmt.Fprintf(w, "%-9s %s\n", k, v) }
	fmt.Fprintf(w, "seedbatch %s\n", info.Main.Version)
	if info.Main.Path != "" {
		line("module", info.Main.Path)
	}
	rev, ok := settings["vcs.revision"]
	if !ok {
		line("revision", "unknown: built without VCS information (go build in a git checkout records it; -buildvcs=false, "+
			"go run and builds outside a checkout do not)")
	} else {
		if settings["vcs.modified"] == "true" {
			rev += " (modified: uncommitted changes)"
		}
		line("revision", rev)
		if t := settings["vcs.time"]; t != "" {
			line("committed", t)
		}
	}
	line("go", info.GoVersion)
}

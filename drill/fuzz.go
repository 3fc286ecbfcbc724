package drill

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// FuzzRun is one fuzz target's run.
type FuzzRun struct {
	// Package is the target's package directory, "./tasks/".
	Package string
	// Target is the Fuzz function.
	Target string
	// Took is how long it ran.
	Took time.Duration
	// Crash is the end of go test's output when it failed; "" when not.
	Crash string
}

// Fuzzing is what the fuzz step did.
type Fuzzing struct {
	// Skipped says why nothing was fuzzed; "" when it ran.
	Skipped string
	// Runs are the targets run.
	Runs []FuzzRun
}

// fuzzFunc finds a fuzz target's declaration, as CI does.
var fuzzFunc = regexp.MustCompile(`^func (Fuzz[A-Za-z0-9_]*)\(`)

// fuzz runs every fuzz target of the module under cfg.SourceDir for
// cfg.FuzzTime, one `go test -fuzz` per target.
func fuzz(ctx context.Context, cfg Config) Fuzzing {
	switch {
	case cfg.FuzzTime < 0:
		return Fuzzing{Skipped: "skipped (--short or --fuzztime 0)"}
	case cfg.SourceDir == "":
		return Fuzzing{Skipped: "skipped: the module's source is not here (run the drill from a clone)"}
	}
	if _, err := exec.LookPath("go"); err != nil {
		return Fuzzing{Skipped: "skipped: no go toolchain on PATH"}
	}
	targets, err := fuzzTargets(cfg.SourceDir)
	if err != nil {
		return Fuzzing{Skipped: "skipped: " + err.Error()}
	}
	var out Fuzzing
	for _, t := range targets {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.Target+"$", "-fuzztime", cfg.FuzzTime.String(), t.Package)
		cmd.Dir = cfg.SourceDir
		start := time.Now()
		b, err := cmd.CombinedOutput()
		t.Took = time.Since(start)
		if err != nil {
			t.Crash = oneLine(string(b[max(0, len(b)-600):]))
		}
		out.Runs = append(out.Runs, t)
		cfg.Logger.Info("drill_fuzz", "target", t.Target, "took", t.Took, "failed", err != nil)
	}
	return out
}

// fuzzTargets finds every Fuzz function in the _test.go files under dir.
func fuzzTargets(dir string) ([]FuzzRun, error) {
	var runs []FuzzRun
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && path != dir && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := fuzzFunc.FindStringSubmatch(sc.Text()); m != nil {
				runs = append(runs, FuzzRun{Package: "./" + filepath.ToSlash(rel) + "/", Target: m[1]})
			}
		}
		return sc.Err()
	})
	return runs, err
}

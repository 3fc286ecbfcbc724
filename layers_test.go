// Package seedbatch_test checks the direction of seedbatch's imports: every
// package sits on a layer and imports only from the layers below it, so
// that, for one, the dashboard and the housekeeping never depend on the
// worker's handlers or on each other.
package seedbatch_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the import path every package of this repository starts with.
const module = "github.com/seedbatch/seedbatch"

// layers places every package of the module, bottom first. A package
// imports from lower layers only; within a layer, only the pairs in
// sideways may import each other.
var layers = [][]string{
	// Leaves: the row's vocabulary, the provider's client and its
	// simulator, the limiter, downloads, object storage, and small helpers.
	{"tasks", "seedance", "sim", "ratelimit", "fetch", "objstore", "redact", "rundir",
		"internal/crashpoint", "internal/hostcheck", "internal/probe", "internal/proc", "internal/redisconn",
		"internal/redisproc", "internal/redistest", "internal/s3test", "internal/serve", "internal/syncbuf",
		"internal/testwait"},
	// Records of batches in Redis, and asynq's producer side.
	{"batch", "queue"},
	// What runs: handlers, pages, housekeeping, its cron wiring, metrics,
	// the benchmark, the reliability drills.
	{"worker", "dashboard", "housekeeping", "scheduler", "metrics", "bench", "drill"},
	// Every component's settings, with the defaults each component owns.
	{"config"},
	// Wiring.
	{"cmd/seedbatch"},
}

// sideways are the imports allowed within one layer, as "from to".
var sideways = []string{
	"queue batch",                           // a task's payload names a batch's job
	"internal/probe internal/hostcheck",     // a probe checks the host it dials
	"fetch internal/crashpoint",             // a download has a crash point
	"internal/redistest internal/redisconn", // tests check their keys' slots
	"drill worker",                          // a drill signs a callback as the receiver expects
}

// TestImportsPointDown checks every package's imports against layers.
func TestImportsPointDown(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("lists every package with the go command")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		graph[f[0]] = f[1:]
	}
	if len(graph) < 10 {
		t.Fatalf("go list found %d packages: not the whole module", len(graph))
	}
	for _, v := range violations(graph) {
		t.Error(v)
	}
}

// TestViolationsAreFound checks the checker on graphs with known faults.
func TestViolationsAreFound(t *testing.T) {
	t.Parallel()
	p := func(s string) string { return module + "/" + s }
	tests := []struct {
		name  string
		graph map[string][]string
		want  int
	}{
		{"down is allowed", map[string][]string{p("worker"): {p("queue"), p("tasks"), "fmt"}}, 0},
		{"dashboard on worker", map[string][]string{p("dashboard"): {p("worker")}}, 1},
		{"housekeeping on dashboard", map[string][]string{p("housekeeping"): {p("dashboard")}}, 1},
		{"batch on queue", map[string][]string{p("batch"): {p("queue")}}, 1},
		{"a leaf on batch", map[string][]string{p("ratelimit"): {p("batch")}}, 1},
		{"a package on no layer", map[string][]string{p("newthing"): nil}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := violations(tt.graph); len(got) != tt.want {
				t.Errorf("violations = %q, want %d", got, tt.want)
			}
		})
	}
}

// violations lists the imports of graph (package → its imports) that do not
// point down the layers, and the packages of the module on no layer.
func violations(graph map[string][]string) []string {
	layer := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layer[module+"/"+p] = i
		}
	}
	var out []string
	for pkg, imports := range graph {
		if pkg == module {
			continue // this test
		}
		from, ok := layer[pkg]
		if !ok {
			out = append(out, fmt.Sprintf("%s is on no layer: add it to layers", pkg))
			continue
		}
		for _, imp := range imports {
			to, ours := layer[imp]
			if !ours || to < from {
				continue
			}
			pair := strings.TrimPrefix(pkg, module+"/") + " " + strings.TrimPrefix(imp, module+"/")
			if to == from && slices.Contains(sideways, pair) {
				continue
			}
			out = append(out, fmt.Sprintf("%s imports %s, which is not below it", pkg, imp))
		}
	}
	slices.Sort(out)
	return out
}

package main

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBench runs the CI-sized benchmark with the real binary, which starts
// its own enqueue and worker processes, and checks that the report has a
// row for every scenario without duplicate creates or 429s, and with the
// provider's in-flight limit held.
func TestBench(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end benchmark run")
	}
	bin := binary(t)
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), bin, "bench", "--jobs", "200", "--time-scale", "50", "--enqueue-rows", "2000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	elapsed := time.Since(start)
	report := string(out)
	t.Logf("bench in %v:\n%s", elapsed.Round(time.Millisecond), report)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, tail(stderr.String(), 3000))
	}
	if elapsed > time.Minute {
		t.Errorf("bench took %v, want well under a minute", elapsed)
	}
	col := map[string]int{}
	rows := map[string][]string{}
	for line := range strings.SplitSeq(report, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if cells[0] == "scenario" {
			for i, c := range cells {
				col[c] = i
			}
			continue
		}
		rows[cells[0]+"/"+cells[1]] = cells
	}
	for _, want := range []string{"baseline/–", "polling/1", "polling/3", "callback/1", "callback/3"} {
		cells, ok := rows[want]
		if !ok {
			t.Errorf("no row for %s", want)
			continue
		}
		if len(cells) != len(col) {
			t.Errorf("%s: %d cells, want %d: %v", want, len(cells), len(col), cells)
			continue
		}
		peak, err := strconv.Atoi(cells[col["peak in flight"]])
		if err != nil || peak > 1000 || cells[col["duplicate creates"]] != "0" || cells[col["429 answers"]] != "0" {
			t.Errorf("%s: peak %s, duplicates %s, 429s %s; want at most 1000, 0, 0", want,
				cells[col["peak in flight"]], cells[col["duplicate creates"]], cells[col["429 answers"]])
		}
	}
	if !strings.Contains(report, "seedbatch / asynq = ") {
		t.Error("the report has no enqueue line")
	}
}

package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/sim"
	"github.com/seedbatch/seedbatch/tasks"
)

// TestCheck plants each fault the drill must catch in an otherwise clean
// ledger and checks that the verdict names it, and only it.
func TestCheck(t *testing.T) {
	t.Parallel()
	clean := func() ([]RowRecord, map[string]int) {
		rows := []RowRecord{
			{Batch: "b", ID: "r1", Prompt: "p1", State: tasks.StateDone},
			{Batch: "b", ID: "r2", Holder: "b:2:0", Prompt: "p2", State: tasks.StateDone},
			{Batch: "b", ID: "r3", Holder: "b:3:0", Prompt: "p3", State: tasks.StateAmbiguous, FailMsg: "create of row 3 timed out after 5s"},
			{Batch: "b", ID: "r4", Prompt: "p4", State: tasks.StateFailed, FailCode: "GENERATION_FAILED"},
		}
		return rows, map[string]int{"p1": 1, "p2": 1, "p3": 1, "p4": 1}
	}
	tests := []struct {
		name   string
		plant  func(rows []RowRecord, created map[string]int) ([]RowRecord, int, []string)
		failed bool
		check  func(v Verdict) bool
	}{
		{"clean", func(r []RowRecord, _ map[string]int) ([]RowRecord, int, []string) { return r, 4, []string{"b:3:0"} }, false,
			func(v Verdict) bool {
				return v.States[tasks.StateDone] == 2 && v.FailCodes["GENERATION_FAILED"] == 1 &&
					v.Ambiguous["create of row N timed out after Ns"] == AmbiguousCause{Rows: 1, Created: 1} && v.AmbiguousLeases == 1
			}},
		{"duplicate create", func(r []RowRecord, c map[string]int) ([]RowRecord, int, []string) {
			c["p2"] = 2
			return r, 4, []string{"b:3:0"}
		}, true,
			func(v Verdict) bool { return len(v.Duplicates) == 1 && strings.Contains(v.Duplicates[0], "b/r2") }},
		{"row not terminal", func(r []RowRecord, _ map[string]int) ([]RowRecord, int, []string) {
			r[1].State = tasks.StateSubmitted
			return r, 4, nil
		}, true, func(v Verdict) bool { return len(v.Lost) == 1 && strings.Contains(v.Lost[0], "b/r2 (submitted)") }},
		{"row missing", func(r []RowRecord, _ map[string]int) ([]RowRecord, int, []string) { return r[:3], 4, nil }, true,
			func(v Verdict) bool { return len(v.Lost) == 1 && strings.HasPrefix(v.Lost[0], "missing: 1 rows") }},
		{"leaked lease", func(r []RowRecord, _ map[string]int) ([]RowRecord, int, []string) {
			return r, 4, []string{"b:3:0", "b:2:0"}
		}, true,
			func(v Verdict) bool {
				return len(v.Leases) == 1 && v.Leases[0] == "b:2:0 (row done)" && v.AmbiguousLeases == 1
			}},
		{"done without a create", func(r []RowRecord, c map[string]int) ([]RowRecord, int, []string) {
			delete(c, "p1")
			return r, 4, []string{"b:3:0"}
		}, true,
			func(v Verdict) bool { return len(v.Phantoms) == 1 && v.Phantoms[0] == "b/r1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, created := clean()
			rows, expected, leases := tt.plant(rows, created)
			v := Check(expected, rows, created, leases)
			if v.Failed() != tt.failed || !tt.check(v) {
				t.Errorf("verdict %+v: failed %v, want %v", v, v.Failed(), tt.failed)
			}
		})
	}
}

// TestRecovery checks the recovery time on a run that stalls during a
// fault and picks up again some seconds after it.
func TestRecovery(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	var samples []sample
	n := 0
	for i := range 60 { // one sample a second
		at := t0.Add(time.Duration(i) * time.Second)
		switch {
		case i <= 20, i >= 33: // 10 rows a second, before the fault and 3 s after its end
			n += 10
		case i <= 30: // the fault: nothing ends
		default: // just after it: 2 rows a second
			n += 2
		}
		samples = append(samples, sample{at, n})
	}
	got := recovery(samples, t0.Add(20*time.Second), t0.Add(30*time.Second))
	// The first 5 s window at 80 % of 10/s is [31 s, 36 s]: 42 rows.
	if got != 6*time.Second {
		t.Errorf("recovery = %v, want 6s", got)
	}
	if got := recovery(samples[:35], t0.Add(20*time.Second), t0.Add(30*time.Second)); got != -1 {
		t.Errorf("recovery without enough samples after the fault = %v, want -1", got)
	}
	if got := recovery(samples, t0, t0.Add(3*time.Second)); got != -1 {
		t.Errorf("recovery without a rate before the fault = %v, want -1", got)
	}
}

// TestOutcomes checks that a fault window's outcome tallies the final
// states of the rows its events hit, and leaves a set outcome alone.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	events := []sim.FaultEvent{
		{Kind: sim.FaultCreate500, Prompt: "p0"},
		{Kind: sim.FaultCreate500Created, Prompt: "p1", Created: true},
		{Kind: sim.FaultCreate500, Prompt: "p2"},
		{Kind: sim.FaultStuck, Prompt: "p3", Created: true},
	}
	faults := []Fault{{eventsFrom: 1, eventsTo: 3}, {eventsFrom: 3, eventsTo: 4, Outcome: "kept"}, {}}
	outcomes(faults, events, map[string]string{"p0": "done", "p1": "ambiguous", "p2": "done", "p3": "failed"})
	want := []string{"rows hit: ambiguous (created) 1, done 1", "kept", ""}
	for i, f := range faults {
		if f.Outcome != want[i] {
			t.Errorf("fault %d: outcome %q, want %q", i, f.Outcome, want[i])
		}
	}
}

// TestFuzzTargets checks that the module's fuzz targets are found, with
// the package each is in.
func TestFuzzTargets(t *testing.T) {
	t.Parallel()
	runs, err := fuzzTargets("..")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range runs {
		found = found || (r.Package == "./tasks/" && r.Target == "FuzzSafeFileName")
		if !strings.HasPrefix(r.Target, "Fuzz") || !strings.HasSuffix(r.Package, "/") {
			t.Errorf("odd target %+v", r)
		}
	}
	if !found {
		t.Errorf("FuzzSafeFileName in ./tasks/ not among %d targets: %+v", len(runs), runs)
	}
}

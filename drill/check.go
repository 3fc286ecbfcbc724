package drill

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/seedbatch/seedbatch/tasks"
)

// RowRecord is what the batch records say of one row at the end.
type RowRecord struct {
	// Batch and ID name the row.
	Batch, ID string
	// Holder names the row's current submit attempt, as its lease does.
	Holder string
	// Prompt is the row's prompt: the simulator's ledger counts creates by
	// prompt, and every prompt of a drill is unique.
	Prompt string
	// State is the row's state.
	State tasks.State
	// FailCode and FailMsg say why a row failed or is ambiguous.
	FailCode, FailMsg string
}

// Verdict compares the rows' records with the simulator's ledger.
type Verdict struct {
	// Expected is the number of rows enqueued; Found the number recorded.
	Expected, Found int
	// States counts the rows by state.
	States map[tasks.State]int
	// Lost names the rows missing from the records or not terminal at the
	// end ("missing: N rows" for rows without a record).
	Lost []string
	// Duplicates names the rows whose prompt was created more than once.
	Duplicates []string
	// Phantoms names the rows recorded done whose prompt the provider never
	// created: a record that claims a video nobody made.
	Phantoms []string
	// Leases names the in-flight leases left in the limiter's set that no
	// ambiguous row holds: leaked.
	Leases []string
	// AmbiguousLeases counts the leases left that ambiguous rows hold on
	// purpose: their task may run at the provider, so the slot stays taken
	// until the lease expires (limits.lease_ttl).
	AmbiguousLeases int
	// Ambiguous counts the ambiguous rows by cause (their message), with
	// how many of them the provider did create.
	Ambiguous map[string]AmbiguousCause
	// FailCodes counts the failed rows by code.
	FailCodes map[string]int
}

// AmbiguousCause counts the ambiguous rows of one cause.
type AmbiguousCause struct {
	// Rows is the number of rows; Created how many of them the provider
	// created (and billed).
	Rows, Created int
}

// Failed reports whether the verdict breaks a promise: a row lost, a
// prompt created twice, a done row never created, or a lease left.
func (v Verdict) Failed() bool {
	return len(v.Lost) > 0 || len(v.Duplicates) > 0 || len(v.Phantoms) > 0 || len(v.Leases) > 0
}

// Check compares rows (expected of them were enqueued) with the ledger of
// creates by prompt; leases are the holders of the leases left once every
// row should have ended.
func Check(expected int, rows []RowRecord, created map[string]int, leases []string) Verdict {
	v := Verdict{Expected: expected, Found: len(rows), States: map[tasks.State]int{},
		Ambiguous: map[string]AmbiguousCause{}, FailCodes: map[string]int{}}
	ambiguous := map[string]bool{}
	state := map[string]tasks.State{}
	if missing := expected - len(rows); missing > 0 {
		v.Lost = append(v.Lost, "missing: "+strconv.Itoa(missing)+" rows have no record")
	}
	for _, r := range rows {
		v.States[r.State]++
		state[r.Holder] = r.State
		name := r.Batch + "/" + r.ID
		n := created[r.Prompt]
		switch {
		case !r.State.Terminal():
			v.Lost = append(v.Lost, name+" ("+string(r.State)+")")
		case r.State == tasks.StateDone && n == 0:
			v.Phantoms = append(v.Phantoms, name)
		}
		if n > 1 {
			v.Duplicates = append(v.Duplicates, name+" (created "+strconv.Itoa(n)+" times)")
		}
		switch r.State {
		case tasks.StateAmbiguous:
			ambiguous[r.Holder] = true
			c := v.Ambiguous[cause(r.FailMsg)]
			c.Rows++
			if n > 0 {
				c.Created++
			}
			v.Ambiguous[cause(r.FailMsg)] = c
		case tasks.StateFailed:
			v.FailCodes[cmp.Or(r.FailCode, "(no code)")]++
		}
	}
	for _, h := range leases {
		if ambiguous[h] {
			v.AmbiguousLeases++
		} else {
			v.Leases = append(v.Leases, h+" (row "+cmp.Or(string(state[h]), "unknown")+")")
		}
	}
	return v
}

// causeChars bounds a cause's text, so that messages naming a task or a
// row group together.
const causeChars = 140

// cause returns a row's message as a cause: digits replaced by "N" so
// that messages naming a row, an attempt or a time group together.
func cause(msg string) string {
	var b strings.Builder
	prevDigit := false
	for _, c := range msg {
		if c >= '0' && c <= '9' {
			if !prevDigit {
				b.WriteByte('N')
			}
			prevDigit = true
			continue
		}
		prevDigit = false
		b.WriteRune(c)
	}
	s := strings.TrimSpace(b.String())
	if len(s) > causeChars {
		s = s[:causeChars] + "…"
	}
	return cmp.Or(s, "(no message)")
}

// sortedKeys returns m's keys in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}

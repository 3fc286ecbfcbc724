package batch_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
)

// TestOpenJournalDropsTornTail: a record a crash cut short at the end of a
// journal (or a header cut short) is dropped when the journal is opened
// again, so the next record starts a line of its own and every line of the
// journal stays readable.
func TestOpenJournalDropsTornTail(t *testing.T) {
	t.Parallel()
	h := batch.JournalHeader{Batch: "b", Hash: "h", Store: batch.StoreEmbedded}
	tests := []struct {
		name string
		torn string // appended after the whole records, if any
		keep bool   // whether the first open's records stay
	}{
		{"torn record", `{"k":"refund","b":"b","r":`, true},
		{"whole records", "", true},
		{"torn header only", `{"k":"head`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "journal.jsonl")
			if tt.keep {
				j, err := batch.OpenJournal(path, h)
				if err != nil {
					t.Fatal(err)
				}
				if err := j.Write(batch.Record{Kind: batch.RecordRefund, Batch: "b", Row: 1, Seconds: 4}); err != nil {
					t.Fatal(err)
				}
				j.Close()
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tt.torn)
			f.Close()
			if got, err := batch.ReadJournalHeader(path); tt.keep && (err != nil || got != h) {
				t.Fatalf("header of a journal with a torn tail: %+v, %v", got, err)
			}
			j, err := batch.OpenJournal(path, h)
			if err != nil {
				t.Fatalf("open again: %v", err)
			}
			if err := j.Write(batch.Record{Kind: batch.RecordRefund, Batch: "b", Row: 2, Seconds: 4}); err != nil {
				t.Fatal(err)
			}
			j.Close()
			want := 2 // header, the record after the crash
			if tt.keep {
				want = 3
			}
			f, err = os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n := 0
			for sc := bufio.NewScanner(f); sc.Scan(); n++ {
				var rec batch.Record
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Errorf("line %d unreadable: %q", n+1, sc.Text())
				}
			}
			if n != want {
				t.Errorf("%d lines, want %d", n, want)
			}
		})
	}
}

package batch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Journal receives every change the store applies, in the order applied.
// A run on an embedded Redis keeps one on disk, so that it can rebuild its
// state after being stopped, even by kill -9 (see Replay).
type Journal interface {
	Write(r Record) error
}

// RecordKind names what a journal record changed.
type RecordKind string

// Record kinds.
const (
	RecordTransition RecordKind = "transition"
	RecordCancel     RecordKind = "cancel"
	RecordReserve    RecordKind = "reserve"
	RecordRefund     RecordKind = "refund"
	RecordBudget     RecordKind = "budget"
)

// Record is one journaled change.
type Record struct {
	Kind  RecordKind `json:"k"`
	Batch string     `json:"b,omitempty"`
	Row   int        `json:"r,omitempty"`
	// Change is the transition applied (RecordTransition).
	Change *Change `json:"c,omitempty"`
	// Attempt and Seconds describe a budget reservation or refund, Seconds
	// also a budget limit (RecordBudget; Batch empty for the total).
	Attempt int `json:"a,omitempty"`
	Seconds int `json:"s,omitempty"`
	// Sync asks the journal to reach the disk before Write returns.
	Sync bool `json:"-"`
}

// SetJournal makes the store write every change it applies to j.
func (s *Store) SetJournal(j Journal) { s.journal = j }

func (s *Store) record(r Record) error {
	if s.journal == nil {
		return nil
	}
	if err := s.journal.Write(r); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// FileJournal appends records to a file, one JSON object per line. Writes
// marked Sync are flushed to the disk (fsync) before Write returns; the
// others reach the operating system at once, which keeps them through a
// kill -9 of the process.
type FileJournal struct {
	mu sync.Mutex
	f  *os.File
}

// OpenJournal opens (creating if needed) the journal at path for appending.
func OpenJournal(path string) (*FileJournal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &FileJournal{f: f}, nil
}

// Write appends r.
func (j *FileJournal) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(b); err != nil {
		return err
	}
	if r.Sync {
		return j.f.Sync()
	}
	return nil
}

// Close flushes and closes the file.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return err
	}
	return j.f.Close()
}

// Replay applies a journal's records to the store, which must not have a
// journal set yet. Jobs must exist already (enqueue the batch first). A
// last line cut short by a crash is ignored; transitions that no longer
// apply are skipped. It returns the number of records applied.
func (s *Store) Replay(ctx context.Context, r io.Reader) (int, error) {
	if s.journal != nil {
		return 0, errors.New("replay: the store already has a journal")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			continue // a line cut short by a crash
		}
		var err error
		switch rec.Kind {
		case RecordTransition:
			if rec.Change != nil {
				_, err = s.Transition(ctx, rec.Batch, rec.Row, *rec.Change)
			}
		case RecordCancel:
			err = s.SetCanceled(ctx, rec.Batch)
		case RecordReserve:
			_, _, err = s.reserve(ctx, rec.Batch, rec.Row, rec.Attempt, rec.Seconds, true)
		case RecordRefund:
			err = s.Refund(ctx, rec.Batch, rec.Row, rec.Attempt, rec.Seconds)
		case RecordBudget:
			err = s.SetBudget(ctx, rec.Batch, rec.Seconds)
		}
		if err != nil && !errors.Is(err, ErrConflict) {
			return n, fmt.Errorf("replay: %w", err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("replay: %w", err)
	}
	return n, nil
}

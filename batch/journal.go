package batch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/seedbatch/seedbatch/internal/crashpoint"
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
	// RecordHeader is the first record of every journal: which batch, from
	// which file, on which kind of store.
	RecordHeader     RecordKind = "header"
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
	// Hash and Store are the header's: the sha256 of the batch's file and
	// the kind of store the journal keeps (RecordHeader).
	Hash  string `json:"h,omitempty"`
	Store string `json:"st,omitempty"`
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

// JournalHeader says what a journal belongs to: the batch, the sha256 of
// the file it was enqueued from, and the kind of store whose changes it
// keeps (StoreEmbedded for a run's own Redis).
type JournalHeader struct {
	Batch, Hash, Store string
}

// The stores a journal keeps the changes of.
const (
	// StoreEmbedded names the store of a run on its own embedded Redis:
	// the journal is its state, replayed when the run resumes.
	StoreEmbedded = "embedded"
	// StoreRedis names a Redis server that keeps the state itself: the
	// journal is a copy of the run's changes, read only to rebuild a batch
	// the server lost (see Recover).
	StoreRedis = "redis"
)

func (h JournalHeader) record() Record {
	return Record{Kind: RecordHeader, Batch: h.Batch, Hash: h.Hash, Store: h.Store, Sync: true}
}

// ErrJournalMismatch is returned (wrapped) when a journal belongs to
// another batch, another file or another store than the one resuming.
var ErrJournalMismatch = errors.New("the journal belongs to another run")

// JournalMismatchError says how a journal differs from the run resuming it.
type JournalMismatchError struct {
	Path      string
	Got, Want JournalHeader
}

func (e *JournalMismatchError) Error() string {
	switch {
	case e.Got.Batch != e.Want.Batch:
		return fmt.Sprintf("%s belongs to batch %s, not %s", e.Path, e.Got.Batch, e.Want.Batch)
	case e.Got.Hash != e.Want.Hash:
		return fmt.Sprintf("%s was written for another version of the file (sha256 %.12s…, now %.12s…): "+
			"the CSV changed since the batch began, and resuming would give old videos to new rows; "+
			"restore the file, or run the new one under another --batch", e.Path, e.Got.Hash, e.Want.Hash)
	default:
		return fmt.Sprintf("%s keeps a %s store, not %s", e.Path, e.Got.Store, e.Want.Store)
	}
}

// Unwrap makes errors.Is(err, ErrJournalMismatch) true.
func (e *JournalMismatchError) Unwrap() error { return ErrJournalMismatch }

// FileJournal appends records to a file, one JSON object per line, the
// first a header (RecordHeader). Writes marked Sync are flushed to the disk
// (fsync) before Write returns; the others reach the operating system at
// once, which keeps them through a kill -9 of the process.
type FileJournal struct {
	mu    sync.Mutex
	f     *os.File
	crash *crashpoint.Set
}

// OpenJournal opens the journal at path for appending. A new (or empty)
// journal starts with h; an existing one must have been written for h,
// else the error is a *JournalMismatchError.
func OpenJournal(path string, h JournalHeader) (*FileJournal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &FileJournal{f: f}
	if err := dropTornTail(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	got, err := readHeader(f)
	switch {
	case errors.Is(err, io.EOF):
		err = j.Write(h.record())
	case err == nil && got != h:
		err = &JournalMismatchError{Path: path, Got: got, Want: h}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return j, nil
}

// Arm arms crashpoint.MidJournalWrite on j's later writes: the process
// dies with half of a record written, as a crash mid-write would leave it.
func (j *FileJournal) Arm(s *crashpoint.Set) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.crash = s
}

// dropTornTail cuts a record a crash left half written off the end of f, so
// that the next record starts on a line of its own. (Replay skips such a
// last line; appending to it would make it a corrupt line mid-journal.)
func dropTornTail(f *os.File) error {
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return err
	}
	const chunk = 64 << 10
	end := info.Size()
	buf := make([]byte, chunk)
	for off := end; off > 0; {
		n := int64(chunk)
		if off < n {
			n = off
		}
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if keep := off + int64(i) + 1; keep < end {
				return f.Truncate(keep)
			}
			return nil
		}
	}
	return f.Truncate(0) // not even the header is whole
}

// ReadJournalHeader reads the header of the journal at path. A journal
// whose header a crash cut short is empty (io.EOF).
func ReadJournalHeader(path string) (JournalHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return JournalHeader{}, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	h, err := readHeader(f)
	if err != nil {
		return h, fmt.Errorf("read journal %s: %w", path, err)
	}
	return h, nil
}

// readHeader reads the first line of r as a header; io.EOF means r is
// empty, or holds only a header a crash cut short.
func readHeader(r io.Reader) (JournalHeader, error) {
	line, err := bufio.NewReaderSize(r, 4096).ReadBytes('\n')
	if errors.Is(err, io.EOF) {
		return JournalHeader{}, io.EOF
	}
	var rec Record
	if json.Unmarshal(line, &rec) != nil || rec.Kind != RecordHeader {
		return JournalHeader{}, errors.New("the journal has no header")
	}
	return JournalHeader{Batch: rec.Batch, Hash: rec.Hash, Store: rec.Store}, nil
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
	if j.crash.Armed(crashpoint.MidJournalWrite) {
		half := len(b) / 2
		if _, err := j.f.Write(b[:half]); err != nil {
			return err
		}
		j.crash.Hit(crashpoint.MidJournalWrite)
		b = b[half:]
	}
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

// JournalRecords counts the records of the journal at path after its
// header (a last line a crash cut short included).
func JournalRecords(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read journal %s: %w", path, err)
	}
	return max(n-1, 0), nil
}

// ErrJournalCorrupt is returned (wrapped) by Replay for a record that cannot
// be read before the last line.
var ErrJournalCorrupt = errors.New("journal corrupt")

// Replay applies a journal's records to the store, which must not have a
// journal set yet. Jobs must exist already (enqueue the batch first). The
// journal must start with want as its header (else a *JournalMismatchError).
// Only its last line may be unreadable (cut short by a crash; it is
// skipped): an unreadable record anywhere else stops the replay with
// ErrJournalCorrupt, since skipping it could lose a create. Transitions that
// no longer apply are skipped. It returns the number of records applied.
func (s *Store) Replay(ctx context.Context, r io.Reader, want JournalHeader) (int, error) {
	return s.replay(ctx, r, func(got JournalHeader) error {
		if got != want {
			return &JournalMismatchError{Path: "the journal", Got: got, Want: want}
		}
		return nil
	})
}

// replay applies a journal's records after check accepted its header.
func (s *Store) replay(ctx context.Context, r io.Reader, check func(JournalHeader) error) (int, error) {
	if s.journal != nil {
		return 0, errors.New("replay: the store already has a journal")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n, line := 0, 0
	var torn error // an unreadable line, fatal unless it is the last
	for sc.Scan() {
		line++
		if torn != nil {
			return n, torn
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			torn = fmt.Errorf("replay: line %d: %w: %v", line, ErrJournalCorrupt, err)
			continue
		}
		if line == 1 {
			got := JournalHeader{Batch: rec.Batch, Hash: rec.Hash, Store: rec.Store}
			if rec.Kind != RecordHeader {
				return 0, fmt.Errorf("replay: %w: the journal has no header", ErrJournalCorrupt)
			}
			if err := check(got); err != nil {
				return 0, fmt.Errorf("replay: %w", err)
			}
			continue
		}
		if err := s.apply(ctx, rec); err != nil {
			return n, fmt.Errorf("replay: line %d: %w", line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("replay: %w", err)
	}
	if line == 0 {
		return 0, fmt.Errorf("replay: %w: the journal is empty", ErrJournalCorrupt)
	}
	return n, nil
}

// apply applies one journal record.
func (s *Store) apply(ctx context.Context, rec Record) error {
	var err error
	switch rec.Kind {
	case RecordTransition:
		if rec.Change == nil || !rec.Change.To.Valid() {
			return fmt.Errorf("%w: a transition without a change to a known state", ErrJournalCorrupt)
		}
		c := *rec.Change
		c.replayed = true
		_, err = s.Transition(ctx, rec.Batch, rec.Row, c)
	case RecordCancel:
		err = s.SetCanceled(ctx, rec.Batch)
	case RecordReserve:
		_, _, err = s.reserve(ctx, rec.Batch, rec.Row, rec.Attempt, rec.Seconds, true)
	case RecordRefund:
		err = s.Refund(ctx, rec.Batch, rec.Row, rec.Attempt, rec.Seconds)
	case RecordBudget:
		err = s.SetBudget(ctx, rec.Batch, rec.Seconds)
	default:
		return fmt.Errorf("%w: unknown record kind %q", ErrJournalCorrupt, rec.Kind)
	}
	if errors.Is(err, ErrConflict) {
		return nil // a transition that no longer applies
	}
	return err
}

package batch

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/seedbatch/seedbatch/tasks"
)

// maxReportedErrors caps the row errors a Plan keeps in memory; all are
// counted, and every bad row is still recorded as a rejected job.
const maxReportedErrors = 1000

// Plan is the result of reading a CSV file once, before anything is enqueued.
type Plan struct {
	// ID is the batch id: given, or derived from the file's name and content,
	// so enqueueing the same file twice names the same batch.
	ID string
	// Path is the file read.
	Path string
	// Hash is the sha256 of the file's content, hex.
	Hash string
	// Rows counts data rows; Valid the ones that will be submitted.
	Rows, Valid int
	// Invalid counts rows with a bad field; Errors keeps the first of them.
	Invalid int
	Errors  []*tasks.RowError
	// Duplicates lists rows identical to an earlier row (all fields but id).
	Duplicates []Duplicate
	// Seconds is the video seconds of the valid rows, by resolution.
	Seconds map[string]int
	// Skipped counts the rows a results file read again marks as already
	// run: they are not rows of the batch (see tasks.ResultColumns).
	Skipped int
}

// Duplicate is a row identical to an earlier one.
type Duplicate struct {
	Line, FirstLine int
}

// TotalSeconds is the video seconds of all valid rows.
func (p *Plan) TotalSeconds() int {
	n := 0
	for _, s := range p.Seconds {
		n += s
	}
	return n
}

// Resolutions lists the resolutions in Seconds, sorted.
func (p *Plan) Resolutions() []string {
	out := make([]string, 0, len(p.Seconds))
	for r := range p.Seconds {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// PlanOptions tunes PlanFile.
type PlanOptions struct {
	// Reader passes defaults and limits to the CSV reader.
	Reader tasks.ReaderOptions
	// BatchID overrides the derived batch id.
	BatchID string
	// AllowDuplicates submits identical rows too (each costs money).
	AllowDuplicates bool
}

var batchIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateBatchID checks a user-chosen batch id.
func ValidateBatchID(id string) error {
	if !batchIDPattern.MatchString(id) {
		return fmt.Errorf("batch id %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// PlanFile reads path once: it validates every row, finds duplicates, sums
// the video seconds and names the batch. A *tasks.FileError means the file
// as a whole is unusable and nothing may be enqueued from it.
func PlanFile(path string, opts PlanOptions) (*Plan, error) {
	if opts.BatchID != "" {
		if err := ValidateBatchID(opts.BatchID); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	p := &Plan{Path: path, Seconds: map[string]int{}}
	p.Skipped, err = eachRow(io.TeeReader(f, h), opts, func(r tasks.Row, dup *Duplicate) error {
		p.Rows++
		switch {
		case r.Err != nil:
			p.Invalid++
			if len(p.Errors) < maxReportedErrors {
				var re *tasks.RowError
				if !errors.As(r.Err, &re) {
					re = &tasks.RowError{Line: r.Line, Index: r.Index, Err: r.Err}
				}
				p.Errors = append(p.Errors, re)
			}
		case dup != nil:
			p.Duplicates = append(p.Duplicates, *dup)
			if opts.AllowDuplicates {
				p.Valid++
				p.Seconds[r.Spec.Resolution] += r.Spec.Seconds()
			}
		default:
			p.Valid++
			p.Seconds[r.Spec.Resolution] += r.Spec.Seconds()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(h, f) // hash anything after the last record too
	p.Hash = hex.EncodeToString(h.Sum(nil))
	p.ID = opts.BatchID
	if p.ID == "" {
		p.ID = derivedID(path, p.Hash)
	}
	return p, nil
}

// eachRow streams the rows of r to fn, with the earlier identical row of a
// duplicate, and returns how many rows the reader skipped (rows of a
// results file that already ran). It keeps only 64 bits of one fingerprint
// per distinct row in memory, about 18 bytes with its line (two rows of a
// million share them with a probability near 3·10^-8: the later would be
// reported a duplicate).
func eachRow(r io.Reader, opts PlanOptions, fn func(tasks.Row, *Duplicate) error) (int, error) {
	rd, err := tasks.NewReader(r, opts.Reader)
	if err != nil {
		return 0, err
	}
	var seen tasks.LineIndex
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.Skipped(), nil
		}
		if err != nil {
			return rd.Skipped(), err
		}
		var dup *Duplicate
		if row.Err == nil {
			sum := row.Spec.Fingerprint()
			fp := binary.LittleEndian.Uint64(sum[:8])
			if first, ok := seen.Get(fp); ok {
				dup = &Duplicate{Line: row.Line, FirstLine: first}
			} else {
				seen.Put(fp, row.Line)
			}
		}
		if err := fn(row, dup); err != nil {
			return rd.Skipped(), err
		}
	}
}

// hashFile returns the hex sha256 of a file's content.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func derivedID(path, sum string) string {
	stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	stem = strings.Trim(unsafeID.ReplaceAllString(stem, "-"), "-._")
	if len(stem) > 40 {
		stem = stem[:40]
	}
	if stem == "" {
		stem = "batch"
	}
	return stem + "-" + sum[:10]
}

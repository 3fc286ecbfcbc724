package batch

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Result formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// resultPage is how many jobs are read per round trip while exporting.
const resultPage = 500

// Result is one row of a results export.
type Result struct {
	Row         int      `json:"row"`
	Line        int      `json:"line"`
	ID          string   `json:"id"`
	Mode        string   `json:"mode"`
	Prompt      string   `json:"prompt"`
	ImageURLs   []string `json:"image_urls,omitempty"`
	Duration    int      `json:"duration"`
	Resolution  string   `json:"resolution"`
	AspectRatio string   `json:"aspect_ratio"`
	Sound       bool     `json:"sound"`
	FixedLens   bool     `json:"fixed_lens"`
	Provider    string   `json:"provider"`
	State       string   `json:"state"`
	TaskID      string   `json:"task_id,omitempty"`
	FailCode    string   `json:"fail_code,omitempty"`
	FailMsg     string   `json:"fail_msg,omitempty"`
	ResultURLs  []string `json:"result_urls,omitempty"`
	EnqueuedAt  string   `json:"enqueued_at,omitempty"`
	SubmittedAt string   `json:"submitted_at,omitempty"`
	CompletedAt string   `json:"completed_at,omitempty"`
	CostMS      int64    `json:"cost_ms,omitempty"`
	Files       []File   `json:"files,omitempty"`
	// DownloadedAt is when the files were stored.
	DownloadedAt string `json:"downloaded_at,omitempty"`
}

// ResultOf turns a job into its results row.
func ResultOf(j Job) Result {
	return Result{
		Row: j.Row, Line: j.Line, ID: j.Spec.ID, Mode: j.Spec.Mode, Prompt: j.Spec.Prompt,
		ImageURLs: j.Spec.ImageURLs, Duration: j.Spec.Duration, Resolution: j.Spec.Resolution,
		AspectRatio: j.Spec.AspectRatio, Sound: j.Spec.Sound, FixedLens: j.Spec.FixedLens,
		Provider: j.Spec.Provider, State: string(j.State), TaskID: j.TaskID,
		FailCode: j.FailCode, FailMsg: j.FailMsg, ResultURLs: j.ResultURLs,
		EnqueuedAt: stamp(j.Enqueued), SubmittedAt: stamp(j.Submitted), CompletedAt: stamp(j.Completed),
		CostMS: j.CostTime.Milliseconds(), Files: j.Files, DownloadedAt: stamp(j.Downloaded),
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

var csvHeader = []string{"row", "line", "id", "mode", "prompt", "image_urls", "duration", "resolution",
	"aspect_ratio", "sound", "fixed_lens", "provider", "state", "task_id", "fail_code", "fail_msg",
	"result_urls", "enqueued_at", "submitted_at", "completed_at", "cost_ms", "files", "sizes", "sha256",
	"downloaded_at"}

func (r Result) csvRecord() []string {
	rec := []string{strconv.Itoa(r.Row), strconv.Itoa(r.Line), r.ID, r.Mode, r.Prompt,
		strings.Join(r.ImageURLs, "|"), strconv.Itoa(r.Duration), r.Resolution, r.AspectRatio,
		strconv.FormatBool(r.Sound), strconv.FormatBool(r.FixedLens), r.Provider, r.State, r.TaskID,
		r.FailCode, r.FailMsg, strings.Join(r.ResultURLs, "|"), r.EnqueuedAt, r.SubmittedAt,
		r.CompletedAt, strconv.FormatInt(r.CostMS, 10)}
	var paths, sizes, sums []string
	for _, f := range r.Files {
		paths = append(paths, f.Path)
		sizes = append(sizes, strconv.FormatInt(f.Size, 10))
		sums = append(sums, f.SHA256)
	}
	rec = append(rec, strings.Join(paths, "|"), strings.Join(sizes, "|"), strings.Join(sums, "|"), r.DownloadedAt)
	for i, c := range rec {
		rec[i] = SpreadsheetSafe(c)
	}
	return rec
}

// SpreadsheetSafe neutralises a cell a spreadsheet would run as a formula
// (one starting with =, +, -, @, tab or carriage return) by prefixing '.
func SpreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteResults writes every row of a batch, in input order, as CSV or JSONL.
func (s *Store) WriteResults(ctx context.Context, w io.Writer, batch, format string) error {
	meta, _, err := s.Batch(ctx, batch)
	if err != nil {
		return err
	}
	var write func(Result) error
	var cw *csv.Writer
	switch format {
	case FormatCSV:
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return fmt.Errorf("results %s: %w", batch, err)
		}
		write = func(r Result) error { return cw.Write(r.csvRecord()) }
	case FormatJSONL:
		enc := json.NewEncoder(w)
		write = func(r Result) error { return enc.Encode(r) }
	default:
		return fmt.Errorf("results: unknown format %q (want csv or jsonl)", format)
	}
	for from := 0; from < meta.Rows; from += resultPage {
		jobs, err := s.Jobs(ctx, batch, from, min(resultPage, meta.Rows-from))
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if err := write(ResultOf(j)); err != nil {
				return fmt.Errorf("results %s: %w", batch, err)
			}
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("results %s: %w", batch, err)
		}
	}
	return nil
}

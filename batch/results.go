package batch

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/seedbatch/seedbatch/fetch"
	"github.com/seedbatch/seedbatch/tasks"
)

// Result formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

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
	// FileCheck says, when the files were checked on disk, whether each is
	// the one recorded: "ok", or what is missing or differs.
	FileCheck string `json:"file_check,omitempty"`
	// FileURLs link to the files, one per file, when they are stored in a
	// bucket (see ResultsOptions.Objects): signed URLs where the bucket
	// signs them.
	FileURLs []string `json:"file_urls,omitempty"`
	// Input holds a rejected row's cells as written: the CSV form shows
	// them in the input columns instead of what could be read of them.
	Input tasks.Input `json:"input,omitempty"`
}

// ResultOf turns a job into its results row.
func ResultOf(j Job) Result {
	return Result{Input: j.Input,
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

// csvHeader names the columns of a CSV results file: each is one of
// tasks.Columns or tasks.ResultColumns, so that a results file can be read
// again as input.
var csvHeader = []string{"row", "line", "id", "mode", "prompt", "image_urls", "duration", "resolution",
	"aspect_ratio", "sound", "fixed_lens", "provider", "state", "task_id", "fail_code", "fail_msg",
	"result_urls", "enqueued_at", "submitted_at", "completed_at", "cost_ms", "files", "sizes", "sha256",
	"downloaded_at", "file_check", "file_urls"}

func (r Result) csvRecord() []string {
	mode, prompt, urls, dur := r.Mode, r.Prompt, strings.Join(r.ImageURLs, "|"), strconv.Itoa(r.Duration)
	res, aspect, sound, lens, prov := r.Resolution, r.AspectRatio, strconv.FormatBool(r.Sound), strconv.FormatBool(r.FixedLens), r.Provider
	if r.Input != nil {
		// A rejected row shows its cells as written, to be corrected.
		in := r.Input
		mode, prompt, urls, dur = in["mode"], in["prompt"], in["image_urls"], in["duration"]
		res, aspect, sound, lens, prov = in["resolution"], in["aspect_ratio"], in["sound"], in["fixed_lens"], in["provider"]
	}
	rec := []string{strconv.Itoa(r.Row), strconv.Itoa(r.Line), r.ID, mode, prompt, urls, dur, res, aspect,
		sound, lens, prov, r.State, r.TaskID, r.FailCode, r.FailMsg, strings.Join(r.ResultURLs, "|"),
		r.EnqueuedAt, r.SubmittedAt, r.CompletedAt, strconv.FormatInt(r.CostMS, 10)}
	var paths, sizes, sums []string
	for _, f := range r.Files {
		paths = append(paths, f.Path)
		sizes = append(sizes, strconv.FormatInt(f.Size, 10))
		sums = append(sums, f.SHA256)
	}
	rec = append(rec, strings.Join(paths, "|"), strings.Join(sizes, "|"), strings.Join(sums, "|"), r.DownloadedAt, r.FileCheck,
		strings.Join(r.FileURLs, "|"))
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

// ResultsOptions says how WriteResults writes.
type ResultsOptions struct {
	// Format is FormatCSV (the default) or FormatJSONL.
	Format string
	// FilesDir, when set, is the output directory the rows' files were
	// stored under: each recorded file is checked there (its size and
	// SHA-256, see fetch.Verify), and the row's file_check says "ok" or
	// what is missing or differs. Empty: nothing is checked.
	FilesDir string
	// Objects, when set, is the bucket the rows' files were stored in:
	// each row's FileURLs link to its objects.
	Objects Objects
	// CheckObjects checks each recorded file in Objects as FilesDir does
	// on disk (reading every object whole).
	CheckObjects bool
}

// Objects is a bucket holding the rows' files (objstore.Bucket).
type Objects interface {
	// Verify checks that key holds size bytes with this SHA-256 (hex).
	Verify(ctx context.Context, key string, size int64, sha256 string) error
	// Link returns a URL of key, valid for expiry when it is signed.
	Link(ctx context.Context, key string, expiry time.Duration) (string, error)
}

// LinkExpiry is how long the signed links of a results file last: 7 days,
// the longest S3 and Cloud Storage sign for.
const LinkExpiry = 7 * 24 * time.Hour

// ResultsReport says what WriteResults wrote.
type ResultsReport struct {
	// Rows counts the rows written.
	Rows int
	// Checked counts the rows whose files were checked; Mismatched those
	// of them with a file missing, unreadable or not the one recorded.
	Checked, Mismatched int
}

// WriteResults writes every row of a batch, in input order, as CSV or JSONL.
func (s *Store) WriteResults(ctx context.Context, w io.Writer, batch string, opts ResultsOptions) (ResultsReport, error) {
	var rep ResultsReport
	if _, err := s.Meta(ctx, batch); err != nil {
		return rep, err
	}
	var write func(Result) error
	var cw *csv.Writer
	switch cmp.Or(opts.Format, FormatCSV) {
	case FormatCSV:
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return rep, fmt.Errorf("results %s: %w", batch, err)
		}
		write = func(r Result) error { return cw.Write(r.csvRecord()) }
	case FormatJSONL:
		enc := json.NewEncoder(w)
		write = func(r Result) error { return enc.Encode(r) }
	default:
		return rep, fmt.Errorf("results: unknown format %q (want csv or jsonl)", opts.Format)
	}
	for j, err := range s.All(ctx, batch) {
		if err != nil {
			return rep, err
		}
		r := ResultOf(j)
		if opts.FilesDir != "" && len(j.Files) > 0 {
			rep.Checked++
			if r.FileCheck = checkFiles(opts.FilesDir, j.Files); r.FileCheck != fileCheckOK {
				rep.Mismatched++
			}
		}
		if opts.Objects != nil && len(j.Files) > 0 {
			if r.FileURLs, err = links(ctx, opts.Objects, j.Files); err != nil {
				return rep, fmt.Errorf("results %s: %w", batch, err)
			}
			if opts.CheckObjects {
				rep.Checked++
				if r.FileCheck = checkObjects(ctx, opts.Objects, j.Files); r.FileCheck != fileCheckOK {
					rep.Mismatched++
				}
			}
		}
		if err := write(r); err != nil {
			return rep, fmt.Errorf("results %s: %w", batch, err)
		}
		rep.Rows++
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return rep, fmt.Errorf("results %s: %w", batch, err)
		}
	}
	return rep, nil
}

// fileCheckOK is the file_check of a row whose files are all as recorded.
const fileCheckOK = "ok"

// checkFiles checks a row's files under dir: fileCheckOK, or what is
// wrong with each file that is not as recorded.
func checkFiles(dir string, files []File) string {
	var bad []string
	for _, f := range files {
		if err := fetch.Verify(dir, fetch.File{Path: f.Path, Size: f.Size, SHA256: f.SHA256}); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) == 0 {
		return fileCheckOK
	}
	return strings.Join(bad, "; ")
}

// checkObjects checks a row's files in a bucket, as checkFiles on disk.
func checkObjects(ctx context.Context, objs Objects, files []File) string {
	var bad []string
	for _, f := range files {
		if err := objs.Verify(ctx, f.Path, f.Size, f.SHA256); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) == 0 {
		return fileCheckOK
	}
	return strings.Join(bad, "; ")
}

// links returns a link to each of a row's files in a bucket.
func links(ctx context.Context, objs Objects, files []File) ([]string, error) {
	out := make([]string, 0, len(files))
	for _, f := range files {
		u, err := objs.Link(ctx, f.Path, LinkExpiry)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

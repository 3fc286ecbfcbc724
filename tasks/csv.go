package tasks

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Columns a CSV file may have. Only prompt is required; the others default
// to the config's defaults. Names are matched case-insensitively.
var Columns = []string{"id", "prompt", "mode", "image_urls", "duration", "resolution", "aspect_ratio", "sound", "fixed_lens", "provider"}

// ImageURLSeparator separates the URLs of the image_urls column.
const ImageURLSeparator = "|"

// Defaults of ReaderOptions.
const (
	MaxRowsDefault        = 1_000_000
	MaxRecordBytesDefault = 1 << 20
)

// ReaderOptions tunes a Reader.
type ReaderOptions struct {
	// Defaults fill absent and empty columns (zero fields take the package
	// defaults).
	Defaults Defaults
	// MaxRows refuses files with more data rows (default 1 000 000).
	MaxRows int
	// MaxRecordBytes refuses a file with a longer record, which is how an
	// unterminated quote shows itself early (default 1 MiB).
	MaxRecordBytes int
}

// Row is one data record of a CSV file.
type Row struct {
	// Index is the 0-based position among the file's data rows.
	Index int
	// Line is the 1-based line on which the record starts.
	Line int
	// Spec is the row with defaults applied; valid only when Err is nil.
	Spec Spec
	// Err, a *RowError, says why the row cannot be submitted.
	Err error
}

// RowError is a bad row: the rest of the file is still usable.
type RowError struct {
	Line, Index int
	Err         error
}

func (e *RowError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// FileError means the file as a whole cannot be used: nothing in it may be
// enqueued.
type FileError struct {
	// Line is where the problem was found (0 when it has none).
	Line int
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}
func (e *FileError) Unwrap() error { return e.Err }

// Reader streams rows from a CSV file in constant memory, except for one
// 64-bit hash per distinct id (to refuse repeated ids; see idSet).
type Reader struct {
	csv     *csv.Reader
	src     *countingReader
	opts    ReaderOptions
	col     map[string]int
	width   int
	index   int
	ids     idSet
	lastEnd int64
	// nextLine is where the record after the last one read starts, at the
	// earliest (blank lines may follow).
	nextLine int
}

// NewReader reads the header of r and returns a Reader of its rows. A UTF-8
// byte order mark is skipped; CRLF line ends and quoted newlines are fine.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	opts.Defaults = opts.Defaults.WithDefaults()
	opts.MaxRows = cmp.Or(opts.MaxRows, MaxRowsDefault)
	opts.MaxRecordBytes = cmp.Or(opts.MaxRecordBytes, MaxRecordBytesDefault)
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xEF\xBB\xBF")) {
		_, _ = br.Discard(3)
	}
	rd := &Reader{opts: opts, ids: newIDSet()}
	rd.src = &countingReader{r: br, limit: func(read int64) bool {
		return read-rd.lastEnd > int64(opts.MaxRecordBytes)+64<<10
	}}
	rd.csv = csv.NewReader(rd.src)
	rd.csv.FieldsPerRecord = -1
	rd.csv.ReuseRecord = true

	header, err := rd.csv.Read()
	if errors.Is(err, io.EOF) {
		return nil, &FileError{Err: errors.New("the file is empty: it needs a header line with at least a prompt column")}
	}
	if err != nil {
		return nil, rd.fileError(err)
	}
	rd.lastEnd = rd.csv.InputOffset()
	rd.nextLine = 2
	if err := rd.readHeader(header); err != nil {
		return nil, err
	}
	return rd, nil
}

func (rd *Reader) readHeader(header []string) error {
	rd.col = map[string]int{}
	rd.width = len(header)
	if len(header) == 1 && strings.Contains(header[0], ";") {
		return &FileError{Line: 1, Err: errors.New("the header has one column with ';' in it: the file looks semicolon-separated; save it as comma-separated CSV")}
	}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if name == "" {
			return &FileError{Line: 1, Err: fmt.Errorf("column %d has no name", i+1)}
		}
		if !slices.Contains(Columns, name) {
			return &FileError{Line: 1, Err: fmt.Errorf("unknown column %q (known: %s)", h, strings.Join(Columns, ", "))}
		}
		if _, dup := rd.col[name]; dup {
			return &FileError{Line: 1, Err: fmt.Errorf("column %q appears twice", name)}
		}
		rd.col[name] = i
	}
	if _, ok := rd.col["prompt"]; !ok {
		return &FileError{Line: 1, Err: errors.New("no prompt column")}
	}
	return nil
}

// Next returns the next row, io.EOF after the last, or a *FileError when the
// file turns out to be unusable (an unterminated quote, too many rows, an
// oversized record, a read error).
func (rd *Reader) Next() (Row, error) {
	rec, err := rd.csv.Read()
	if errors.Is(err, io.EOF) {
		return Row{}, io.EOF
	}
	var pe *csv.ParseError
	if err != nil && errors.As(err, &pe) && rowLevel(pe) {
		// The reader skips the rest of the line: the next rows are intact.
		rd.lastEnd = rd.csv.InputOffset()
		rd.nextLine = pe.Line + 1
		row := Row{Index: rd.index, Line: pe.StartLine}
		rd.index++
		why := fmt.Sprintf("a quote inside an unquoted field (byte %d of the line): quote the whole field and double the quote", pe.Column)
		if errors.Is(pe.Err, csv.ErrQuote) {
			why = fmt.Sprintf("text after a closing quote (byte %d of the line): quote the whole field and double any quote inside it", pe.Column)
		}
		row.Err = &RowError{Line: row.Line, Index: row.Index, Err: errors.New(why)}
		return row, rd.checkCount()
	}
	if err != nil {
		return Row{}, rd.fileError(err)
	}
	rd.lastEnd = rd.csv.InputOffset()
	line, _ := rd.csv.FieldPos(0)
	last, _ := rd.csv.FieldPos(len(rec) - 1)
	rd.nextLine = last + strings.Count(rec[len(rec)-1], "\n") + 1
	row := Row{Index: rd.index, Line: line}
	rd.index++
	spec, err := rd.spec(rec, line)
	if err != nil {
		row.Err = &RowError{Line: line, Index: row.Index, Err: err}
	} else {
		row.Spec = spec
	}
	return row, rd.checkCount()
}

func (rd *Reader) checkCount() error {
	if rd.index > rd.opts.MaxRows {
		return &FileError{Err: fmt.Errorf("more than %d rows; split the file", rd.opts.MaxRows)}
	}
	return nil
}

func (rd *Reader) fileError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrQuote) {
			return &FileError{Line: pe.StartLine, Err: fmt.Errorf("a quoted field that starts here is not closed properly (it would swallow the rows after it)")}
		}
		if errors.Is(pe.Err, errRecordTooLarge) {
			return &FileError{Line: pe.StartLine, Err: fmt.Errorf("a record longer than %d bytes (is a quote left open?)", rd.opts.MaxRecordBytes)}
		}
		return &FileError{Line: pe.StartLine, Err: pe.Err}
	}
	if errors.Is(err, errRecordTooLarge) {
		return &FileError{Line: rd.nextLine, Err: fmt.Errorf("a record longer than %d bytes (is a quote left open?)", rd.opts.MaxRecordBytes)}
	}
	return &FileError{Err: fmt.Errorf("read: %w", err)}
}

// spec turns one record into a Spec, applying defaults and validating it.
func (rd *Reader) spec(rec []string, line int) (Spec, error) {
	if len(rec) != rd.width {
		return Spec{}, fmt.Errorf("has %d fields, the header has %d", len(rec), rd.width)
	}
	for i, f := range rec {
		if err := checkText(f); err != nil {
			return Spec{}, fmt.Errorf("column %d: %w", i+1, err)
		}
	}
	get := func(name string) string {
		if i, ok := rd.col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	d := rd.opts.Defaults
	s := Spec{
		ID:          get("id"),
		Mode:        cmp.Or(strings.ToLower(get("mode")), d.Mode),
		Prompt:      get("prompt"),
		Resolution:  cmp.Or(strings.ToLower(get("resolution")), d.Resolution),
		AspectRatio: cmp.Or(get("aspect_ratio"), d.AspectRatio),
		Provider:    cmp.Or(strings.ToLower(get("provider")), d.Provider),
		Duration:    d.Duration,
		Sound:       d.Sound,
		FixedLens:   d.FixedLens,
	}
	var errs []error
	if s.ID == "" {
		// A generated id never collides with one the file gives.
		s.ID = fmt.Sprintf("row-%d", line)
		for _, taken := rd.ids.line(s.ID); taken; _, taken = rd.ids.line(s.ID) {
			s.ID += "_"
		}
	}
	if v := get("image_urls"); v != "" {
		for _, u := range strings.Split(v, ImageURLSeparator) {
			if u = strings.TrimSpace(u); u != "" {
				s.ImageURLs = append(s.ImageURLs, u)
			}
		}
	}
	if v := get("duration"); v != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.ToLower(v), "s"))
		if err != nil {
			errs = append(errs, &FieldError{Field: "duration", Reason: fmt.Sprintf("%q is not a number of seconds", v)})
		}
		s.Duration = n
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"sound", &s.Sound}, {"fixed_lens", &s.FixedLens}} {
		if v := get(b.name); v != "" {
			val, err := parseBool(v)
			if err != nil {
				errs = append(errs, &FieldError{Field: b.name, Reason: err.Error()})
			}
			*b.dst = val
		}
	}
	if len(errs) == 0 {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if first, dup := rd.ids.line(s.ID); dup && len(errs) == 0 {
		errs = append(errs, &FieldError{Field: "id", Reason: fmt.Sprintf("%q is already used on line %d", s.ID, first)})
	} else if !dup {
		rd.ids.add(s.ID, line)
	}
	return s, errors.Join(errs...)
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "yes", "y", "1", "on":
		return true, nil
	case "false", "no", "n", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", v)
}

// checkText refuses invalid UTF-8 and control characters other than newline
// and tab, which no prompt needs and which break other tools.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8 (save the file as UTF-8)")
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("holds the control character %U", r)
		}
	}
	return nil
}

// rowLevel reports a parse error confined to one line, after which the
// reader goes on with the next line intact.
func rowLevel(pe *csv.ParseError) bool {
	return errors.Is(pe.Err, csv.ErrBareQuote) || (errors.Is(pe.Err, csv.ErrQuote) && pe.Line == pe.StartLine)
}

var errRecordTooLarge = errors.New("record too large")

// countingReader fails once limit says the current record is too long, so
// an unterminated quote cannot make the csv reader buffer the whole file.
type countingReader struct {
	r     io.Reader
	read  int64
	limit func(read int64) bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit(c.read) {
		return 0, errRecordTooLarge
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

// idSet maps the ids a file used to the line of each. It keeps a 64-bit
// hash of an id under a random seed rather than the id, which would keep
// the whole record it was read from. Two ids of a million-row file share a
// hash with a probability near 3·10^-8; the later row would be refused as a
// repeated id.
type idSet struct {
	seed  maphash.Seed
	lines *LineIndex
}

func newIDSet() idSet { return idSet{seed: maphash.MakeSeed(), lines: &LineIndex{}} }

// line returns the line that used id, if one did.
func (s idSet) line(id string) (int, bool) { return s.lines.Get(maphash.String(s.seed, id)) }

// add records that line used id.
func (s idSet) add(id string, line int) { s.lines.Put(maphash.String(s.seed, id), line) }

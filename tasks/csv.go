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

	textunicode "golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Columns a CSV file may have. Only prompt is required; the others default
// to the config's defaults. Names are matched case-insensitively.
var Columns = []string{"id", "prompt", "mode", "image_urls", "duration", "resolution", "aspect_ratio", "sound", "fixed_lens", "provider"}

// ResultColumns are the columns a results file adds to Columns. A CSV file
// may have them, so that a results file whose rejected rows were corrected
// can be read again: they are ignored, except that only the rows whose
// state is empty or rejected (and not as a duplicate, fail code
// CodeDuplicateRow) are read; the others already ran and are skipped (see
// Reader.Skipped). The leading quote a results file puts before a cell that
// a spreadsheet would run as a formula is taken off again.
var ResultColumns = []string{"row", "line", "state", "task_id", "fail_code", "fail_msg", "result_urls",
	"enqueued_at", "submitted_at", "completed_at", "cost_ms", "files", "sizes", "sha256", "downloaded_at", "file_check",
	"file_urls"}

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
	// Index is the 0-based position among the file's data rows (rows a
	// results file marks as already run are not counted).
	Index int
	// Line is the 1-based line on which the record starts.
	Line int
	// Spec is the row with defaults applied. For a bad row (Err set) it
	// holds what could be read; its ID is always set.
	Spec Spec
	// Input holds a bad row's cells as written, so that they can be shown
	// and corrected; nil for a good row.
	Input Input
	// Err, a *RowError, says why the row cannot be submitted.
	Err error
}

// Input is a row's cells as the file wrote them, by column (one of
// Columns): a column the file lacks, or a cell missing from a short row, is
// absent.
type Input map[string]string

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

// sniffBytes is how much of the file NewReader looks at to find its
// encoding and separator.
const sniffBytes = 64 << 10

// Reader streams rows from a CSV file in constant memory, except for one
// 64-bit hash per distinct id (to refuse repeated ids; see idSet).
type Reader struct {
	csv   *csv.Reader
	src   *countingReader
	opts  ReaderOptions
	comma rune
	col   map[string]int
	// names are the header's column names, lower case.
	names []string
	width int
	// results is set when the header has ResultColumns: a results file.
	results bool
	index   int
	skipped int
	ids     idSet
	lastEnd int64
	// nextLine is where the record after the last one read starts, at the
	// earliest (blank lines may follow).
	nextLine int
}

// NewReader reads the header of r and returns a Reader of its rows.
//
// The file is UTF-8, with or without a byte order mark, or UTF-16 (little
// or big endian) with a byte order mark, which NewReader decodes. Fields
// are separated by commas, or by tabs when the header line has tabs and no
// comma (a tab-separated export); a header with semicolons and no comma is
// refused, with a message saying how to save the file. CRLF line ends and
// quoted newlines are fine.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	opts.Defaults = opts.Defaults.WithDefaults()
	opts.MaxRows = cmp.Or(opts.MaxRows, MaxRowsDefault)
	opts.MaxRecordBytes = cmp.Or(opts.MaxRecordBytes, MaxRecordBytesDefault)
	br := bufio.NewReaderSize(r, sniffBytes)
	if bom, _ := br.Peek(2); len(bom) == 2 && (bom[0] == 0xFF && bom[1] == 0xFE || bom[0] == 0xFE && bom[1] == 0xFF) {
		order := textunicode.LittleEndian
		if bom[0] == 0xFE {
			order = textunicode.BigEndian
		}
		dec := textunicode.UTF16(order, textunicode.ExpectBOM).NewDecoder()
		br = bufio.NewReaderSize(transform.NewReader(br, dec), sniffBytes)
	}
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xEF\xBB\xBF")) {
		_, _ = br.Discard(3)
	}
	rd := &Reader{opts: opts, ids: newIDSet(), comma: sniffComma(br)}
	rd.src = &countingReader{r: br, limit: func(read int64) bool {
		return read-rd.lastEnd > int64(opts.MaxRecordBytes)+64<<10
	}}
	rd.csv = csv.NewReader(rd.src)
	rd.csv.Comma = rd.comma
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
	rd.src.forget(rd.lastEnd)
	rd.nextLine = 2
	if err := rd.readHeader(header); err != nil {
		return nil, err
	}
	return rd, nil
}

// sniffComma returns the field separator of the file br reads: a tab when
// its first line has a tab and no comma, else a comma.
func sniffComma(br *bufio.Reader) rune {
	head, _ := br.Peek(sniffBytes) // less at the end of the file
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	if bytes.IndexByte(head, '\t') >= 0 && bytes.IndexByte(head, ',') < 0 {
		return '\t'
	}
	return ','
}

func (rd *Reader) readHeader(header []string) error {
	rd.col = map[string]int{}
	rd.width = len(header)
	joined := strings.Join(header, ",")
	switch {
	case strings.ContainsRune(joined, 0):
		return &FileError{Line: 1, Err: errors.New("the header holds NUL bytes: the file looks like UTF-16 without a byte order mark; save it as UTF-8 (in a spreadsheet: CSV UTF-8)")}
	case !utf8.ValidString(joined):
		return &FileError{Line: 1, Err: errNotUTF8}
	case len(header) == 1 && strings.Contains(header[0], ";"):
		return &FileError{Line: 1, Err: errors.New("the header has one column with ';' in it: the file looks semicolon-separated; save it as comma-separated CSV")}
	}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case name == "":
			return &FileError{Line: 1, Err: fmt.Errorf("column %d of the header has no name: name it, or delete the column", i+1)}
		case slices.Contains(ResultColumns, name):
			rd.results = true
		case !slices.Contains(Columns, name):
			return &FileError{Line: 1, Err: fmt.Errorf("unknown column %q (known: %s)", h, strings.Join(Columns, ", "))}
		}
		if _, dup := rd.col[name]; dup {
			return &FileError{Line: 1, Err: fmt.Errorf("column %q appears twice", name)}
		}
		rd.col[name] = i
		rd.names = append(rd.names, name)
	}
	if _, ok := rd.col["prompt"]; !ok {
		return &FileError{Line: 1, Err: errors.New("no prompt column")}
	}
	return nil
}

// errNotUTF8 refuses a file that is not UTF-8.
var errNotUTF8 = errors.New("the file is not UTF-8 (a spreadsheet's plain \"CSV\" export often writes Windows-1252): " +
	"save it as UTF-8 (in a spreadsheet: CSV UTF-8) and run it again")

// Skipped is the number of rows a results file marks as already run, which
// the reader skipped (see ResultColumns).
func (rd *Reader) Skipped() int { return rd.skipped }

// Next returns the next row, io.EOF after the last, or a *FileError when the
// file turns out to be unusable (an unterminated quote, text that is not
// UTF-8, too many rows, an oversized record, a read error, no rows at all).
func (rd *Reader) Next() (Row, error) {
	for {
		row, skip, err := rd.next()
		if !skip || err != nil {
			return row, err
		}
		rd.skipped++
	}
}

// next reads one record; skip says it is a row a results file marks as
// already run.
func (rd *Reader) next() (row Row, skip bool, err error) {
	rec, err := rd.csv.Read()
	if errors.Is(err, io.EOF) {
		switch {
		case rd.index > 0:
			return Row{}, false, io.EOF
		case rd.skipped > 0:
			return Row{}, false, &FileError{Err: fmt.Errorf("no rows to run: each of the %d rows of this results file already ran "+
				"(only rows whose state is empty or rejected are read again)", rd.skipped)}
		}
		return Row{}, false, &FileError{Err: errors.New("no rows: the file has a header line but no data rows")}
	}
	var pe *csv.ParseError
	if err != nil && errors.As(err, &pe) && rowLevel(pe) {
		// The reader skips the rest of the line: the next rows are intact.
		raw := rd.src.since(rd.lastEnd, rd.csv.InputOffset())
		rd.lastEnd = rd.csv.InputOffset()
		rd.src.forget(rd.lastEnd)
		rd.nextLine = pe.Line + 1
		rec, why := rd.quoteError(raw, pe)
		if rd.skip(rec) {
			return Row{}, true, nil
		}
		if err := rd.checkUTF8(rec, pe.StartLine); err != nil {
			return Row{}, false, err
		}
		row := Row{Index: rd.index, Line: pe.StartLine, Input: rd.input(rec)}
		rd.index++
		row.Spec, _ = rd.parse(rec, row.Line)
		row.Err = &RowError{Line: row.Line, Index: row.Index, Err: errors.New(why)}
		return row, false, rd.checkCount()
	}
	if err != nil {
		return Row{}, false, rd.fileError(err)
	}
	rd.lastEnd = rd.csv.InputOffset()
	rd.src.forget(rd.lastEnd)
	line, _ := rd.csv.FieldPos(0)
	last, _ := rd.csv.FieldPos(len(rec) - 1)
	rd.nextLine = last + strings.Count(rec[len(rec)-1], "\n") + 1
	if rd.skip(rec) {
		return Row{}, true, nil
	}
	if err := rd.checkUTF8(rec, line); err != nil {
		return Row{}, false, err
	}
	row = Row{Index: rd.index, Line: line}
	rd.index++
	spec, errs := rd.parse(rec, line)
	row.Spec = spec
	switch {
	case len(rec) != rd.width:
		err = fmt.Errorf("has %d fields, the header has %d (is a field with a separator in it not quoted?)", len(rec), rd.width)
	default:
		err = rd.checkControl(rec)
		if err == nil {
			err = errors.Join(errs...)
		}
	}
	if err != nil {
		row.Err = &RowError{Line: line, Index: row.Index, Err: err}
		row.Input = rd.input(rec)
	}
	return row, false, rd.checkCount()
}

// quoteError reads again, leniently, the line raw that the csv reader
// refused with pe, and says what is wrong with it, naming the column.
func (rd *Reader) quoteError(raw []byte, pe *csv.ParseError) ([]string, string) {
	raw = bytes.TrimLeft(raw, "\r\n") // blank lines before the record
	lr := csv.NewReader(bytes.NewReader(raw))
	lr.Comma, lr.LazyQuotes, lr.FieldsPerRecord = rd.comma, true, -1
	rec, _ := lr.Read()
	where := ""
	for i := range rec {
		if _, col := lr.FieldPos(i); col > pe.Column {
			break
		}
		if i < len(rd.names) {
			where = " in the " + rd.names[i] + " column"
		}
	}
	line := bytes.TrimRight(raw, "\r\n")
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return rec, fmt.Sprintf("a quote inside an unquoted field%s (byte %d of the line): quote the whole field and double the quote", where, pe.Column)
	case pe.Column > len(line):
		return rec, fmt.Sprintf("a quoted field%s is never closed (the file ends inside it): add the closing quote", where)
	}
	return rec, fmt.Sprintf("text after a closing quote%s (byte %d of the line): quote the whole field and double any quote inside it", where, pe.Column)
}

// skip reports whether rec is a row of a results file that already ran:
// one whose state is neither empty nor rejected, or a rejected duplicate.
func (rd *Reader) skip(rec []string) bool {
	if !rd.results {
		return false
	}
	switch strings.TrimSpace(rd.cell(rec, "state")) {
	case "":
		return false
	case string(StateRejected):
		return strings.TrimSpace(rd.cell(rec, "fail_code")) == CodeDuplicateRow
	}
	return true
}

// cell returns the cell of column name in rec, as written ("" when the file
// or the row lacks it); in a results file, without the quote that kept a
// spreadsheet from running it as a formula.
func (rd *Reader) cell(rec []string, name string) string {
	i, ok := rd.col[name]
	if !ok || i >= len(rec) {
		return ""
	}
	v := rec[i]
	if rd.results && len(v) > 1 && v[0] == '\'' && strings.ContainsRune(formulaStarts, rune(v[1])) {
		v = v[1:]
	}
	return v
}

// formulaStarts are the first characters that make a spreadsheet run a cell.
const formulaStarts = "=+-@\t\r"

// input returns the cells of rec that belong to Columns.
func (rd *Reader) input(rec []string) Input {
	in := Input{}
	for _, name := range Columns {
		if i, ok := rd.col[name]; ok && i < len(rec) {
			in[name] = rd.cell(rec, name)
		}
	}
	return in
}

// checkUTF8 refuses the file when a field of rec (on line) is not UTF-8:
// the file is in another encoding, and every row would be read wrong.
func (rd *Reader) checkUTF8(rec []string, line int) error {
	for _, f := range rec {
		if !utf8.ValidString(f) {
			return &FileError{Line: line, Err: errNotUTF8}
		}
	}
	return nil
}

// checkControl refuses control characters other than newline and tab,
// which no prompt needs and which break other tools; the error names the
// column.
func (rd *Reader) checkControl(rec []string) error {
	for i, f := range rec {
		for _, r := range f {
			if unicode.IsControl(r) && r != '\n' && r != '\t' {
				return &FieldError{Field: rd.names[i], Reason: fmt.Sprintf("holds the control character %U: delete it", r)}
			}
		}
	}
	return nil
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

// parse turns one record into a Spec, applying defaults and validating it:
// it returns what it could read, and each problem found. A short record's
// missing cells count as empty. It records the row's id, so that a later
// row with the same id is refused.
func (rd *Reader) parse(rec []string, line int) (Spec, []error) {
	get := func(name string) string { return strings.TrimSpace(rd.cell(rec, name)) }
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
	return s, errs
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

// rowLevel reports a parse error confined to one line, after which the
// reader goes on with the next line intact.
func rowLevel(pe *csv.ParseError) bool {
	return errors.Is(pe.Err, csv.ErrBareQuote) || (errors.Is(pe.Err, csv.ErrQuote) && pe.Line == pe.StartLine)
}

var errRecordTooLarge = errors.New("record too large")

// countingReader fails once limit says the current record is too long, so
// an unterminated quote cannot make the csv reader buffer the whole file.
// It keeps the bytes read since the end of the last record (a record and
// the csv reader's read-ahead), so that a line the csv reader refuses can
// be read again.
type countingReader struct {
	r     io.Reader
	read  int64
	limit func(read int64) bool
	// kept[start:] holds the bytes read from offset keptFrom on.
	kept     []byte
	start    int
	keptFrom int64
}

// keptBytes is the initial room for the bytes a countingReader keeps.
const keptBytes = 64 << 10

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit(c.read) {
		return 0, errRecordTooLarge
	}
	n, err := c.r.Read(p)
	if c.kept == nil {
		c.kept = make([]byte, 0, max(keptBytes, 2*n))
	}
	if cap(c.kept)-len(c.kept) < n && c.start > 0 {
		// Move what is kept to the front rather than grow.
		c.kept = c.kept[:copy(c.kept, c.kept[c.start:])]
		c.start = 0
	}
	c.kept = append(c.kept, p[:n]...)
	c.read += int64(n)
	return n, err
}

// forget drops the bytes kept before offset.
func (c *countingReader) forget(offset int64) {
	drop := min(max(offset-c.keptFrom, 0), int64(len(c.kept)-c.start))
	c.start += int(drop)
	c.keptFrom += drop
}

// since returns the bytes kept from offset from to offset to.
func (c *countingReader) since(from, to int64) []byte {
	live := c.kept[c.start:]
	lo := min(max(from-c.keptFrom, 0), int64(len(live)))
	hi := min(max(to-c.keptFrom, lo), int64(len(live)))
	return live[lo:hi]
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

package tasks

import (
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
	"unicode/utf16"
)

// readAll reads every row of a CSV text.
func readAll(t *testing.T, text string, opts ReaderOptions) ([]Row, error) {
	t.Helper()
	rd, err := NewReader(strings.NewReader(text), opts)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, r)
	}
}

func TestReaderGoodFile(t *testing.T) {
	text := "\xEF\xBB\xBFid,Prompt,duration,sound,image_urls,mode\r\n" +
		"a,\"first prompt, with a comma\",8,yes,,\r\n" +
		"b,\"second\r\nprompt over two lines\",12s,0,https://x.test/a.png|https://x.test/b.png,image-to-video\r\n" +
		"\r\n" +
		",third prompt,,,,\r\n"
	rows, err := readAll(t, text, ReaderOptions{Defaults: Defaults{AspectRatio: "9:16"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(rows))
	}
	for _, r := range rows {
		if r.Err != nil {
			t.Fatalf("row %d: %v", r.Index, r.Err)
		}
	}
	a, b, c := rows[0].Spec, rows[1].Spec, rows[2].Spec
	if a.ID != "a" || a.Prompt != "first prompt, with a comma" || a.Duration != 8 || !a.Sound || a.AspectRatio != "9:16" || a.Mode != ModeDefault {
		t.Errorf("row a = %+v", a)
	}
	if b.Prompt != "second\nprompt over two lines" || b.Duration != 12 || b.Sound || len(b.ImageURLs) != 2 || b.Mode != "image-to-video" {
		t.Errorf("row b = %+v", b)
	}
	if rows[1].Line != 3 || rows[2].Line != 6 {
		t.Errorf("lines = %d, %d; want 3, 6", rows[1].Line, rows[2].Line)
	}
	if c.ID != "row-6" || c.Duration != DurationDefault || c.Resolution != ResolutionDefault {
		t.Errorf("row c = %+v", c)
	}
}

func TestReaderBadRows(t *testing.T) {
	tests := []struct {
		name, row, want string
	}{
		{"short prompt", "x1,ab,4,720p", "prompt: has 2 characters"},
		{"duration", "x2,a fine prompt,5,720p", "duration: 5 is not one of"},
		{"duration text", "x3,a fine prompt,ten,720p", `duration: "ten" is not a number`},
		{"resolution", "x4,a fine prompt,4,1080p", `resolution: "1080p"`},
		{"field count", "x5,a fine prompt,4", "has 3 fields, the header has 4"},
		{"bare quote", `x6,a "fine" prompt,4,720p`, "a quote inside an unquoted field"},
		{"text after a quote", `x6b,"a fine" prompt,4,720p`, "text after a closing quote"},
		{"control character", "x7,a fine\x00 prompt,4,720p", "prompt: holds the control character U+0000"},
		{"duplicate id", "ok,another prompt,4,720p", `id: "ok" is already used on line 2`},
		{"too long", "x9," + strings.Repeat("é", PromptMaxRunes+1) + ",4,720p", "at most 2500 allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "id,prompt,duration,resolution\nok,a good prompt,4,720p\n" + tt.row + "\nlast,the last good prompt,8,480p\n"
			rows, err := readAll(t, text, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 3 {
				t.Fatalf("got %d rows, want 3", len(rows))
			}
			if rows[0].Err != nil || rows[2].Err != nil {
				t.Fatalf("good rows failed: %v, %v", rows[0].Err, rows[2].Err)
			}
			var re *RowError
			if !errors.As(rows[1].Err, &re) || re.Line != 3 || re.Index != 1 {
				t.Fatalf("bad row error = %#v, want a RowError on line 3", rows[1].Err)
			}
			if !strings.Contains(re.Error(), tt.want) || !strings.HasPrefix(re.Error(), "line 3: ") {
				t.Errorf("error = %q, want it to contain %q", re.Error(), tt.want)
			}
		})
	}
}

func TestReaderBadFiles(t *testing.T) {
	tests := []struct {
		name, text, want string
		line             int
	}{
		{"empty", "", "the file is empty", 0},
		{"no prompt column", "id,mode\na,text-to-video\n", "no prompt column", 1},
		{"unknown column", "id,prompt,colour\na,b c d,red\n", `unknown column "colour"`, 1},
		{"duplicate column", "prompt,Prompt\nabc,def\n", `column "prompt" appears twice`, 1},
		{"semicolons", "id;prompt\na;hello there\n", "semicolon-separated", 1},
		{"unterminated quote", "id,prompt\na,\"open quote\nb,swallowed row\nc,another\n", "not closed properly", 2},
		{"windows-1252", "id,prompt\na,a caf\xe9 at dawn\nb,another caf\xe9\n", "save it as UTF-8", 2},
		{"windows-1252 after good rows", "id,prompt\na,a good row\nb,a na\xefve row\n", "save it as UTF-8", 3},
		{"windows-1252 header", "id,pr\xe9cis\na,b c d\n", "save it as UTF-8", 1},
		{"utf-16 without a byte order mark", "i\x00d\x00,\x00p\x00r\x00o\x00m\x00p\x00t\x00\n\x00", "UTF-16 without a byte order mark", 1},
		{"header only", "id,prompt\n", "no rows: the file has a header line but no data rows", 0},
		{"header only, blank lines", "id,prompt\r\n\r\n\r\n", "no rows", 0},
		{"header without a line end", "prompt", "no rows", 0},
		{"results file that all ran", "row,line,id,prompt,state\n0,2,a,first scene,done\n1,3,b,second scene,failed\n",
			"each of the 2 rows of this results file already ran", 0},
		{"column without a name", "id,prompt,\na,b c d,\n", "column 3 of the header has no name", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(t, tt.text, ReaderOptions{})
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FileError", err)
			}
			if !strings.Contains(fe.Error(), tt.want) || fe.Line != tt.line {
				t.Errorf("err = %q (line %d), want %q on line %d", fe.Error(), fe.Line, tt.want, tt.line)
			}
		})
	}
}

func TestReaderLimits(t *testing.T) {
	_, err := readAll(t, "prompt\nabc\ndef\nghi\n", ReaderOptions{MaxRows: 2})
	var fe *FileError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "more than 2 rows") {
		t.Errorf("max rows: err = %v", err)
	}
	// An open quote in a large file is refused without reading it whole.
	text := "prompt\n\"open\n" + strings.Repeat("a line of text that will never end\n", 100_000)
	_, err = readAll(t, text, ReaderOptions{MaxRecordBytes: 64 << 10})
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "longer than") || fe.Line != 2 {
		t.Errorf("record size: err = %v", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add("id,prompt\na,hello world\n")
	f.Add("\xEF\xBB\xBFprompt,duration\r\n\"multi\r\nline\",8\r\n")
	f.Add("prompt\n\"open")
	f.Add("id;prompt\n")
	f.Add("id\tprompt\na\thello \"there\n")
	f.Add("\xFF\xFEp\x00r\x00o\x00m\x00p\x00t\x00\n\x00a\x00b\x00c\x00\n\x00")
	f.Add("row,id,prompt,state\n0,a,hello,done\n1,b,'=hi there,rejected\n")
	f.Fuzz(func(t *testing.T, text string) {
		rd, err := NewReader(strings.NewReader(text), ReaderOptions{MaxRows: 1000})
		if err != nil {
			return
		}
		for i := 0; i < 2000; i++ {
			r, err := rd.Next()
			if err != nil {
				return
			}
			if r.Err == nil {
				if verr := r.Spec.Validate(); verr != nil {
					t.Fatalf("row accepted with invalid spec: %v", verr)
				}
			}
		}
	})
}

func TestGeneratedIDsNeverCollide(t *testing.T) {
	rows, err := readAll(t, "id,prompt\nrow-3,an explicit id\n,a row without one\n", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Err != nil || rows[1].Err != nil || rows[1].Spec.ID == "row-3" {
		t.Errorf("rows: %+v", rows)
	}
}

// utf16File encodes text as UTF-16 with a byte order mark.
func utf16File(text string, bigEndian bool) string {
	var b []byte
	put := func(u uint16) {
		if bigEndian {
			b = binary.BigEndian.AppendUint16(b, u)
		} else {
			b = binary.LittleEndian.AppendUint16(b, u)
		}
	}
	put(0xFEFF)
	for _, u := range utf16.Encode([]rune(text)) {
		put(u)
	}
	return string(b)
}

// TestReaderEncodingsAndSeparators reads the same rows as a spreadsheet
// may export them.
func TestReaderEncodingsAndSeparators(t *testing.T) {
	t.Parallel()
	comma := "id,prompt,duration\r\nà1,\"café, at dawn\",8\r\nb2,a second scène,4\r\n"
	tabs := "id\tprompt\tduration\r\nà1\t\"café, at dawn\"\t8\r\nb2\ta second scène\t4\r\n"
	tests := []struct{ name, text string }{
		{"utf-8", comma},
		{"utf-8 with a byte order mark", "\xEF\xBB\xBF" + comma},
		{"utf-16 little endian", utf16File(comma, false)},
		{"utf-16 big endian", utf16File(comma, true)},
		{"tab-separated", tabs},
		{"tab-separated utf-16 (a spreadsheet's unicode text)", utf16File(tabs, false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, tt.text, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 {
				t.Fatalf("got %d rows, want 2", len(rows))
			}
			for _, r := range rows {
				if r.Err != nil {
					t.Fatalf("line %d: %v", r.Line, r.Err)
				}
			}
			a, b := rows[0].Spec, rows[1].Spec
			if a.ID != "à1" || a.Prompt != "café, at dawn" || a.Duration != 8 || b.ID != "b2" || b.Prompt != "a second scène" {
				t.Errorf("rows: %+v, %+v", a, b)
			}
			if rows[1].Line != 3 {
				t.Errorf("second row on line %d, want 3", rows[1].Line)
			}
		})
	}
}

// TestReaderBadRowKeepsItsCells checks that a rejected row keeps its id
// (or row-<line>) and its cells as written, whatever made it bad.
func TestReaderBadRowKeepsItsCells(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, row string
		id        string
		input     Input
	}{
		{"short prompt", "h9,ab,4,720p", "h9", Input{"id": "h9", "prompt": "ab", "duration": "4", "resolution": "720p"}},
		{"bad duration", "h10,a fine prompt,5,720p", "h10", Input{"id": "h10", "prompt": "a fine prompt", "duration": "5", "resolution": "720p"}},
		{"duration text", "h11,a fine prompt, ten ,720p", "h11", Input{"id": "h11", "prompt": "a fine prompt", "duration": " ten ", "resolution": "720p"}},
		{"no id", ",ab,4,720p", "row-3", Input{"id": "", "prompt": "ab", "duration": "4", "resolution": "720p"}},
		{"short row", "h12,a fine prompt", "h12", Input{"id": "h12", "prompt": "a fine prompt"}},
		{"long row", "h13,a fine prompt,4,720p,extra", "h13", Input{"id": "h13", "prompt": "a fine prompt", "duration": "4", "resolution": "720p"}},
		{"bare quote", `h14,a "fine" prompt,4,720p`, "h14", Input{"id": "h14", "prompt": `a "fine" prompt`, "duration": "4", "resolution": "720p"}},
		{"control character", "h15,a fine\x01 prompt,4,720p", "h15", Input{"id": "h15", "prompt": "a fine\x01 prompt", "duration": "4", "resolution": "720p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, "id,prompt,duration,resolution\nok,a good prompt,4,720p\n"+tt.row+"\n", ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := rows[1]
			if r.Err == nil {
				t.Fatalf("row accepted: %+v", r.Spec)
			}
			if r.Spec.ID != tt.id {
				t.Errorf("id %q, want %q", r.Spec.ID, tt.id)
			}
			if !maps.Equal(r.Input, tt.input) {
				t.Errorf("input %q, want %q", r.Input, tt.input)
			}
			if rows[0].Input != nil {
				t.Errorf("a good row has input cells: %q", rows[0].Input)
			}
		})
	}
}

// TestReaderQuoteMessages checks what a row with a stray or unclosed quote
// is told, naming the column.
func TestReaderQuoteMessages(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, text, want string }{
		{"unclosed on the last line", "id,prompt\na,fine\nc,\"open quote", "a quoted field in the prompt column is never closed (the file ends inside it)"},
		{"unclosed on the last line, with a line end", "id,prompt\na,fine\nc,\"open quote\n", "a quoted field in the prompt column is never closed"},
		{"text after a closing quote", "id,prompt,duration\na,\"a fine\" prompt,4\n", "text after a closing quote in the prompt column (byte 10 of the line)"},
		{"bare quote", "id,prompt,duration\na,a \"fine\" prompt,4\n", "a quote inside an unquoted field in the prompt column (byte 5 of the line)"},
		{"bare quote in the id", "id,prompt\nx\"y,a fine prompt\n", "a quote inside an unquoted field in the id column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows, err := readAll(t, tt.text, ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			last := rows[len(rows)-1]
			if last.Err == nil || !strings.Contains(last.Err.Error(), tt.want) {
				t.Errorf("error %v, want %q", last.Err, tt.want)
			}
		})
	}
}

// TestReaderResultsFile reads a results file whose rejected rows were
// corrected: the rows that ran are skipped, the others read again.
func TestReaderResultsFile(t *testing.T) {
	t.Parallel()
	text := "row,line,id,mode,prompt,duration,resolution,state,fail_code,fail_msg,files,sha256\n" +
		"0,2,a,text-to-video,a scene that ran,4,720p,done,,,out/a.mp4,abc\n" +
		"1,3,h9,,a longer prompt now,,,rejected,INVALID_ROW,line 3: prompt: has 2 characters,,\n" +
		"2,4,h10,,another scene,8,,rejected,INVALID_ROW,line 4: duration: 5 is not one of 4 8 12,,\n" +
		"3,5,d,text-to-video,a scene that ran,4,720p,rejected,DUPLICATE_ROW,line 5: identical to line 2,,\n" +
		"4,6,f,text-to-video,'-- a dash scene,4,720p,failed,GENERATION_FAILED,,,\n" +
		",,new,,'=a scene added by hand,,,,,,,\n"
	rd, err := NewReader(strings.NewReader(text), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []Row
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 3 || rd.Skipped() != 3 {
		t.Fatalf("read %d rows and skipped %d, want 3 and 3: %+v", len(got), rd.Skipped(), got)
	}
	for i, want := range []struct {
		id, prompt string
		line, dur  int
	}{{"h9", "a longer prompt now", 3, 4}, {"h10", "another scene", 4, 8}, {"new", "=a scene added by hand", 7, 4}} {
		r := got[i]
		if r.Err != nil || r.Index != i || r.Line != want.line || r.Spec.ID != want.id || r.Spec.Prompt != want.prompt || r.Spec.Duration != want.dur {
			t.Errorf("row %d: %+v (err %v), want %+v", i, r.Spec, r.Err, want)
		}
	}
}

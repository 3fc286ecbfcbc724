package tasks

import (
	"errors"
	"io"
	"strings"
	"testing"
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
		{"control character", "x7,a fine\x00 prompt,4,720p", "control character"},
		{"invalid utf-8", "x8,a fine \xff prompt,4,720p", "not valid UTF-8"},
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

package drill

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFuzz runs the fuzz step on a module of two targets, one of which
// fails on its seed input: the report must name that crash and only it.
func TestFuzz(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil || testing.Short() {
		t.Skip("needs the go toolchain and builds a module")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/fuzzme\n\ngo 1.22\n",
		"f/f_test.go": `package f

import "testing"

func FUZZFine(f *testing.F) {
	f.Add("seed")
	f.Fuzz(func(t *testing.T, s string) {})
}

func FUZZBroken(f *testing.F) {
	f.Add("seed")
	f.Fuzz(func(t *testing.T, s string) {
		if s == "seed" {
			t.Fatal("boom on the seed")
		}
	})
}
`,
	}
	for name, text := range files {
		// Written FUZZ here, so that no search for fuzz targets in this
		// module finds them.
		text = strings.ReplaceAll(text, "FUZZ", "Fuzz")
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := fuzz(t.Context(), Config{SourceDir: dir, FuzzTime: time.Second}.WithDefaults())
	if got.Skipped != "" || len(got.Runs) != 2 {
		t.Fatalf("fuzz step: %+v, want two runs", got)
	}
	for _, r := range got.Runs {
		broken := r.Target == "FuzzBroken"
		if r.Package != "./f/" || (r.Crash != "") != broken || (broken && !strings.Contains(r.Crash, "boom on the seed")) {
			t.Errorf("run %+v: want a crash only for FuzzBroken, saying why", r)
		}
	}
	if skipped := fuzz(t.Context(), Config{FuzzTime: time.Second}.WithDefaults()); skipped.Skipped == "" {
		t.Error("fuzz step without a source tree ran")
	}
}

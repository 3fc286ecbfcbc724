package worker_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/tasks"
	"github.com/seedbatch/seedbatch/worker"
)

func TestFilePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		batch string
		id    string
		i     int
		want  string
	}{
		{"first video", "b", "a", 0, "b/a.mp4"},
		{"second video", "b", "a", 1, "b/a+2.mp4"},
		{"third video", "b", "a", 2, "b/a+3.mp4"},
		{"row named like a second video", "b", "a-2", 0, "b/a-2.mp4"},
		{"row named with the index separator", "b", "a+2", 0, "b/" + tasks.SafeFileName("a+2") + ".mp4"},
		{"changed id, second video", "b", "a b", 1, "b/" + tasks.SafeFileName("a b") + "+2.mp4"},
		{"changed batch id", "b.", "a", 0, tasks.SafeFileName("b.") + "/a.mp4"},
	}
	for _, tt := range tests {
		if got := worker.FilePath(tt.batch, tt.id, tt.i); got != tt.want {
			t.Errorf("%s: FilePath(%q, %q, %d) = %q, want %q", tt.name, tt.batch, tt.id, tt.i, got, tt.want)
		}
	}
	// Rows and videos that shared paths under earlier rules.
	type video struct {
		id string
		i  int
	}
	seen := map[string]video{}
	for _, v := range []video{{"a", 0}, {"a", 1}, {"a", 2}, {"a-2", 0}, {"a-2", 1}, {"a~2", 0}, {"a+2", 0},
		{"a-3", 0}, {"a 2", 0}, {"a/2", 0}, {"a_2", 0}, {tasks.SafeFileName("a+2"), 0}} {
		p := worker.FilePath("b", v.id, v.i)
		if prev, ok := seen[p]; ok {
			t.Errorf("%+v and %+v share %s", v, prev, p)
		}
		seen[p] = v
	}
}

// FuzzFilePath checks that two videos share a path only when they are the
// same video of the same row of the same batch, and that every path is one
// the fetcher and the dashboard accept.
func FuzzFilePath(f *testing.F) {
	f.Add("b", "a", uint8(1), "b", "a-2", uint8(0))
	f.Add("b", "a", uint8(1), "b", "a+2", uint8(0))
	f.Add("b", "a~2", uint8(0), "b", "a", uint8(1))
	f.Add("b", "a", uint8(0), "b", "a", uint8(0))
	f.Add("b/a", "c", uint8(0), "b", "a/c", uint8(0))
	f.Add("", "", uint8(0), ".", "..", uint8(9))
	f.Fuzz(func(t *testing.T, b1, id1 string, i1 uint8, b2, id2 string, i2 uint8) {
		p1 := worker.FilePath(b1, id1, int(i1))
		p2 := worker.FilePath(b2, id2, int(i2))
		for _, p := range []string{p1, p2} {
			segs := strings.Split(p, "/")
			if !fs.ValidPath(p) || len(segs) != 2 || strings.HasPrefix(segs[0], ".") || strings.HasPrefix(segs[1], ".") ||
				strings.ContainsRune(p, '\\') || !strings.HasSuffix(p, ".mp4") {
				t.Fatalf("FilePath gave %q: not a safe relative path", p)
			}
		}
		same := b1 == b2 && id1 == id2 && i1 == i2
		if same != (p1 == p2) {
			t.Errorf("FilePath(%q, %q, %d) = %q, FilePath(%q, %q, %d) = %q", b1, id1, i1, p1, b2, id2, i2, p2)
		}
	})
}

package proc

import (
	"strings"
	"testing"
)

// TestTail checks that a Tail sees a text written across two writes and
// keeps only the end of a long output.
func TestTail(t *testing.T) {
	t.Parallel()
	tl := NewTail("worker_started")
	tl.Write([]byte(`{"msg":"worker_sta`))
	select {
	case <-tl.Ready():
		t.Fatal("ready before the whole text was written")
	default:
	}
	tl.Write([]byte("rted\"}\n"))
	select {
	case <-tl.Ready():
	default:
		t.Fatal("not ready after the text was written across two writes")
	}
	tl.Write([]byte(strings.Repeat("x", 3*tailBytes) + "the end"))
	if s := tl.String(); len(s) > 1000 || !strings.HasSuffix(s, "the end") {
		t.Fatalf("tail keeps %d bytes ending %q", len(s), s[max(0, len(s)-10):])
	}
}

package crashpoint

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value, want, err string
	}{
		{"", "", ""},
		{"after-submitting", "after-submitting@1", ""},
		{"mid-download@3", "mid-download@3", ""},
		{" after-create-sent , mid-journal-write@2 ", "after-create-sent@1,mid-journal-write@2", ""},
		{"after-submiting", "", "unknown crash point"},
		{"mid-download@0", "", "positive number"},
		{"mid-download@x", "", "positive number"},
	}
	for _, tt := range tests {
		s, err := Parse(tt.value)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q): error %v, want one saying %q", tt.value, err, tt.err)
			}
			continue
		}
		if err != nil || s.String() != tt.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.value, s.String(), err, tt.want)
		}
	}
}

func TestHitCrashesAtTheCountArmed(t *testing.T) {
	t.Parallel()
	s, err := Parse("mid-download@3,after-submitting")
	if err != nil {
		t.Fatal(err)
	}
	crashes := 0
	s.crash = func() { crashes++ }
	for range 2 {
		s.Hit(MidDownload)
		s.Hit(AfterCreateSent) // not armed
	}
	if crashes != 0 {
		t.Fatalf("crashed %d times before the third hit", crashes)
	}
	s.Hit(MidDownload)
	if crashes != 1 {
		t.Fatalf("third hit: %d crashes, want 1", crashes)
	}
	s.Hit(AfterSubmitting)
	if crashes != 2 {
		t.Fatalf("first hit of a point armed without a count: %d crashes, want 2", crashes)
	}
	var none *Set
	none.Hit(MidDownload) // a nil Set arms nothing
	if none.Armed(MidDownload) {
		t.Error("a nil Set is armed")
	}
}

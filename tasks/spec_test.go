package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{ID: "a", Mode: "text-to-video", Prompt: "a calm sea", Duration: 8, Resolution: "720p",
		AspectRatio: "16:9", Provider: "auto"}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		fields []string
	}{
		{"valid", func(*Spec) {}, nil},
		{"image-to-video", func(s *Spec) { s.Mode, s.ImageURLs = "image-to-video", []string{"https://x.test/a.png"} }, nil},
		{"no images", func(s *Spec) { s.Mode = "image-to-video" }, []string{"image_urls"}},
		{"images on text", func(s *Spec) { s.ImageURLs = []string{"https://x.test/a.png"} }, []string{"image_urls"}},
		{"three images", func(s *Spec) {
			s.Mode, s.ImageURLs = "image-to-video", []string{"https://x.test/1", "https://x.test/2", "https://x.test/3"}
		}, []string{"image_urls"}},
		{"not a URL", func(s *Spec) { s.Mode, s.ImageURLs = "image-to-video", []string{"file:///etc/passwd"} }, []string{"image_urls"}},
		{"everything wrong", func(s *Spec) {
			*s = Spec{Mode: "x", Prompt: "ab", Duration: 3, Resolution: "4k", AspectRatio: "2:1", Provider: "cheap"}
		}, []string{"id", "mode", "prompt", "duration", "resolution", "aspect_ratio", "provider"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.change(&s)
			err := s.Validate()
			var got []string
			for _, e := range unjoin(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields = %v, want %v (err %v)", got, tt.fields, err)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestFingerprintIgnoresID(t *testing.T) {
	a, b := validSpec(), validSpec()
	b.ID = "other"
	if a.Fingerprint() != b.Fingerprint() {
		t.Error("fingerprint depends on the id")
	}
	b.Sound = true
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("fingerprint ignores sound")
	}
}

func TestDefaults(t *testing.T) {
	d := Defaults{}.WithDefaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("package defaults invalid: %v", err)
	}
	if err := (Defaults{Resolution: "8k"}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "resolution") {
		t.Errorf("bad default accepted: %v", err)
	}
}

// hashOf is the hash part of a changed id's file name.
func hashOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

func TestSafeFileName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 101)
	tests := []struct{ name, in, want string }{
		{"plain", "sunrise", "sunrise"},
		{"dots dashes underscores", "v1.2_final-cut", "v1.2_final-cut"},
		{"a number suffix is just an id", "a-2", "a-2"},
		{"100 bytes", strings.Repeat("x", 100), strings.Repeat("x", 100)},
		{"101 bytes", long, strings.Repeat("x", 80) + "~" + hashOf(long)},
		{"empty", "", "_~" + hashOf("")},
		{"dot", ".", "_~" + hashOf(".")},
		{"dot dot", "..", "_.~" + hashOf("..")},
		{"leading dot", ".hidden", "_hidden~" + hashOf(".hidden")},
		{"trailing dot", "end.", "end.~" + hashOf("end.")},
		{"path", "../../etc/passwd", "_._.._etc_passwd~" + hashOf("../../etc/passwd")},
		{"space", "a b", "a_b~" + hashOf("a b")},
		{"one _ per character", "ünï", "_n_~" + hashOf("ünï")},
		{"tilde", "a~2", "a_2~" + hashOf("a~2")},
		{"plus", "a+2", "a_2~" + hashOf("a+2")},
	}
	for _, tt := range tests {
		if got := SafeFileName(tt.in); got != tt.want {
			t.Errorf("%s: SafeFileName(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestSafeFileNamesNeverClash covers ids that shared a name under earlier
// rules: a kept id spelling out a changed id's name, and ids that differ
// only in characters that are replaced.
func TestSafeFileNamesNeverClash(t *testing.T) {
	t.Parallel()
	ids := []string{"a", "a-2", "a~2", "a+2", "a_2", "a/2", "a 2", "a.2", "a2", "",
		".", "..", "_", "CON", "ünïcode", "_n_", strings.Repeat("x", 300), strings.Repeat("x", 301)}
	// Changed names as ids, and the names "-" and 8 hex digits once gave.
	for _, id := range slices.Clone(ids) {
		if n := SafeFileName(id); n != id {
			ids = append(ids, n)
		}
	}
	for _, id := range []string{"a~2", "a+2", "a/2", "a 2"} {
		ids = append(ids, "a_2-"+hashOf(id)[:8])
	}
	seen := map[string]string{}
	for _, id := range ids {
		got := SafeFileName(id)
		checkFileName(t, id, got)
		if prev, ok := seen[got]; ok && prev != id {
			t.Errorf("SafeFileName(%q) = SafeFileName(%q) = %q", id, prev, got)
		}
		seen[got] = id
	}
}

// Names SafeFileName may return, and ids it must keep, written out
// independently of its code.
var (
	safeNameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._~-]*$`)
	keptIDRE   = regexp.MustCompile(`^[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?$`)
	changedRE  = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}~[0-9a-f]{16}$`)
)

// checkFileName fails t unless name is a safe name for id.
func checkFileName(t *testing.T, id, name string) {
	t.Helper()
	kept := keptIDRE.MatchString(id) && len(id) <= 100
	switch {
	case !safeNameRE.MatchString(name) || len(name) > 100 || strings.HasSuffix(name, ".") || !fs.ValidPath(name):
		t.Errorf("SafeFileName(%q) = %q: not a safe file name", id, name)
	case strings.ContainsRune(name, FileNameIndexSep):
		t.Errorf("SafeFileName(%q) = %q: holds %q", id, name, FileNameIndexSep)
	case kept && name != id:
		t.Errorf("SafeFileName(%q) = %q: a safe id must be kept", id, name)
	case !kept && (!changedRE.MatchString(name) || !strings.HasSuffix(name, "~"+hashOf(id))):
		t.Errorf("SafeFileName(%q) = %q: want a sanitised prefix, '~' and the id's hash", id, name)
	}
}

// FuzzSafeFileName checks that two different ids never share a name and
// that every name is a safe file name.
func FuzzSafeFileName(f *testing.F) {
	f.Add("a", "a-2")
	f.Add("a/b", "a_b")
	f.Add("a/b", SafeFileName("a/b"))
	f.Add("a~2", "a+2")
	f.Add("", ".")
	f.Add("..", "_")
	f.Add(".x.", "x")
	f.Add("ünï", "\xff\xfe")
	f.Add(strings.Repeat("x", 100), strings.Repeat("x", 101))
	f.Fuzz(func(t *testing.T, a, b string) {
		na, nb := SafeFileName(a), SafeFileName(b)
		checkFileName(t, a, na)
		checkFileName(t, b, nb)
		if (a == b) != (na == nb) {
			t.Errorf("SafeFileName(%q) = %q, SafeFileName(%q) = %q", a, na, b, nb)
		}
	})
}

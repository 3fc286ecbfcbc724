package tasks

import (
	"errors"
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

func TestSafeFileName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sunrise", "sunrise"},
		{"v1.2_final-cut", "v1.2_final-cut"},
	}
	for _, tt := range tests {
		if got := SafeFileName(tt.in); got != tt.want {
			t.Errorf("SafeFileName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{"../../etc/passwd", "a/b", "a_b", "", ".", "..", ".hidden", "CON", "ünïcode", "a b", strings.Repeat("x", 300)} {
		got := SafeFileName(in)
		if got == "" || strings.ContainsAny(got, "/\\ ") || strings.HasPrefix(got, ".") || len(got) > 100 {
			t.Errorf("SafeFileName(%q) = %q: unsafe", in, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("SafeFileName(%q) = SafeFileName(%q) = %q", in, prev, got)
		}
		seen[got] = in
	}
}

package tasks

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Values the provider accepts (PROVIDER.md, "Create: request body").
var (
	Modes        = []string{"text-to-video", "image-to-video"}
	Resolutions  = []string{"480p", "720p"}
	Durations    = []int{4, 8, 12}
	AspectRatios = []string{"1:1", "16:9", "9:16", "21:9", "4:3", "3:4"}
	Providers    = []string{"auto", "value", "official"}
)

// Limits of the provider's input fields.
const (
	PromptMinRunes = 3
	PromptMaxRunes = 2500
	MaxImageURLs   = 2
	MaxIDLength    = 128
)

// Defaults applied to columns a CSV file leaves out or leaves empty.
const (
	ModeDefault        = "text-to-video"
	ResolutionDefault  = "720p"
	AspectRatioDefault = "16:9"
	ProviderDefault    = "auto"
	DurationDefault    = 4
)

// Spec is one video to generate: the provider's input fields plus the row's
// own id. It is what a job stores; it never holds credentials.
type Spec struct {
	// ID names the row in results and file names (the CSV's id column, or
	// "row-<line>" when absent).
	ID          string   `json:"id"`
	Mode        string   `json:"mode"`
	Prompt      string   `json:"prompt"`
	ImageURLs   []string `json:"image_urls,omitempty"`
	Duration    int      `json:"duration"`
	Resolution  string   `json:"resolution"`
	AspectRatio string   `json:"aspect_ratio"`
	Sound       bool     `json:"sound"`
	FixedLens   bool     `json:"fixed_lens"`
	Provider    string   `json:"provider"`
}

// Defaults fill the fields a row does not set. They come from the config's
// "defaults" section.
type Defaults struct {
	Mode        string `yaml:"mode"`
	Resolution  string `yaml:"resolution"`
	AspectRatio string `yaml:"aspect_ratio"`
	Provider    string `yaml:"provider"`
	Duration    int    `yaml:"duration"`
	Sound       bool   `yaml:"sound"`
	FixedLens   bool   `yaml:"fixed_lens"`
}

// WithDefaults returns d with empty fields set to the package defaults.
func (d Defaults) WithDefaults() Defaults {
	d.Mode = cmp.Or(d.Mode, ModeDefault)
	d.Resolution = cmp.Or(d.Resolution, ResolutionDefault)
	d.AspectRatio = cmp.Or(d.AspectRatio, AspectRatioDefault)
	d.Provider = cmp.Or(d.Provider, ProviderDefault)
	d.Duration = cmp.Or(d.Duration, DurationDefault)
	return d
}

// Validate checks the defaults as if they were a row's fields.
func (d Defaults) Validate() error {
	s := Spec{ID: "defaults", Prompt: "defaults", Mode: d.Mode, Resolution: d.Resolution,
		AspectRatio: d.AspectRatio, Provider: d.Provider, Duration: d.Duration}
	if d.Mode == "image-to-video" {
		s.ImageURLs = []string{"https://example.com/x.png"}
	}
	return s.Validate()
}

// FieldError is one invalid field of a spec.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks every field against the provider's rules and returns all
// problems joined, each a *FieldError.
func (s Spec) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if s.ID == "" {
		bad("id", "must not be empty")
	} else if utf8.RuneCountInString(s.ID) > MaxIDLength {
		bad("id", "longer than %d characters", MaxIDLength)
	}
	if !slices.Contains(Modes, s.Mode) {
		bad("mode", "%q is not one of %s", s.Mode, strings.Join(Modes, ", "))
	}
	switch n := utf8.RuneCountInString(s.Prompt); {
	case !utf8.ValidString(s.Prompt):
		bad("prompt", "is not valid UTF-8")
	case n < PromptMinRunes:
		bad("prompt", "has %d characters, needs at least %d", n, PromptMinRunes)
	case n > PromptMaxRunes:
		bad("prompt", "has %d characters, at most %d allowed", n, PromptMaxRunes)
	}
	switch {
	case s.Mode == "image-to-video" && len(s.ImageURLs) == 0:
		bad("image_urls", "image-to-video needs 1 or 2 image URLs")
	case s.Mode == "text-to-video" && len(s.ImageURLs) > 0:
		bad("image_urls", "only image-to-video takes image URLs")
	case len(s.ImageURLs) > MaxImageURLs:
		bad("image_urls", "has %d URLs, at most %d allowed", len(s.ImageURLs), MaxImageURLs)
	}
	for _, raw := range s.ImageURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("image_urls", "%q is not an http(s) URL", raw)
		}
	}
	if !slices.Contains(Durations, s.Duration) {
		bad("duration", "%d is not one of 4, 8, 12", s.Duration)
	}
	if !slices.Contains(Resolutions, s.Resolution) {
		bad("resolution", "%q is not one of %s", s.Resolution, strings.Join(Resolutions, ", "))
	}
	if !slices.Contains(AspectRatios, s.AspectRatio) {
		bad("aspect_ratio", "%q is not one of %s", s.AspectRatio, strings.Join(AspectRatios, ", "))
	}
	if !slices.Contains(Providers, s.Provider) {
		bad("provider", "%q is not one of %s", s.Provider, strings.Join(Providers, ", "))
	}
	return errors.Join(errs...)
}

// Seconds is the video length the provider bills for this spec.
func (s Spec) Seconds() int { return s.Duration }

// Fingerprint identifies what the provider would generate: every field but
// the id. Two rows with the same fingerprint cost twice for the same video.
func (s Spec) Fingerprint() string {
	s.ID = ""
	b, _ := json.Marshal(s) // cannot fail: plain fields
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// SafeFileName turns any id into a file name that is safe on every common
// file system: letters, digits, '.', '_' and '-' only, no leading dot, at
// most 100 bytes. Ids that had to change get a short hash suffix so that two
// different ids never share a name.
func SafeFileName(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case r == '.' && b.Len() > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimRight(b.String(), ".")
	if name == id && name != "" && len(name) <= 100 {
		return name
	}
	if len(name) > 90 {
		name = name[:90]
	}
	sum := sha256.Sum256([]byte(id))
	return name + "-" + hex.EncodeToString(sum[:4])
}

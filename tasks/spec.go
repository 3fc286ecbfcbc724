package tasks

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// Fingerprint identifies what the provider would generate: 128 bits of
// the SHA-256 of every field but the id. Two rows with the same fingerprint
// cost twice for the same video.
func (s Spec) Fingerprint() [16]byte {
	b := make([]byte, 0, 64+len(s.Prompt))
	field := func(v string) {
		b = binary.LittleEndian.AppendUint64(b, uint64(len(v)))
		b = append(b, v...)
	}
	field(s.Mode)
	field(s.Prompt)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.ImageURLs)))
	for _, u := range s.ImageURLs {
		field(u)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(s.Duration))
	field(s.Resolution)
	field(s.AspectRatio)
	b = append(b, boolByte(s.Sound), boolByte(s.FixedLens))
	field(s.Provider)
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// FileNameIndexSep may follow a name returned by SafeFileName to number
// further files of one id ("clip+2"). SafeFileName never returns a name
// that holds it, so a numbered name never meets another id's name.
const FileNameIndexSep = '+'

// Shapes of SafeFileName's names.
const (
	keptMaxBytes       = 100 // longest id kept as it is
	hashSep            = '~' // starts the hash of a changed id's name
	changedPrefixBytes = 80  // longest sanitised prefix of a changed name
	changedHashHex     = 16  // hex digits of SHA-256 in a changed name
)

// SafeFileName turns any id into a file name that is safe on every common
// file system, such that two different ids never share a name:
//
//   - An id of 1 to 100 bytes made only of ASCII letters, digits, '_', '-'
//     and dots that neither start nor end it is kept as it is ("clip-7",
//     "v1.2_final").
//   - Any other id is changed: each character outside that set (and a
//     leading dot) becomes '_', the result is cut to 80 bytes, and '~' and
//     16 hex digits of the SHA-256 of the whole id follow ("a b" becomes
//     "a_b~" and the hash).
//
// A kept name never holds '~', so it can never spell a changed name, and
// two changed names differ unless two ids share 64 bits of SHA-256. No
// name is longer than 100 bytes, holds FileNameIndexSep ('+'), starts with
// a dot or '~', or ends with a dot.
func SafeFileName(id string) string {
	if keptFileName(id) {
		return id
	}
	b := make([]byte, 0, changedPrefixBytes+1+changedHashHex)
	for _, r := range id {
		if len(b) == changedPrefixBytes {
			break
		}
		if r < utf8.RuneSelf && fileNameByte(byte(r)) && (r != '.' || len(b) > 0) {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		b = append(b, '_') // never start with '~', which shells expand
	}
	sum := sha256.Sum256([]byte(id))
	b = append(b, hashSep)
	return string(hex.AppendEncode(b, sum[:changedHashHex/2]))
}

// keptFileName reports whether SafeFileName keeps id as it is.
func keptFileName(id string) bool {
	if id == "" || len(id) > keptMaxBytes || id[0] == '.' || id[len(id)-1] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !fileNameByte(id[i]) {
			return false
		}
	}
	return true
}

// fileNameByte reports whether c may appear in a kept file name.
func fileNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

package batch

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/seedbatch/seedbatch/tasks"
)

// A queued job is mostly its spec, and the spec mostly its prompt. Redis
// keeps a hash whose values are all at most hash-max-listpack-value bytes
// (64 by default) as one compact listpack, and any other hash as a hash
// table that costs about 56 bytes more per field. So a job stores its spec
// as compact JSON (short names; the fields that equal the package defaults,
// or the id a row without one gets, left out) cut into pieces of
// specPieceBytes, in fields s0, s1, ...: a queued job with a 200-character
// prompt takes about 400 bytes instead of 900.

// specPieceBytes is the size of a spec's pieces: Redis's default
// hash-max-listpack-value.
const specPieceBytes = 64

// storedSpec is a spec as a job stores it. A nil field is the package
// default (tasks.ModeDefault, ...); a nil ID is "row-<line>".
type storedSpec struct {
	ID          *string  `json:"i,omitempty"`
	Mode        *string  `json:"m,omitempty"`
	Prompt      string   `json:"p"`
	ImageURLs   []string `json:"u,omitempty"`
	Duration    *int     `json:"d,omitempty"`
	Resolution  *string  `json:"r,omitempty"`
	AspectRatio *string  `json:"a,omitempty"`
	Sound       bool     `json:"s,omitempty"`
	FixedLens   bool     `json:"f,omitempty"`
	Provider    *string  `json:"v,omitempty"`
}

// unlessEqual returns nil when v equals def, else a pointer to v.
func unlessEqual[T comparable](v, def T) *T {
	if v == def {
		return nil
	}
	return &v
}

// orDefault returns *p, or def when p is nil.
func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// defaultRowID is the id of a row whose CSV gives none.
func defaultRowID(line int) string { return "row-" + strconv.Itoa(line) }

// appendSpecFields appends the fields that store sp (of the row at line)
// to f, as field/value pairs.
func appendSpecFields(f []any, sp tasks.Spec, line int) []any {
	b, _ := json.Marshal(storedSpec{ // cannot fail: plain fields
		ID:          unlessEqual(sp.ID, defaultRowID(line)),
		Mode:        unlessEqual(sp.Mode, tasks.ModeDefault),
		Prompt:      sp.Prompt,
		ImageURLs:   sp.ImageURLs,
		Duration:    unlessEqual(sp.Duration, tasks.DurationDefault),
		Resolution:  unlessEqual(sp.Resolution, tasks.ResolutionDefault),
		AspectRatio: unlessEqual(sp.AspectRatio, tasks.AspectRatioDefault),
		Sound:       sp.Sound,
		FixedLens:   sp.FixedLens,
		Provider:    unlessEqual(sp.Provider, tasks.ProviderDefault),
	})
	for i := 0; len(b) > 0; i++ {
		n := min(len(b), specPieceBytes)
		f = append(f, fSpecPiece+strconv.Itoa(i), string(b[:n]))
		b = b[n:]
	}
	return f
}

// decodeSpec reads the spec of a job hash v (of the row at line): from its
// pieces, or whole from the field earlier versions wrote.
func decodeSpec(v map[string]string, line int) (tasks.Spec, error) {
	var sp tasks.Spec
	if old, ok := v[fSpec]; ok {
		err := json.Unmarshal([]byte(old), &sp)
		return sp, err
	}
	var b strings.Builder
	for i := 0; ; i++ {
		p, ok := v[fSpecPiece+strconv.Itoa(i)]
		if !ok {
			break
		}
		b.WriteString(p)
	}
	if b.Len() == 0 {
		return sp, errors.New("missing")
	}
	var st storedSpec
	if err := json.Unmarshal([]byte(b.String()), &st); err != nil {
		return sp, err
	}
	return tasks.Spec{
		ID:          orDefault(st.ID, defaultRowID(line)),
		Mode:        orDefault(st.Mode, tasks.ModeDefault),
		Prompt:      st.Prompt,
		ImageURLs:   st.ImageURLs,
		Duration:    orDefault(st.Duration, tasks.DurationDefault),
		Resolution:  orDefault(st.Resolution, tasks.ResolutionDefault),
		AspectRatio: orDefault(st.AspectRatio, tasks.AspectRatioDefault),
		Sound:       st.Sound,
		FixedLens:   st.FixedLens,
		Provider:    orDefault(st.Provider, tasks.ProviderDefault),
	}, nil
}

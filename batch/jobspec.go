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
// prompt takes about 400 bytes instead of 900. A rejected row also keeps
// its cells as written (tasks.Input), so that its results can show them, in
// pieces c0, c1, ... of their own.

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
	return appendPieces(f, fSpecPiece, b)
}

// appendPieces appends b to f cut into fields named prefix and a number.
func appendPieces(f []any, prefix string, b []byte) []any {
	for i := 0; len(b) > 0; i++ {
		n := min(len(b), specPieceBytes)
		f = append(f, prefix+strconv.Itoa(i), string(b[:n]))
		b = b[n:]
	}
	return f
}

// joinPieces joins the fields named prefix and a number of v.
func joinPieces(v map[string]string, prefix string) string {
	var b strings.Builder
	for i := 0; ; i++ {
		p, ok := v[prefix+strconv.Itoa(i)]
		if !ok {
			return b.String()
		}
		b.WriteString(p)
	}
}

// appendInputFields appends the fields that store a rejected row's cells
// as written: compact JSON cut into pieces, as the spec.
func appendInputFields(f []any, in tasks.Input) []any {
	if in == nil {
		return f
	}
	b, _ := json.Marshal(in) // cannot fail: strings
	return appendPieces(f, fInputPiece, b)
}

// decodeInput reads the cells a job hash v stores, if any.
func decodeInput(v map[string]string) (tasks.Input, error) {
	s := joinPieces(v, fInputPiece)
	if s == "" {
		return nil, nil
	}
	var in tasks.Input
	err := json.Unmarshal([]byte(s), &in)
	return in, err
}

// decodeSpec reads the spec of a job hash v (of the row at line): from its
// pieces, or whole from the field earlier versions wrote.
func decodeSpec(v map[string]string, line int) (tasks.Spec, error) {
	var sp tasks.Spec
	if old, ok := v[fSpec]; ok {
		err := json.Unmarshal([]byte(old), &sp)
		return sp, err
	}
	b := joinPieces(v, fSpecPiece)
	if b == "" {
		return sp, errors.New("missing")
	}
	var st storedSpec
	if err := json.Unmarshal([]byte(b), &st); err != nil {
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

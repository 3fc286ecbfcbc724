package ratelimit

import (
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/internal/redistest"
)

func TestAccountScope(t *testing.T) {
	t.Parallel()
	a, b := AccountScope("key-one"), AccountScope("key-two")
	if a == b || a != AccountScope("key-one") || strings.Contains(a, "key") || AccountScope("") != "nokey" {
		t.Fatalf("scopes %q, %q, %q", a, b, AccountScope(""))
	}
}

// TestKeyPattern checks that the pattern finds every key a limiter writes,
// and none of another scope.
func TestKeyPattern(t *testing.T) {
	t.Parallel()
	rs := redistest.New(t)
	ctx := t.Context()
	for _, scope := range []string{AccountScope("mine"), AccountScope("other")} {
		l, err := New(rs.Client, Config{Prefix: rs.Prefix, Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Register(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.AdmitSubmit(ctx, "holder"); err != nil {
			t.Fatal(err)
		}
	}
	mine := AccountScope("mine")
	keys, err := rs.Client.Keys(ctx, KeyPattern(rs.Prefix, mine)).Result()
	if err != nil {
		t.Fatal(err)
	}
	all, err := rs.Client.Keys(ctx, rs.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, k := range all {
		if strings.Contains(k, mine) {
			want++
		}
	}
	if len(keys) < 2 || len(keys) != want {
		t.Fatalf("pattern found %v of %v", keys, all)
	}
}

package tasks

import (
	"math/rand/v2"
	"testing"
)

func TestLineIndex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		keys func(i int) uint64
		n    int
	}{
		{"empty", func(i int) uint64 { return uint64(i) }, 0},
		{"sequential", func(i int) uint64 { return uint64(i) }, 5000},
		{"random", func(int) uint64 { return rand.Uint64() }, 50_000},
		{"zero and max", func(i int) uint64 { return []uint64{0, ^uint64(0)}[i] }, 2},
		{"colliding slots", func(i int) uint64 { return uint64(i) }, 3000}, // small keys all map to slot 0
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var x LineIndex
			keys := make([]uint64, tc.n)
			for i := range keys {
				keys[i] = tc.keys(i)
				x.Put(keys[i], i+2)
				x.Put(keys[i], i+1000) // a later line never replaces the first
			}
			for i, k := range keys {
				if l, ok := x.Get(k); !ok || l != i+2 {
					t.Fatalf("Get(%d) = %d, %v; want %d", k, l, ok, i+2)
				}
			}
			if _, ok := x.Get(1<<62 + 12345); ok {
				t.Fatal("Get of a key never put found a line")
			}
		})
	}
}

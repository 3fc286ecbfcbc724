package batch_test

import (
	"testing"

	"github.com/seedbatch/seedbatch/batch"
)

// TestRenewEpoch: after Redis lost data, a new epoch has a new id, its
// count of creates starts again, and every batch Redis lists records it, so
// that a worker checking a create against its batch's epoch goes on.
func TestRenewEpoch(t *testing.T) {
	t.Parallel()
	s, ctx := setup(t)
	for _, id := range []string{"a", "b"} {
		if _, err := s.CreateBatch(ctx, batch.Meta{ID: id, Rows: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := s.NextCreate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	old, err := s.EnsureEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.RenewEpoch(ctx)
	if err != nil || id == "" || id == old {
		t.Fatalf("RenewEpoch = %q, %v; the old epoch was %q", id, err, old)
	}
	e, err := s.NextCreate(ctx)
	if err != nil || e.ID != id || e.Seq != 1 {
		t.Errorf("first create of the new epoch: %+v, %v; want %s, 1", e, err, id)
	}
	for _, b := range []string{"a", "b"} {
		if m, err := s.Meta(ctx, b); err != nil || m.Epoch != id {
			t.Errorf("batch %s records epoch %q (%v), want %q", b, m.Epoch, err, id)
		}
	}
}

package batch_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redisproc"
)

// TestWaitReplicated: with a replica in sync, the wait succeeds; with the
// replica gone, it fails with ErrNotReplicated; not required, it never
// waits.
func TestWaitReplicated(t *testing.T) {
	t.Parallel()
	if m := redisproc.Missing("redis-server"); len(m) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("missing on CI: %v", m)
		}
		t.Skipf("missing: %v", m)
	}
	dir := t.TempDir()
	master, err := redisproc.Start(t.Context(), filepath.Join(dir, "master"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(master.Stop)
	replica, err := redisproc.Start(t.Context(), filepath.Join(dir, "replica"), "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(replica.Stop)
	c := master.Client()
	t.Cleanup(func() { c.Close() })
	s := batch.NewStore(c, "wr")
	if err := s.WaitReplicated(t.Context(), "b1"); err != nil {
		t.Fatalf("no replica required: %v", err)
	}
	s.SetWaitReplicas(1)
	deadline := time.Now().Add(20 * time.Second)
	for err = s.WaitReplicated(t.Context(), "b1"); err != nil; err = s.WaitReplicated(t.Context(), "b1") {
		if !errors.Is(err, batch.ErrNotReplicated) || time.Now().After(deadline) {
			t.Fatalf("with a replica: %v", err)
		}
	}
	replica.Kill()
	if err := s.WaitReplicated(t.Context(), "b1"); !errors.Is(err, batch.ErrNotReplicated) {
		t.Fatalf("without the replica: %v, want ErrNotReplicated", err)
	}
}

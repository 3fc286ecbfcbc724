package fetch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestGetStorageErrors: a full or unwritable output directory is told apart
// from a network failure, with a kind of its own and a message that says
// so, and leaves no file behind. A write fault stands in for a full disk
// (and for a read-only one, which root can always write); a directory
// without write permission is the real thing when not running as root.
func TestGetStorageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault error                          // set as the Fetcher's write fault
		dir   func(t *testing.T, dir string) // prepares the directory
		kind  error
		says  string
	}{
		{"disk full", syscall.ENOSPC, nil, ErrStorageFull, "no space left"},
		{"read-only file system", syscall.EROFS, nil, ErrStorageReadOnly, "cannot be written"},
		{"no permission", nil, func(t *testing.T, dir string) {
			if os.Geteuid() == 0 {
				t.Skip("root writes a directory whatever its permissions")
			}
			sub := filepath.Join(dir, "b")
			if err := os.Mkdir(sub, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(sub, 0o755) })
		}, ErrStorageReadOnly, "cannot be written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, serve("video bytes"))
			if tt.dir != nil {
				tt.dir(t, b.dir)
			}
			b.f.writeFault = tt.fault
			_, err := b.f.Get(context.Background(), b.url("/v.mp4"), "b/v.mp4", File{})
			if !errors.Is(err, tt.kind) || Classify(err) != tt.kind {
				t.Fatalf("Get: %v (kind %v), want %v", err, Classify(err), tt.kind)
			}
			if errors.Is(err, ErrTransient) {
				t.Errorf("a storage error is also transient: %v", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			checkNoSecret(t, err)
			if got := files(t, b.dir); len(got) != 0 {
				t.Errorf("files left behind: %v", got)
			}
		})
	}
}

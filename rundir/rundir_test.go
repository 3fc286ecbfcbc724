package rundir

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestLockIsExclusive(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "b1")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var busy *BusyError
	if _, err := Open(dir); !errors.As(err, &busy) || busy.PID != os.Getpid() || busy.Batch != "b1" {
		t.Fatalf("second Open = %v, want a BusyError naming pid %d", err, os.Getpid())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
	if info, err := os.Stat(filepath.Join(dir, Name)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("run directory mode = %v, %v; want 0700", info.Mode().Perm(), err)
	}
}

func TestSecretAndListenAreKept(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "b")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	calls := 0
	gen := func() string { calls++; return "s3cret" }
	for range 2 {
		if v, err := d.Secret(CallbackSecret, gen); err != nil || v != "s3cret" {
			t.Fatalf("Secret = %q, %v", v, err)
		}
	}
	if calls != 1 {
		t.Errorf("the secret was generated %d times, want once", calls)
	}
	if info, err := os.Stat(d.Path(CallbackSecret)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	ln, err := d.Listen(SimAddr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ln, err = d.Listen(SimAddr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != addr {
		t.Errorf("listened on %s again, want the recorded %s", ln.Addr(), addr)
	}
	// A recorded address that is taken falls back to the given one.
	taken := ln.Addr().String()
	other, err := d.Listen(SimAddr, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Addr().String() == taken {
		t.Error("listened twice on one address")
	}
	if _, ok := other.(*net.TCPListener); !ok {
		t.Errorf("listener %T", other)
	}
}

func TestLegacyJournalIsRefusedAndOtherFilesMove(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "old")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CallbackSecret), []byte("old-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Secret(CallbackSecret, func() string { return "new" }); v != "old-secret" {
		t.Errorf("the earlier run's secret was not kept: %q", v)
	}
	if _, err := os.Stat(filepath.Join(dir, CallbackSecret)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the secret stayed beside the videos")
	}
	d.Close()
	if err := os.WriteFile(filepath.Join(dir, Journal), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var legacy *LegacyError
	if _, err := Open(dir); !errors.As(err, &legacy) {
		t.Errorf("Open with an earlier version's journal = %v, want a LegacyError", err)
	}
}

func TestJournals(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	for _, b := range []string{"a", "b"} {
		d, err := Open(filepath.Join(out, b))
		if err != nil {
			t.Fatal(err)
		}
		if b == "a" {
			os.WriteFile(d.Path(Journal), []byte("x\n"), 0o600)
		}
		d.Close()
	}
	if got := Journals(out); len(got) != 1 || filepath.Base(filepath.Dir(filepath.Dir(got[0]))) != "a" {
		t.Errorf("Journals = %v, want a's only", got)
	}
}

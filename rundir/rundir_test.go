package rundir

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestStoreAndRetire records a batch's store, then retires the state of its
// run: nothing of it is left where a run would read it.
func TestStoreAndRetire(t *testing.T) {
	t.Parallel()
	batchDir := filepath.Join(t.TempDir(), "b")
	d, err := Open(batchDir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, err := d.Store(); got != "" || err != nil {
		t.Fatalf("Store of a new directory = %q, %v", got, err)
	}
	if dir, err := d.Retire(time.Now()); dir != "" || err != nil {
		t.Fatalf("Retire with nothing to retire = %q, %v", dir, err)
	}
	if err := d.SetStore(`{"store":"embedded"}`); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Store(); got != `{"store":"embedded"}` {
		t.Errorf("Store = %q", got)
	}
	for _, p := range []string{d.Path(Journal), filepath.Join(batchDir, "results.csv")} {
		if err := os.WriteFile(p, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := d.Retire(time.Now(), "results.csv")
	if err != nil || dir == "" {
		t.Fatalf("Retire = %q, %v", dir, err)
	}
	for _, name := range []string{Journal, Store, "results.csv"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not retired: %v", name, err)
		}
	}
	for _, p := range []string{d.Path(Journal), d.Path(Store), filepath.Join(batchDir, "results.csv")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if got, _ := d.Store(); got != "" {
		t.Errorf("Store after Retire = %q", got)
	}
	if len(Journals(filepath.Dir(batchDir))) != 0 {
		t.Errorf("a retired journal is still found: %v", Journals(filepath.Dir(batchDir)))
	}
}

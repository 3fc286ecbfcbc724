package ratelimit

import (
	"testing"
	"time"
)

// TestKeysShareASlot runs every operation of the limiter under a hook that
// fails the test when a command, transaction or script touches keys of
// more than one Redis Cluster hash slot, or when a script of the package
// never ran.
func TestKeysShareASlot(t *testing.T) {
	t.Parallel()
	l, rs := newLimiter(t, Config{RequestsPerMinute: 600, Burst: 5, CreateReserve: 1, MaxInFlight: 2})
	rs.CheckSlots(t, ".")
	ctx := t.Context()
	if err := l.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Replace(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AdmitSubmit(ctx, "b:0:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AdmitRequest(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Hold(ctx, "b:0:0", "b:1:0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Started(ctx, time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "b:0:0"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitSubmit(ctx, "b:2:0", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := l.Cooldown(ctx, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := l.Pause(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if err := l.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { _, err := l.Readded(ctx); return err },
		func() error { _, err := l.InFlight(ctx); return err },
		func() error { _, _, err := l.Paused(ctx); return err },
		func() error { _, _, err := l.Stored(ctx); return err },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
}

package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestRunStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	}()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("answer %q", body)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("a stop returned %v, want nil", err)
		}
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Error("the server still answers after the stop")
	}
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(ln, http.NotFoundHandler())
	if err := s.Stop(); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("a second Stop = %v", err)
	}
	// A listener that fails reports its error.
	bad, _ := net.Listen("tcp", "127.0.0.1:0")
	bad.Close()
	if err := Run(t.Context(), bad, http.NotFoundHandler()); err == nil {
		t.Error("serving on a closed listener reported no error")
	}
}

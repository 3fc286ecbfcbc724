// Package serve runs seedbatch's HTTP servers (the dashboard, the callback
// receiver, the simulator, a worker's health and metrics) one way: on a
// listener the caller opened, with timeouts against slow clients, stopped
// gracefully, a normal stop never reported as an error.
package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Timeouts of every server.
const (
	// ShutdownTimeout bounds a graceful stop: requests in progress get
	// that long to finish.
	ShutdownTimeout = 5 * time.Second
	// ReadHeaderTimeout and ReadTimeout bound reading a request, against
	// clients that send slowly on purpose.
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
)

// Server is an HTTP server running in the background.
type Server struct {
	srv  *http.Server
	done chan error
}

// Start serves h on ln in the background.
func Start(ln net.Listener, h http.Handler) *Server {
	s := &Server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout},
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s
}

// Stop stops taking connections, lets requests in progress finish for up
// to ShutdownTimeout, and returns the error serving ended with (nil for a
// stop). It may be called more than once.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	err, ok := <-s.done
	if ok {
		close(s.done)
	}
	return err
}

// Run serves h on ln until ctx is done or serving fails, then stops. It
// returns the error serving failed with, nil after a stop.
func Run(ctx context.Context, ln net.Listener, h http.Handler) error {
	s := Start(ln, h)
	select {
	case <-ctx.Done():
		return s.Stop()
	case err := <-s.done:
		close(s.done)
		return err
	}
}

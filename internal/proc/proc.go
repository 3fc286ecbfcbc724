// Package proc starts and watches the processes that the benchmark and the
// reliability drills run: seedbatch's own commands (the same executable).
// It holds no seedbatch logic; redis-server is started by
// internal/redisproc.
package proc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long a process has to exit after SIGTERM before it is
// killed.
const StopGrace = 15 * time.Second

// tailBytes is how much of a process's output is kept for error messages.
const tailBytes = 4 << 10

// Child is a process started by Start.
type Child struct {
	// Cmd is the process's command; its ProcessState is set once Done is
	// closed.
	Cmd *exec.Cmd
	// Out keeps the end of the process's output.
	Out  *Tail
	done chan struct{} // closed once the process has exited and been waited for
	err  error         // Wait's error, set before done is closed
}

// Start starts the executable with args and env in dir. When ctx is done
// the process gets SIGTERM, then, StopGrace later, SIGKILL; either way it
// is waited for. ready, when not empty, is a text whose appearance in the
// output closes Out.Ready.
func Start(ctx context.Context, exe, dir string, env []string, ready string, args ...string) (*Child, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = StopGrace
	c := &Child{Cmd: cmd, Out: NewTail(ready), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.Out, c.Out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Done is closed once the process has exited and been waited for.
func (c *Child) Done() <-chan struct{} { return c.done }

// Exited reports whether the process has exited.
func (c *Child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process; a process that has exited is left
// alone.
func (c *Child) Signal(sig syscall.Signal) error {
	if c.Exited() {
		return nil
	}
	if err := c.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal pid %d: %w", c.Cmd.Process.Pid, err)
	}
	return nil
}

// ExitErr returns nil when the exited process succeeded (exit status 0,
// whether or not it was asked to stop), or an error with its status and the
// end of its output.
func (c *Child) ExitErr() error {
	if ps := c.Cmd.ProcessState; ps != nil && ps.Success() {
		return nil
	}
	status := "did not start"
	if ps := c.Cmd.ProcessState; ps != nil {
		status = ps.String()
	} else if c.err != nil {
		status = c.err.Error()
	}
	return fmt.Errorf("%s: %s", status, c.Out)
}

// CPU returns the user and system CPU time of the exited process.
func (c *Child) CPU() time.Duration {
	return c.Cmd.ProcessState.UserTime() + c.Cmd.ProcessState.SystemTime()
}

// Tail keeps the last bytes of a process's output and watches it for a
// text.
type Tail struct {
	mu    sync.Mutex
	buf   []byte
	want  []byte
	ready chan struct{} // closed when want was seen; never when want is empty
	seen  bool
}

// NewTail returns a Tail that watches for want.
func NewTail(want string) *Tail {
	return &Tail{want: []byte(want), ready: make(chan struct{})}
}

// Ready is closed once the text watched for has been written.
func (t *Tail) Ready() <-chan struct{} { return t.ready }

// Write keeps p's end; it never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if !t.seen && len(t.want) > 0 && bytes.Contains(t.buf, t.want) {
		t.seen = true
		close(t.ready)
	}
	if len(t.buf) > 2*tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

// String returns the last lines kept, trimmed.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if len(s) > 1000 {
		s = s[len(s)-1000:]
	}
	return strings.TrimSpace(s)
}

// Env returns the process environment without the variables that
// configure seedbatch (so that a run is what its report says), then vars.
func Env(vars ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "REDIS_URL" || strings.HasPrefix(name, "SEEDBATCH_") || strings.HasPrefix(name, "SEEDANCE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, vars...)
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

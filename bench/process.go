package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a process has to exit after SIGTERM before it is
// killed.
const stopGrace = 15 * time.Second

// tailBytes is how much of a process's output is kept for error messages.
const tailBytes = 4 << 10

// child is a seedbatch process started by the benchmark.
type child struct {
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed once the process has exited and been waited for
	err  error         // Wait's error, set before done is closed
}

// startChild starts the executable with args and env in dir. When ctx is
// done the process gets SIGTERM, then, stopGrace later, SIGKILL; either
// way it is waited for. ready, when not empty, is a text whose appearance
// in the output closes the child's tail's ready channel.
func startChild(ctx context.Context, exe, dir string, env []string, ready string, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	c := &child{cmd: cmd, out: newTail(ready), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exitErr returns nil when the exited process succeeded (exit status 0,
// whether or not it was asked to stop), or an error with its status and the
// end of its output.
func (c *child) exitErr() error {
	if ps := c.cmd.ProcessState; ps != nil && ps.Success() {
		return nil
	}
	status := "did not start"
	if ps := c.cmd.ProcessState; ps != nil {
		status = ps.String()
	} else if c.err != nil {
		status = c.err.Error()
	}
	return fmt.Errorf("%s: %s", status, c.out)
}

// cpu returns the user and system CPU time of the exited process.
func (c *child) cpu() time.Duration {
	return c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
}

// tail keeps the last tailBytes of a process's output and watches it for a
// text.
type tail struct {
	mu    sync.Mutex
	buf   []byte
	want  []byte
	ready chan struct{} // closed when want was seen; never when want is empty
	seen  bool
}

func newTail(want string) *tail {
	return &tail{want: []byte(want), ready: make(chan struct{})}
}

// Write keeps p's end; it never fails.
func (t *tail) Write(p []byte) (int, error) {
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
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if len(s) > 1000 {
		s = s[len(s)-1000:]
	}
	return strings.TrimSpace(s)
}

// childEnv returns the process environment without the variables that
// configure seedbatch (so that the run is what the report says), then
// vars.
func childEnv(vars ...string) []string {
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

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

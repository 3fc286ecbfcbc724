//go:build unix

package crashpoint

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestKillIsSIGKILL runs this test binary again with a point armed: the
// child must die of SIGKILL at the armed hit, and not before.
func TestKillIsSIGKILL(t *testing.T) {
	t.Parallel()
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		s, err := FromEnv(os.LookupEnv)
		if err != nil {
			os.Exit(3)
		}
		s.Hit(MidDownload)
		os.Stdout.WriteString("survived the first hit\n")
		s.Hit(MidDownload)
		os.Exit(0) // not reached
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKillIsSIGKILL$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", EnvVar+"=mid-download@2")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v, want it killed\n%s", err, out)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended %v, want killed by SIGKILL", ee)
	}
	if string(out) != "survived the first hit\n" {
		t.Errorf("child wrote %q before dying", out)
	}
}

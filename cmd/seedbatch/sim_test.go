package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedbatch/seedbatch/config"
)

// simLine starts `seedbatch sim` with env and args, and returns the line
// that announces it and its base URL.
func simLine(t *testing.T, env []string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"sim"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := simAddr.FindStringSubmatch(sc.Text()); m != nil {
				found <- [2]string{sc.Text(), m[1]}
			}
		}
		close(found)
	}()
	select {
	case f, ok := <-found:
		if !ok {
			t.Fatalf("sim %v exited without listening", args)
		}
		return f[0], f[1]
	case <-time.After(20 * time.Second):
		t.Fatalf("sim %v did not start", args)
		return "", ""
	}
}

// TestSimTakesItsConfig checks that seedbatch sim takes its settings from
// the sim section of the configuration, with its flags on top.
func TestSimTakesItsConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "seedbatch.yaml")
	if err := os.WriteFile(file, []byte("sim:\n  time_scale: 9\n  requests_per_minute: 600\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := []string{"--addr", "127.0.0.1:0"}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"defaults", nil, nil, "(time scale 20, 10000 requests per minute, 1000 tasks in flight, fail rate 0)"},
		{"--set", nil, []string{"--set", "sim.time_scale=7"}, "(time scale 7,"},
		{"environment", []string{"SEEDBATCH_SIM_TIME_SCALE=7", "SEEDBATCH_SIM_FAIL_RATE=0.25"}, nil, "(time scale 7, 10000 requests per minute, 1000 tasks in flight, fail rate 0.25)"},
		{"config file", nil, []string{"--config", file}, "(time scale 9, 600 requests per minute,"},
		{"flags over the file", nil, []string{"--config", file, "--time-scale", "3", "--max-in-flight", "5"}, "(time scale 3, 600 requests per minute, 5 tasks in flight,"},
		{"flag over --set", nil, []string{"--time-scale", "3", "--set", "sim.time_scale=7"}, "(time scale 3,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			line, _ := simLine(t, tt.env, append(addr, tt.args...)...)
			if !strings.Contains(line, tt.want) {
				t.Errorf("got %q, want %q", line, tt.want)
			}
		})
	}

	t.Run("the limit it announces is the one it enforces", func(t *testing.T) {
		t.Parallel()
		_, base := simLine(t, []string{"SEEDBATCH_SIM_MAX_IN_FLIGHT=1"}, append(addr, "--api-key", "k")...)
		var codes []int
		for i := range 2 {
			body := fmt.Sprintf(`{"request_type":"async","provider":"auto","input":{"mode":"text-to-video",`+
				`"prompt":"scene %d of two","resolution":"720p","duration":4,"aspect_ratio":"16:9"}}`, i)
			req, _ := http.NewRequest("POST", base+"/api/v1/generateTask/seedance-1-5-pro", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer k")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		if codes[0] != 200 || codes[1] != 429 {
			t.Errorf("two creates with sim.max_in_flight 1 answered %v, want [200 429]", codes)
		}
	})

	t.Run("a bad value names the flag", func(t *testing.T) {
		t.Parallel()
		code, _, stderr := cliStreams(t, nil, "sim", "--time-scale", "fast")
		if code != exitUsage || !strings.Contains(stderr, `--time-scale "fast": not a value sim.time_scale takes`) {
			t.Errorf("exit %d\n%s", code, stderr)
		}
	})
}

// TestSimAddressIsNotTheDashboards checks the simulator's default address:
// its own, not the dashboard's, and the one its help states.
func TestSimAddressIsNotTheDashboards(t *testing.T) {
	t.Parallel()
	def := config.Default()
	if def.Sim.Listen == def.Dashboard.Listen {
		t.Errorf("sim.listen and dashboard.listen both default to %s", def.Sim.Listen)
	}
	_, stdout, _ := cliStreams(t, nil, "sim", "--help")
	if !strings.Contains(stdout, "(default: sim.listen, "+def.Sim.Listen+")") {
		t.Errorf("sim --help does not state its address %s:\n%s", def.Sim.Listen, stdout)
	}
}

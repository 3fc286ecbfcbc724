package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/seedbatch/seedbatch/config"
)

// composeService is the part of a compose service these tests read.
type composeService struct {
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// loadCompose reads the repository's docker-compose.yml.
func loadCompose(t *testing.T) (services map[string]composeService, secrets map[string]struct{ File string }) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]composeService        `yaml:"services"`
		Secrets  map[string]struct{ File string } `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return doc.Services, doc.Secrets
}

// TestComposeHealthchecks: the worker, the dashboard and the scheduler have
// healthchecks that the distroless image can run: the binary's own
// healthcheck command, in exec form.
func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	services, _ := loadCompose(t)
	for _, name := range []string{"worker", "dashboard", "scheduler"} {
		test := services[name].Healthcheck.Test
		if len(test) < 3 || test[0] != "CMD" || test[1] != "/seedbatch" || test[2] != "healthcheck" {
			t.Errorf("service %s: healthcheck test %q, want [CMD /seedbatch healthcheck ...]", name, test)
			continue
		}
		if code, stdout, stderr := runMain(t, nil, append(slices.Clone(test[2:]), "-h")...); code != 0 {
			t.Errorf("service %s: seedbatch %s -h: exit %d\n%s%s", name, strings.Join(test[2:], " "), code, stdout, stderr)
		}
	}
	if l := services["worker"].Environment["SEEDBATCH_WORKER_LISTEN"]; l == "" {
		t.Error("service worker: no SEEDBATCH_WORKER_LISTEN, so no /healthz for its healthcheck")
	}
}

// TestComposeSecretFiles: secrets reach the services as Docker secrets
// through *_FILE variables the configuration reads, never as values.
func TestComposeSecretFiles(t *testing.T) {
	t.Parallel()
	services, secrets := loadCompose(t)
	known := config.FileVariables()
	files := 0
	for name, svc := range services {
		for k, v := range svc.Environment {
			if base, ok := strings.CutSuffix(k, config.FileSuffix); ok {
				files++
				if !slices.Contains(known, k) {
					t.Errorf("service %s: %s is not a variable seedbatch reads", name, k)
				}
				secret, ok := strings.CutPrefix(v, "/run/secrets/")
				if !ok || !slices.Contains(svc.Secrets, secret) {
					t.Errorf("service %s: %s=%s is not a secret mounted into the service (secrets: %v)", name, k, v, svc.Secrets)
				} else if f := secrets[secret].File; !strings.HasPrefix(f, "./secrets/") {
					t.Errorf("secret %s: file %q, want one under ./secrets/", secret, f)
				}
				if _, set := svc.Environment[base]; set {
					t.Errorf("service %s: sets both %s and %s", name, base, k)
				}
				continue
			}
			if strings.HasSuffix(k, "REDIS_URL") && !strings.Contains(v, "@") {
				continue // a URL without a password holds no secret
			}
			if slices.Contains(known, k+config.FileSuffix) {
				t.Errorf("service %s: secret %s given as a value; use %s%s and a Docker secret", name, k, k, config.FileSuffix)
			}
		}
	}
	if files == 0 {
		t.Error("no service reads a secret from a file")
	}
	ignore, err := os.ReadFile(filepath.Join("..", "..", ".gitignore"))
	if err != nil || !strings.Contains(string(ignore), "/secrets/") {
		t.Errorf(".gitignore does not keep secrets/ out (%v)", err)
	}
	dockerignore, err := os.ReadFile(filepath.Join("..", "..", ".dockerignore"))
	if err != nil || !strings.Contains(string(dockerignore), "secrets/") {
		t.Errorf(".dockerignore does not keep secrets/ out of the build context (%v)", err)
	}
}

// TestComposeInbox: the scheduler imports from a directory of the host.
func TestComposeInbox(t *testing.T) {
	t.Parallel()
	services, _ := loadCompose(t)
	sch := services["scheduler"]
	inbox := sch.Environment["SEEDBATCH_SCHEDULE_INBOX"]
	found := false
	for _, v := range sch.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		dst, _, _ = strings.Cut(dst, ":")
		found = found || (strings.HasPrefix(src, "./") && dst == inbox)
	}
	if inbox == "" || !found {
		t.Errorf("scheduler: inbox %q is not a bind mount of a host directory: %v", inbox, sch.Volumes)
	}
}

// TestComposeTimeScale: the simulator and the workers take their time scale
// from one variable, so they cannot disagree.
func TestComposeTimeScale(t *testing.T) {
	t.Parallel()
	services, _ := loadCompose(t)
	workerScale := services["worker"].Environment["SEEDBATCH_WORKER_TIME_SCALE"]
	cmd := services["sim"].Command
	i := slices.Index(cmd, "--time-scale")
	if i < 0 || i+1 >= len(cmd) {
		t.Fatalf("sim: command %q sets no --time-scale", cmd)
	}
	if simScale := cmd[i+1]; workerScale == "" || simScale != workerScale || !strings.Contains(simScale, "${SEEDBATCH_TIME_SCALE") {
		t.Errorf("worker.time_scale %q and the simulator's --time-scale %q: want both ${SEEDBATCH_TIME_SCALE:-...}", workerScale, simScale)
	}
}

// TestCheckComposeCatchesMistakes runs .ci/check-compose on a compose file
// with the mistakes it exists to catch.
func TestCheckComposeCatchesMistakes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	good, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	deploy, err := os.ReadFile(filepath.Join("..", "..", "deploy", "seedbatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy", "seedbatch.yaml"), deploy, 0o600); err != nil {
		t.Fatal(err)
	}
	replace := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("docker-compose.yml no longer has %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	bad := string(good)
	bad = replace(bad, `test: ["CMD", "/seedbatch", "healthcheck", "worker"]`, `test: ["CMD", "/seedbatch", "healthz", "worker"]`)
	bad = replace(bad, `test: ["CMD", "/seedbatch", "healthcheck", "dashboard"]`, `test: ["CMD-SHELL", "curl -f http://127.0.0.1:8080/readyz"]`)
	bad = replace(bad, "      SEEDBATCH_SCHEDULE_INBOX: /inbox\n",
		"      SEEDBATCH_SCHEDULE_INBOX: /inbox\n      SEEDBATCH_DASHBOARD_TOKN_FILE: /run/secrets/dashboard_token\n"+
			"      SEEDBATCH_CALLBACK_SECRET_FILE: /run/secrets/callback_secret\n      SEEDANCE_API_KEY: sk-plain\n")
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join("..", "..", ".ci", "check-compose"), filepath.Join(dir, "docker-compose.yml"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("check-compose passed a broken compose file:\n%s", out)
	}
	wants := []string{
		`seedbatch has no subcommand "healthz"`,
		"CMD-SHELL, which needs a shell",
		"SEEDBATCH_DASHBOARD_TOKN_FILE: seedbatch does not read it",
	}
	if strings.Contains(string(out), "python3 yaml") || strings.Contains(string(out), "docker compose config") {
		// Checked only with a YAML parser.
		wants = append(wants, "SEEDBATCH_CALLBACK_SECRET_FILE=/run/secrets/callback_secret, but no secret is mounted there",
			"sets both SEEDANCE_API_KEY and SEEDANCE_API_KEY_FILE")
	}
	for _, w := range wants {
		if !strings.Contains(string(out), w) {
			t.Errorf("check-compose output lacks %q", w)
		}
	}
	if t.Failed() {
		t.Log(string(out))
	}
}

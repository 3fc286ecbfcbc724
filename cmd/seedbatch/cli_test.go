package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"unicode/utf8"
)

// cliStreams runs the binary to completion and returns its exit code,
// standard output and standard error apart.
func cliStreams(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// noRedis points every command at a Redis that does not answer: a command
// that ran instead of printing its help would exit 3.
var noRedis = []string{"REDIS_URL=redis://127.0.0.1:1"}

// TestHelpStreams checks where help goes: to stdout with exit 0 when asked
// for, to stderr with exit 2 on a usage error.
func TestHelpStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		code     int
		toStdout bool
		want     string
	}{
		{[]string{"help"}, exitOK, true, "Commands:"},
		{[]string{"--help"}, exitOK, true, "Commands:"},
		{[]string{"-h"}, exitOK, true, "Commands:"},
		{[]string{"help", "run"}, exitOK, true, "Usage: seedbatch run [flags] FILE.csv"},
		{[]string{"run", "--help"}, exitOK, true, "Usage: seedbatch run [flags] FILE.csv"},
		{[]string{"run", "-h"}, exitOK, true, "Usage: seedbatch run [flags] FILE.csv"},
		{[]string{"--help", "retry"}, exitOK, true, "Usage: seedbatch retry [flags] BATCH"},
		{[]string{"retry", "b1", "--state", "failed", "--help"}, exitOK, true, "Usage: seedbatch retry [flags] BATCH"},
		{nil, exitUsage, false, "Commands:"},
		{[]string{"run"}, exitUsage, false, "Usage: seedbatch run [flags] FILE.csv"},
		{[]string{"help", "run", "enqueue"}, exitUsage, false, "Usage: seedbatch help [COMMAND]"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cliStreams(t, noRedis, tt.args...)
			shown, other := stdout, stderr
			if !tt.toStdout {
				shown, other = stderr, stdout
			}
			if code != tt.code || !strings.Contains(shown, tt.want) || (tt.toStdout && other != "") || (!tt.toStdout && other != "") {
				t.Errorf("exit %d, want %d with %q on %s\nstdout:\n%s\nstderr:\n%s",
					code, tt.code, tt.want, map[bool]string{true: "stdout", false: "stderr"}[tt.toStdout], stdout, stderr)
			}
		})
	}
}

// flagEntry matches the first line of a flag's help.
var flagEntry = regexp.MustCompile(`^  (-h, )?--[a-z]`)

// TestHelpEveryCommand checks the help of every command in the table: one
// line each in the list, flags written --flag, every default shown once.
func TestHelpEveryCommand(t *testing.T) {
	t.Parallel()
	code, list, stderr := cliStreams(t, noRedis, "help")
	if code != exitOK {
		t.Fatalf("help: exit %d\n%s", code, stderr)
	}
	for _, l := range strings.Split(list, "\n") {
		if utf8.RuneCountInString(l) > usageWidth {
			t.Errorf("help: line wider than %d columns: %q", usageWidth, l)
		}
	}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if n := strings.Count(list, "\n  "+c.name+" "); n != 1 {
				t.Errorf("the command list has %d lines for %s, want 1:\n%s", n, c.name, list)
			}
			code, stdout, stderr := cliStreams(t, noRedis, "help", c.name)
			if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "Usage: seedbatch "+c.name) {
				t.Fatalf("help %s: exit %d\nstdout:\n%s\nstderr:\n%s", c.name, code, stdout, stderr)
			}
			// Each flag's entry: its first line and the indented lines under it.
			var entries []string
			for _, l := range strings.Split(stdout, "\n") {
				if utf8.RuneCountInString(l) > usageWidth {
					t.Errorf("line wider than %d columns: %q", usageWidth, l)
				}
				switch {
				case flagEntry.MatchString(l):
					entries = append(entries, l)
				case strings.HasPrefix(l, "    ") && len(entries) > 0:
					entries[len(entries)-1] += " " + strings.TrimSpace(l)
				case strings.HasPrefix(l, "  -"):
					t.Errorf("a flag not written --flag: %q", l)
				}
			}
			if len(entries) == 0 {
				t.Fatalf("no flags listed:\n%s", stdout)
			}
			for _, e := range entries {
				if n := strings.Count(e, "default"); n > 1 {
					t.Errorf("a default shown %d times: %q", n, e)
				}
				if strings.Contains(e, "(default -") || strings.Contains(e, "(default: -") {
					t.Errorf("a negative sentinel shown as the default: %q", e)
				}
			}
		})
	}
}

// TestHelpRetryBudget is the example: --budget's help explains its
// default in words, once.
func TestHelpRetryBudget(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"run", "retry"} {
		_, stdout, _ := cliStreams(t, noRedis, cmd, "--help")
		i := strings.Index(stdout, "--budget SECONDS")
		if i < 0 {
			t.Fatalf("%s --help has no --budget SECONDS:\n%s", cmd, stdout)
		}
		entry := stdout[i:]
		entry = entry[:strings.Index(entry, "\n  -")]
		if strings.Contains(entry, "-1") || strings.Count(entry, "default") != 1 {
			t.Errorf("%s --budget: %q", cmd, entry)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, `unknown command "stauts"; did you mean "status"?`},
		{[]string{"help", "stauts"}, `unknown command "stauts"; did you mean "status"?`},
		{[]string{"wroker"}, `unknown command "wroker"; did you mean "worker"?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\n"},
		{[]string{"run", "--dryrun", "x.csv"}, "unknown flag --dryrun; did you mean --dry-run?"},
		{[]string{"retry", "b1", "--stat", "failed"}, "unknown flag --stat; did you mean --state?"},
		{[]string{"results", "b1", "--fromat", "csv"}, "unknown flag --fromat; did you mean --format?"},
		{[]string{"--verison"}, "unknown flag --verison; did you mean --version?"},
		{[]string{"run", "--zzz", "x.csv"}, "unknown flag --zzz\n"},
		{[]string{"run", "--budget", "lots", "x.csv"}, `--budget "lots": want a whole number`},
		{[]string{"run", "x.csv", "--batch"}, "flag needs an argument: --batch"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := cliStreams(t, noRedis, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) || stdout != "" {
				t.Errorf("exit %d, want %d with %q on stderr\nstdout:\n%s\nstderr:\n%s", code, exitUsage, tt.want, stdout, stderr)
			}
			if !strings.Contains(stderr, "Usage: seedbatch") {
				t.Errorf("no usage with the error:\n%s", stderr)
			}
		})
	}
}

func TestDidYouMeanEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"status", "status", 0},
		{"stauts", "status", 1}, // two neighbours swapped
		{"dryrun", "dry-run", 1},
		{"abc", "ca", 3}, // a swap, then no second edit of the swapped letters
		{"kitten", "sitting", 3},
		{"wroker", "worker", 1},
		{"ça", "ca", 1}, // letters, not bytes
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestDidYouMeanSuggest(t *testing.T) {
	t.Parallel()
	cmds := []string{"run", "enqueue", "worker", "status", "results", "retry", "resume", "sim"}
	tests := []struct {
		word, want string
	}{
		{"stauts", "status"},
		{"enqeue", "enqueue"},
		{"rnu", "run"},
		{"stat", "status"}, // the only command it begins
		{"re", ""},         // too short to guess from
		{"res", ""},        // begins results and resume
		{"frobnicate", ""},
		{"xyz", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.word, cmds); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"version", "--version"} {
		code, stdout, stderr := cliStreams(t, nil, arg)
		if code != exitOK || stderr != "" {
			t.Fatalf("%s: exit %d\n%s%s", arg, code, stdout, stderr)
		}
		for _, want := range []string{"seedbatch ", "module    github.com/seedbatch/seedbatch\n", "go        " + runtime.Version() + "\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: no %q in\n%s", arg, want, stdout)
			}
		}
		if !regexp.MustCompile(`(?m)^revision  ([0-9a-f]{40}( \(modified: uncommitted changes\))?|unknown: built without VCS information.*)$`).MatchString(stdout) {
			t.Errorf("%s: no revision line in\n%s", arg, stdout)
		}
	}
}

func TestVersionFormat(t *testing.T) {
	t.Parallel()
	info := func(settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/seedbatch/seedbatch", Version: "v1.2.3"}}
		for i := 0; i < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	rev := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"clean checkout", info("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false"), true,
			"seedbatch v1.2.3\nmodule    github.com/seedbatch/seedbatch\nrevision  " + rev + "\ncommitted 2026-01-02T03:04:05Z\ngo        go1.26.8\n"},
		{"modified checkout", info("vcs.revision", rev, "vcs.modified", "true"), true,
			"seedbatch v1.2.3\nmodule    github.com/seedbatch/seedbatch\nrevision  " + rev + " (modified: uncommitted changes)\ngo        go1.26.8\n"},
		{"no VCS information", info(), true,
			"seedbatch v1.2.3\nmodule    github.com/seedbatch/seedbatch\nrevision  unknown: built without VCS information"},
		{"no build information", nil, false, "seedbatch: no build information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			writeVersion(&b, tt.info, tt.ok)
			if !strings.HasPrefix(b.String(), tt.want) {
				t.Errorf("got\n%s\nwant it to begin\n%s", b.String(), tt.want)
			}
		})
	}
}

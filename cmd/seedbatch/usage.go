package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// usageWidth is the width help text is wrapped to.
const usageWidth = 100

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandList prints the commands, one line each.
func (m *Main) commandList(w io.Writer) {
	fmt.Fprintln(w, "Usage: seedbatch COMMAND [flags] [args]")
	fmt.Fprintln(w, "\nCommands:")
	cmds := commands()
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name)+1+len(c.args))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w, "\nRun \"seedbatch help COMMAND\" (or \"seedbatch COMMAND --help\") for a command's flags.")
}

// unknownCommand prints the commands on stderr and returns the usage error
// for name, with the likeliest command it was meant to be.
func (m *Main) unknownCommand(name string) error {
	m.commandList(m.Stderr)
	if strings.HasPrefix(name, "-") {
		msg := "unknown flag " + name
		if s := suggest(strings.TrimLeft(name, "-"), []string{"help", "version"}); s != "" {
			msg += "; did you mean --" + s + "?"
		}
		return fail(exitUsage, "%s", msg)
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fail(exitUsage, "%s", msg)
}

func (m *Main) helpCmd(ctx context.Context, args []string) error {
	fs := m.newFlags("help", "[COMMAND]")
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		m.commandList(m.Stdout)
		return nil
	case 1:
		c, ok := lookup(fs.Arg(0))
		if !ok {
			return m.unknownCommand(fs.Arg(0))
		}
		// Every command parses its flags before it does anything else.
		return c.run(m, ctx, []string{"--help"})
	}
	fs.Usage()
	return fail(exitUsage, "help: want at most one command")
}

// newFlags returns the flag set of a command, without the flags every
// command shares (m.flags adds them). Its Usage prints the command's help on
// stderr, for usage errors; --help prints it on stdout.
func (m *Main) newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages write flags as -name: parseFlags
	// writes its own.
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printUsage(m.Stderr, fs, args) }
	return fs
}

// parseFlags parses args into fs (flags may come before or after the
// arguments). --help or -h prints the command's help on stdout and returns
// flag.ErrHelp; a bad flag prints it on stderr and returns a usage error
// that names the flag, with the likeliest flag it was meant to be.
func (m *Main) parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {}
	err := parseInterspersed(fs, args)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		printUsage(m.Stdout, fs, commandArgs(fs.Name()))
		return flag.ErrHelp
	}
	fs.Usage()
	return &exitError{code: exitUsage, err: errors.New(flagError(fs, err))}
}

// commandArgs is the arguments part of a command's usage line.
func commandArgs(name string) string {
	c, _ := lookup(name)
	return c.args
}

// flagError rewrites an error of the flag package the way this help writes
// flags (--name), suggesting the flag a mistyped one was meant to be.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag --" + name
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := suggest(name, append(names, "help")); s != "" {
			msg += "; did you mean --" + s + "?"
		}
		return msg
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		// "invalid value "abc" for flag -budget: parse error"
		reason := m[3]
		if f := fs.Lookup(m[2]); f != nil && strings.Contains(reason, "parse error") {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case int, int64, uint, uint64:
					reason = "want a whole number"
				case float64:
					reason = "want a number"
				case bool:
					reason = "want true or false"
				case time.Duration:
					reason = "want a duration such as 30s or 5m"
				}
			}
		}
		return fmt.Sprintf("--%s %q: %s", m[2], m[1], reason)
	}
	for _, p := range []string{"flag needs an argument: -", " for flag -", " for -"} {
		msg = strings.Replace(msg, p, p+"-", 1)
	}
	return msg
}

// invalidValue matches the flag package's error for a value a flag refused.
var invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): (.*)$`)

// commonFlags are the names of the flags every command shares.
var commonFlags = func() []string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(common).register(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}()

// printUsage writes a command's help: its usage line, what it does, and
// its flags written as --name, each default shown once.
func printUsage(w io.Writer, fs *flag.FlagSet, args string) {
	line := "Usage: seedbatch " + fs.Name()
	var own, shared []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(commonFlags, f.Name) {
			shared = append(shared, f)
		} else {
			own = append(own, f)
		}
	})
	if len(own)+len(shared) > 0 {
		line += " [flags]"
	}
	if args != "" {
		line += " " + args
	}
	fmt.Fprintln(w, line)
	if c, ok := lookup(fs.Name()); ok && c.summary != "" {
		fmt.Fprintln(w)
		s := []rune(c.summary)
		s[0] = unicode.ToUpper(s[0])
		for _, l := range wrap(string(s)+".", usageWidth) {
			fmt.Fprintln(w, l)
		}
	}
	sections := []helpSection{
		{"Flags:", helpEntries(own)},
		{"Flags every command takes:", helpEntries(shared)},
	}
	help := helpEntry{"-h, --help", "show this help"}
	if len(shared) > 0 {
		sections[1].entries = append(sections[1].entries, help)
	} else {
		sections[0].entries = append(sections[0].entries, help)
	}
	printSections(w, sections)
}

// helpEntry is one flag of a help text: its name and value, and what it does.
type helpEntry struct{ name, text string }

// helpSection is a titled list of flags.
type helpSection struct {
	title   string
	entries []helpEntry
}

// helpEntries describes flags, each with its default.
func helpEntries(flags []*flag.Flag) []helpEntry {
	var out []helpEntry
	for _, f := range flags {
		arg, text := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			name += " " + argName(arg)
		}
		out = append(out, helpEntry{name, text + defaultNote(f, text)})
	}
	return out
}

// printSections prints the sections of flags that have any, texts wrapped
// in one column beside the names; a name too long for that column has its
// text under it.
func printSections(w io.Writer, sections []helpSection) {
	width := 0
	for _, s := range sections {
		for _, e := range s.entries {
			width = max(width, len(e.name))
		}
	}
	width = min(width, 32)
	for _, s := range sections {
		if len(s.entries) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", s.title)
		for _, e := range s.entries {
			text := wrap(e.text, usageWidth-4-width-2)
			if len(e.name) > width {
				fmt.Fprintf(w, "  %s\n", e.name)
				for _, l := range text {
					fmt.Fprintf(w, "  %*s  %s\n", width, "", l)
				}
				continue
			}
			for i, l := range text {
				name := ""
				if i == 0 {
					name = e.name
				}
				fmt.Fprintf(w, "  %-*s  %s\n", width, name, l)
			}
		}
	}
}

// argName is the placeholder of a flag's value: the back-quoted word of its
// usage text, else a word for its type.
func argName(arg string) string {
	switch arg {
	case "string", "value":
		return "VALUE"
	case "int", "uint":
		return "N"
	case "float":
		return "NUMBER"
	case "duration":
		return "DURATION"
	}
	return arg
}

// defaultNote is the "(default: X)" a flag's help ends with: empty when the
// text already says what the default is, or when the default is the zero
// value, which says nothing.
func defaultNote(f *flag.Flag, text string) string {
	if strings.Contains(text, "default") {
		return ""
	}
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return ""
	}
	return " (default: " + f.DefValue + ")"
}

// wrap breaks text into lines of at most width columns, between words.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for word := range strings.FieldsSeq(text) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}

// suggest returns the candidate that word is most likely a typo of: the
// nearest by edit distance, if within a third of word's length (at least
// 1, at most 2), else the only candidate that begins with word (of at least
// three letters). It returns "" when none is likely.
func suggest(word string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(word, c)
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" && bestDist <= min(2, max(1, utf8.RuneCountInString(word)/3)) {
		return best
	}
	prefixed := ""
	for _, c := range candidates {
		if utf8.RuneCountInString(word) >= 3 && strings.HasPrefix(c, word) {
			if prefixed != "" {
				return ""
			}
			prefixed = c
		}
	}
	return prefixed
}

// editDistance is the number of single-letter insertions, deletions,
// substitutions and swaps of two neighbours that turn a into b (the
// optimal string alignment distance).
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance between s[:i] and t[:j].
	d := make([][]int, len(s)+1)
	for i := range d {
		d[i] = make([]int, len(t)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(s)][len(t)]
}

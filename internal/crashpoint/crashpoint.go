// Package crashpoint kills the process at named points of its work, for
// tests and drills that prove a crash there loses nothing and pays for
// nothing twice. A process builds one Set from the SEEDBATCH_CRASHPOINT
// environment variable at start and hands it to the components that have
// crash points; a nil Set, or a name it does not arm, costs one map lookup.
//
// The variable holds comma-separated entries NAME or NAME@N: the process
// dies at the N-th time it reaches that point (default the first), with
// SIGKILL, exactly as kill -9 would kill it (os.Exit on systems without
// signals), so nothing deferred runs and nothing is flushed.
package crashpoint

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// EnvVar names the environment variable a process reads its Set from.
const EnvVar = "SEEDBATCH_CRASHPOINT"

// The points.
const (
	// AfterSubmitting: a row was marked submitting in Redis, before its
	// create is sent.
	AfterSubmitting = "after-submitting"
	// AfterCreateSent: a create's request body was written, before its
	// answer is read.
	AfterCreateSent = "after-create-sent"
	// AfterCreateAnswer: a create's answer with a task id was received,
	// before the task id is stored.
	AfterCreateAnswer = "after-create-answer"
	// MidDownload: part of a video's body was written to its temporary
	// file.
	MidDownload = "mid-download"
	// MidJournalWrite: half of a journal record's bytes were written.
	MidJournalWrite = "mid-journal-write"
)

// Names lists every point, in the order a row meets them.
var Names = []string{AfterSubmitting, AfterCreateSent, AfterCreateAnswer, MidDownload, MidJournalWrite}

// Set is the armed points of one process. Its methods are safe for
// concurrent use; a nil *Set arms nothing.
type Set struct {
	mu    sync.Mutex
	at    map[string]int // the hit to die at
	hits  map[string]int // hits so far
	crash func()         // kills the process (tests replace it)
}

// Parse reads a Set from the variable's value: comma-separated NAME or
// NAME@N entries. An empty value gives a nil Set; an unknown name or a
// count that is not a positive number is an error naming it.
func Parse(value string) (*Set, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	s := &Set{at: map[string]int{}, hits: map[string]int{}, crash: kill}
	for _, entry := range strings.Split(value, ",") {
		entry = strings.TrimSpace(entry)
		name, count, hasCount := strings.Cut(entry, "@")
		n := 1
		if hasCount {
			var err error
			if n, err = strconv.Atoi(count); err != nil || n < 1 {
				return nil, fmt.Errorf("%s: %q: the count after @ must be a positive number", EnvVar, entry)
			}
		}
		if !slices.Contains(Names, name) {
			return nil, fmt.Errorf("%s: unknown crash point %q (known: %s)", EnvVar, name, strings.Join(Names, ", "))
		}
		s.at[name] = n
	}
	return s, nil
}

// FromEnv reads the Set from EnvVar through getenv.
func FromEnv(getenv func(string) (string, bool)) (*Set, error) {
	v, _ := getenv(EnvVar)
	return Parse(v)
}

// Armed reports whether name is armed, so that a caller can split work it
// would otherwise do at once (half a record, then the point).
func (s *Set) Armed(name string) bool {
	if s == nil {
		return false
	}
	_, ok := s.at[name]
	return ok
}

// Hit counts one pass through the point name and kills the process when
// the count reaches the one armed. It does nothing for a nil Set or a name
// not armed.
func (s *Set) Hit(name string) {
	if !s.Armed(name) {
		return
	}
	s.mu.Lock()
	s.hits[name]++
	due := s.hits[name] == s.at[name]
	s.mu.Unlock()
	if due {
		s.crash()
	}
}

// String lists the armed points as the variable would.
func (s *Set) String() string {
	if s == nil {
		return ""
	}
	var parts []string
	for _, name := range Names {
		if n, ok := s.at[name]; ok {
			parts = append(parts, name+"@"+strconv.Itoa(n))
		}
	}
	return strings.Join(parts, ",")
}

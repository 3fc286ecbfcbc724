// Package rundir keeps the private state of one local run of a batch in the
// .run directory of the batch's output directory (<out_dir>/<batch>/.run,
// or <state_dir>/<batch>/.run when out_dir is a bucket;
// mode 0700): the lock that makes the run exclusive, the journal of a run on
// an embedded Redis, which store keeps the batch's records, the callback
// secret, and the addresses that a resumed run listens on again so that
// callbacks and result URLs given to the provider before a stop still reach
// it. The state of an earlier run on another store is retired into a
// retired-<time> directory, where nothing reads it again. Its files have
// mode 0600; nothing serves them (the dashboard serves only the videos
// recorded on job rows).
package rundir

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Name is the name of the private directory inside a batch's output
// directory.
const Name = ".run"

// File names inside the directory.
const (
	// Journal is the journal of a run on an embedded Redis.
	Journal = "journal.jsonl"
	// CallbackSecret keys the callback tokens of a run in callback mode.
	CallbackSecret = "callback.secret"
	// CallbackAddr is where the run's callback receiver listened.
	CallbackAddr = "callback.addr"
	// SimAddr is where the run's built-in simulator listened.
	SimAddr = "sim.addr"
	// Store says which store keeps the batch's records (see Dir.Store).
	Store    = "store"
	lockFile = "lock"
	// retiredPrefix starts the name of a directory of retired state.
	retiredPrefix = "retired-"
)

// legacy lists the files earlier versions kept in the batch directory itself.
var legacy = []string{Journal, CallbackSecret, CallbackAddr, SimAddr}

// BusyError is returned by Open when another process runs the batch.
type BusyError struct {
	// Batch is the batch directory's name; PID the process holding it, or
	// 0 when it could not be read.
	Batch string
	PID   int
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("batch %s is already running (pid %d)", e.Batch, e.PID)
	}
	return fmt.Sprintf("batch %s is already running", e.Batch)
}

// LegacyError is returned by Open when the batch directory holds a journal
// written by an earlier version, which a resume cannot check against the
// file it came from.
type LegacyError struct{ Path string }

func (e *LegacyError) Error() string {
	return fmt.Sprintf("%s was written by an earlier version of seedbatch, which did not record which file it came from: "+
		"resume that batch with that version, or move the file away to start the batch over (every row is created, and billed, again)", e.Path)
}

// Dir is the locked private directory of one batch's run. Close it when
// the run ends.
type Dir struct {
	path string
	lock *os.File
}

// Open creates (if needed) the private directory of the batch whose output
// directory is batchDir, and takes its lock for this process. It fails with
// a *BusyError when another process holds it, and with a *LegacyError when
// batchDir holds an earlier version's journal.
func Open(batchDir string) (*Dir, error) {
	if _, err := os.Stat(filepath.Join(batchDir, Journal)); err == nil {
		return nil, &LegacyError{Path: filepath.Join(batchDir, Journal)}
	}
	path := filepath.Join(batchDir, Name)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := os.Chmod(path, 0o700); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(path, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := lock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errLocked) {
			b, _ := os.ReadFile(f.Name())
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &BusyError{Batch: filepath.Base(batchDir), PID: pid}
		}
		return nil, fmt.Errorf("run directory: lock: %w", err)
	}
	d := &Dir{path: path, lock: f}
	if err := d.writePID(); err != nil {
		d.Close()
		return nil, err
	}
	// Files an earlier version kept beside the videos move in here.
	for _, name := range legacy[1:] {
		old := filepath.Join(batchDir, name)
		if _, err := os.Stat(old); err == nil {
			_ = os.Rename(old, d.Path(name))
			_ = os.Chmod(d.Path(name), 0o600)
		}
	}
	return d, nil
}

func (d *Dir) writePID() error {
	if err := d.lock.Truncate(0); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	if _, err := d.lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	return nil
}

// Close releases the lock.
func (d *Dir) Close() error {
	_ = d.lock.Truncate(0)
	return d.lock.Close() // closing the file releases the lock
}

// Path returns the path of a file in the directory.
func (d *Dir) Path(name string) string { return filepath.Join(d.path, name) }

// Secret returns the content of the named file, creating it with
// generate() if it does not exist yet; a resumed run so keeps the secret of
// the run before it.
func (d *Dir) Secret(name string, generate func() string) (string, error) {
	if b, err := os.ReadFile(d.Path(name)); err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("run directory: %w", err)
	}
	v := generate()
	if err := os.WriteFile(d.Path(name), []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	return v, nil
}

// Listen listens again on the address recorded in the named file, when
// there is one and it is free, else on addr; it records the address it
// listens on.
func (d *Dir) Listen(name, addr string) (net.Listener, error) {
	var ln net.Listener
	if prev, err := os.ReadFile(d.Path(name)); err == nil {
		ln, _ = net.Listen("tcp", strings.TrimSpace(string(prev)))
	}
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(d.Path(name), []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("run directory: %w", err)
	}
	return ln, nil
}

// Store returns what SetStore recorded: which store keeps the batch's
// records ("" when nothing is recorded).
func (d *Dir) Store() (string, error) {
	b, err := os.ReadFile(d.Path(Store))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SetStore records which store keeps the batch's records.
func (d *Dir) SetStore(desc string) error {
	if err := os.WriteFile(d.Path(Store), []byte(desc+"\n"), 0o600); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	return nil
}

// Retire moves the state of the batch's earlier run out of the way: the
// journal and the store record, and the named files of the batch directory
// (its results), into a new directory retired-<now> of the private
// directory, where no run reads them again. It returns that directory's
// path, and moves nothing when there is nothing to move.
func (d *Dir) Retire(now time.Time, batchFiles ...string) (string, error) {
	var moves [][2]string
	for _, name := range []string{Journal, Store} {
		moves = append(moves, [2]string{d.Path(name), name})
	}
	for _, name := range batchFiles {
		moves = append(moves, [2]string{filepath.Join(filepath.Dir(d.path), name), name})
	}
	dir := d.Path(retiredPrefix + now.UTC().Format("20060102T150405.000Z"))
	made := false
	for _, mv := range moves {
		if _, err := os.Lstat(mv[0]); err != nil {
			continue
		}
		if !made {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return "", fmt.Errorf("run directory: %w", err)
			}
			made = true
		}
		if err := os.Rename(mv[0], filepath.Join(dir, mv[1])); err != nil {
			return "", fmt.Errorf("run directory: %w", err)
		}
	}
	if !made {
		return "", nil
	}
	return dir, nil
}

// Journals returns the journal paths of every batch directory under outDir
// that has one: the runs made there before.
func Journals(outDir string) []string {
	paths, _ := filepath.Glob(filepath.Join(outDir, "*", Name, Journal))
	return paths
}

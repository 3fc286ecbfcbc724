package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strings"
)

// FileSuffix ends the name of a variable that holds the path of a file with
// a secret's value, e.g. SEEDANCE_API_KEY_FILE.
const FileSuffix = "_FILE"

// maxSecretFile caps the size of a secret file: a secret is short, and a
// path pointing at the wrong file (a log, a device) must not be read whole.
const maxSecretFile = 64 << 10

// secretPaths are the fields whose variables also take the _FILE form: every
// Secret field, and redis.url, whose password is a secret too.
func secretPaths() map[string]bool {
	out := map[string]bool{"redis.url": true}
	t := reflect.TypeOf(Config{})
	walk(t, "", func(path string, index []int) {
		if t.FieldByIndex(index).Type == reflect.TypeOf(Secret("")) {
			out[path] = true
		}
	})
	return out
}

// FileVariables lists, sorted, every variable that names a secret file:
// SEEDBATCH_<SECTION>_<FIELD>_FILE of each secret field and the _FILE form
// of the well-known variables that set one.
func FileVariables() []string {
	paths := secretPaths()
	var out []string
	for path := range paths {
		out = append(out, EnvName(path)+FileSuffix)
	}
	for name, path := range envAliases {
		if paths[path] {
			out = append(out, name+FileSuffix)
		}
	}
	sort.Strings(out)
	return out
}

// lookupEnv returns the value of the variable name and whether it is set.
// When fileable, name+FileSuffix may name a file holding the value instead.
func lookupEnv(env func(string) (string, bool), name string, fileable bool) (string, bool, error) {
	v, ok := env(name)
	if !fileable {
		return v, ok, nil
	}
	fileVar := name + FileSuffix
	path, fok := env(fileVar)
	if !fok || path == "" {
		return v, ok, nil
	}
	if ok && v != "" {
		return "", false, fmt.Errorf("config: %s and %s are both set: set only one", name, fileVar)
	}
	s, err := readSecretFile(path)
	if err != nil {
		return "", false, fmt.Errorf("config: %s: %w", fileVar, err)
	}
	return s, true, nil
}

// readSecretFile returns the content of the file at path without its
// trailing line breaks.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return "", fmt.Errorf("%w (it must be readable by this process's user, uid %d)", err, os.Getuid())
		}
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", err // names the path
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s: larger than %d bytes, not a secret", path, maxSecretFile)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

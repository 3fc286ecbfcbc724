package redisconn

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Slots is the number of Redis Cluster's hash slots.
const Slots = 16384

// Slot returns the Redis Cluster hash slot of key: CRC16 of the key, or of
// its hash tag (what is between the first '{' and the next '}', when not
// empty), modulo Slots.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % Slots)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// multiKey gives, for the commands that take several keys, the position of
// the first key and the step between keys (0: every argument from first to
// the end, less trailing ones); commands not listed take at most one key,
// their first argument.
var multiKey = map[string]struct{ first, step, trailing int }{
	"del": {1, 1, 0}, "unlink": {1, 1, 0}, "exists": {1, 1, 0}, "touch": {1, 1, 0}, "mget": {1, 1, 0},
	"mset": {1, 2, 0}, "msetnx": {1, 2, 0}, "sunion": {1, 1, 0}, "sunionstore": {1, 1, 0},
	"sinter": {1, 1, 0}, "sinterstore": {1, 1, 0}, "sdiff": {1, 1, 0}, "sdiffstore": {1, 1, 0},
	"rename": {1, 1, 0}, "renamenx": {1, 1, 0}, "copy": {1, 1, 0}, "smove": {1, 1, 1},
	"rpoplpush": {1, 1, 0}, "lmove": {1, 1, 2}, "blmove": {1, 1, 3}, "brpoplpush": {1, 1, 1},
	"blpop": {1, 1, 1}, "brpop": {1, 1, 1}, "pfcount": {1, 1, 0}, "pfmerge": {1, 1, 0},
	"watch": {1, 1, 0},
}

// noKey lists the commands of a transaction that name no key.
var noKey = map[string]bool{"multi": true, "exec": true, "discard": true, "ping": true, "time": true,
	"info": true, "config": true, "script": true, "client": true, "hello": true, "select": true, "dbsize": true}

// keysOf returns the keys a command names, as far as a cluster routes it.
func keysOf(cmd redis.Cmder) []string {
	args := cmd.Args()
	name := strings.ToLower(cmd.Name())
	str := func(v any) string { return fmt.Sprint(v) }
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		if len(args) < 3 {
			return nil
		}
		n, _ := strconv.Atoi(str(args[2]))
		var keys []string
		for i := 3; i < 3+n && i < len(args); i++ {
			keys = append(keys, str(args[i]))
		}
		return keys
	case "zunionstore", "zinterstore", "zdiffstore":
		if len(args) < 3 {
			return nil
		}
		n, _ := strconv.Atoi(str(args[2]))
		keys := []string{str(args[1])}
		for i := 3; i < 3+n && i < len(args); i++ {
			keys = append(keys, str(args[i]))
		}
		return keys
	}
	if noKey[name] || len(args) < 2 {
		return nil
	}
	if m, ok := multiKey[name]; ok {
		var keys []string
		for i := m.first; i < len(args)-m.trailing; i += m.step {
			keys = append(keys, str(args[i]))
		}
		return keys
	}
	return []string{str(args[1])}
}

// SlotHook is a go-redis hook for tests: it records every command, script
// or transaction whose keys lie in more than one hash slot (which a Redis
// Cluster refuses), every keyspace scan (which on a Cluster sees one
// node's keys only), and the SHA1 of every script run.
type SlotHook struct {
	mu         sync.Mutex
	violations []string
	scripts    map[string]int
}

// Violations returns what the hook saw that a Cluster would refuse.
func (h *SlotHook) Violations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.violations...)
}

// Scripts returns how many times each script (by SHA1) was run.
func (h *SlotHook) Scripts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.scripts))
	for k, v := range h.scripts {
		out[k] = v
	}
	return out
}

func (h *SlotHook) check(what string, cmds []redis.Cmder) {
	slots := map[int]string{}
	for _, c := range cmds {
		name := strings.ToLower(c.Name())
		switch name {
		case "scan", "keys":
			h.add(what + ": " + name + " reads one node's keys on a Cluster (run it on every master)")
		case "evalsha", "evalsha_ro":
			h.script(fmt.Sprint(c.Args()[1]))
		case "eval", "eval_ro":
			h.script(ScriptSHA(fmt.Sprint(c.Args()[1])))
		}
		for _, k := range keysOf(c) {
			slots[Slot(k)] = k
		}
	}
	if len(slots) > 1 {
		keys := make([]string, 0, len(slots))
		for _, k := range slots {
			keys = append(keys, k)
		}
		h.add(fmt.Sprintf("%s: keys in %d slots: %s", what, len(slots), strings.Join(keys, " ")))
	}
}

func (h *SlotHook) add(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.violations = append(h.violations, v)
}

func (h *SlotHook) script(sha string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.scripts == nil {
		h.scripts = map[string]int{}
	}
	h.scripts[sha]++
}

// DialHook implements redis.Hook.
func (h *SlotHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook implements redis.Hook: each command on its own.
func (h *SlotHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.check(cmd.Name(), []redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook: a transaction (MULTI ...
// EXEC) as a whole, the commands of a plain pipeline each on its own (a
// cluster client splits those by slot).
func (h *SlotHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "multi") {
			names := make([]string, 0, len(cmds))
			for _, c := range cmds[1 : len(cmds)-1] {
				names = append(names, c.Name())
			}
			h.check("MULTI "+strings.Join(names, " "), cmds)
		} else {
			for _, c := range cmds {
				h.check(c.Name(), []redis.Cmder{c})
			}
		}
		return next(ctx, cmds)
	}
}

// ScriptSHA returns the SHA1 by which Redis names a script's source.
func ScriptSHA(src string) string {
	sum := sha1.Sum([]byte(src))
	return hex.EncodeToString(sum[:])
}

// ScriptsIn returns the sources of the scripts that the Go files of dir
// (tests excepted) define with redis.NewScript and a string literal.
func ScriptsIn(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "NewScript" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if src, err := strconv.Unquote(lit.Value); err == nil {
					out = append(out, src)
				}
			}
			return true
		})
	}
	return out, nil
}

// Command seedbatch turns CSV files of prompts into finished videos through
// the Seedance 1.5 Pro API, holding the provider's limits across every worker
// process. Run "seedbatch help" for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/seedbatch/seedbatch/internal/crashpoint"
)

func main() {
	// go-redis logs dial failures itself; seedbatch reports them as errors.
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	limitEnqueueHeap(os.Args[1:])
	crash, err := crashpoint.FromEnv(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "seedbatch:", err)
		os.Exit(exitUsage)
	}
	m := &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.LookupEnv, Environ: os.Environ, Crash: crash}
	os.Exit(m.Run(ctx, os.Args[1:]))
}

// enqueueHeapLimit is the soft heap limit of the enqueue command. Reading a
// file keeps two 64-bit hashes and two line numbers per row (to find
// duplicate rows and repeated ids) in maps without pointers, which a garbage
// collection does not scan: collecting more often costs little, and keeps a
// million-row file under 100 MB of memory.
const enqueueHeapLimit = 72 << 20

// limitEnqueueHeap sets the soft heap limit of the enqueue command, unless
// GOMEMLIMIT sets one.
func limitEnqueueHeap(args []string) {
	if len(args) > 0 && args[0] == "enqueue" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(enqueueHeapLimit)
	}
}

// quietLogger discards go-redis's internal log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Package bench measures, side by side in one run, how well seedbatch keeps
// the provider's slots busy compared with the script a user would write
// from the provider's advice. It is the logic of `seedbatch bench`.
//
// # Scenarios
//
// Each scenario runs the same jobs (Config.Jobs videos of Config.Duration
// seconds, each with its own 200-character prompt) against a fresh provider
// simulator (package sim) with the provider's real limits (1 000 tasks in
// flight, 10 000 requests a minute) and timing table, compressed by
// Config.TimeScale, and, for seedbatch, in a fresh Redis key namespace:
//
//   - baseline: the naive client, in this process. For each job it waits
//     for one of 1 000 local in-flight slots and a token of a local
//     10 000/min bucket (golang.org/x/time/rate, burst 1), creates the
//     task, sleeps 50 s, then reads its status every 5 s until it succeeds
//     or fails; a 429 backs off 2 s and tries again. Every wait is divided
//     by the time scale. One goroutine per job in flight; no downloads.
//   - polling: `seedbatch enqueue` of the jobs as a CSV file, then N
//     `seedbatch worker` processes (the executable in Config.Executable)
//     with the limits at the provider's values, downloading every video to
//     a temporary directory; async request type.
//   - callback: the same with --request-type callback; each worker serves
//     its callback receiver on a free loopback port.
//
// polling and callback run once for each count in Config.Workers. A
// scenario ends when every job is terminal (the batch counts are read at
// most every 200 ms); its workers are then stopped with SIGTERM, its keys
// deleted, and every process it started is ended, whatever happened.
//
// # Measures
//
// From the simulator (sim.Stats): busy utilization (the share of the 1 000
// slots generating between the 1 000th create and the last create),
// requests per job, detection lag (completion to the client's first
// noticing, in provider seconds), peak in flight, 429 answers and duplicate
// creates. From the worker processes' rusage after they exit: CPU time per
// job. From Redis INFO: commands and network bytes per job over the
// scenario (the benchmark's own few reads included).
//
// An enqueue line then times `seedbatch enqueue` of Config.EnqueueRows
// generated rows (rows a second and its maximum resident set) next to
// asynq's own Client.Enqueue of as many tasks from 32 goroutines into the
// same Redis.
//
// # Redis
//
// Config.RedisURL when set (its counters then include any other client's
// commands); otherwise a redis-server found on PATH, started on a free
// loopback port without persistence and stopped at the end; otherwise the
// embedded miniredis, whose figures are not comparable with a real
// server's.
package bench

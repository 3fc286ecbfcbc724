// Package drill runs seedbatch through crashes, Redis restarts and losses,
// and provider faults, and checks every row against the provider's ledger.
// It is the logic of `seedbatch drill`, which writes RELIABILITY.md.
//
// # What runs
//
// On loopback ports: a redis-server with AOF (appendfsync everysec) in a
// temporary directory, the provider simulator (package sim) in this process
// with the provider's limits and compressed time, and three `seedbatch
// worker` processes (Config.Executable), each with its callback receiver.
// A polling batch of Config.Rows rows and a callback batch of a fifth as
// many are enqueued with `seedbatch enqueue`. For the whole run, the
// simulator fails 1 % of tasks, drops 5 % of callbacks, repeats 10 %,
// follows 10 % with a stale one (out of order) and delays each by 300 ms.
//
// # Faults, in order
//
//   - Kills: a random worker gets SIGKILL each time the rows finished pass
//     one of Config.kills() random thresholds (22 per 10 000 rows); it is
//     replaced at once, on the same callback address.
//   - Provider faults: one window per kind (see providerFaults), switched
//     with sim.Sim.SetFaults, then forged callbacks (each must get 401).
//   - Redis: killed with SIGKILL and restarted from its AOF after 2, 10 and
//     45 s (1, 3, 6 s short); while it is down a callback with a valid
//     token must get 503, and the workers must still run afterwards.
//   - SIGTERM to every worker under load, then a restart.
//
// Once every row is terminal (stuck tasks are timed out by `seedbatch
// reconcile` when they are all that is left), Check compares each row with
// the simulator's creates per prompt and counts the leases left. Then two
// smaller batches lose Redis's data under running workers: a restart
// empty, and a restart from a snapshot older than the last creates (a
// failover to a stale replica). Workers must create nothing more and
// pause. Last, every fuzz target of the module runs for Config.FuzzTime.
package drill

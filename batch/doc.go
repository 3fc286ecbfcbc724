// Package batch keeps seedbatch's batch and job records in Redis: one hash
// per job (a CSV row), one counter hash per batch, and atomic state
// transitions that move a job and its batch's counters in one Lua script, so
// `status` never scans jobs.
//
// Key layout, under a configurable prefix P; every key of one batch shares
// the hash tag {batch id}, so the scripts run on Redis Cluster too:
//
//	P:batches                 ZSET  batch id -> creation time (ms)
//	P:b:{ID}:meta             HASH  source file, row count, creation and finish times, canceled flag
//	P:b:{ID}:counts           HASH  state -> number of jobs in it
//	P:b:{ID}:series           HASH  minute (since the epoch) -> "finished peak last": rows that
//	                                became terminal, most and last rows in flight (see Series)
//	P:b:{ID}:job:<row>        HASH  state, line, attempt, spec (in pieces s0, s1, ...),
//	                                provider task id, outcome, times
//	P:b:{ID}:tasks            SET   the provider task ids indexed for the batch
//	P:task:<provider task id> STRING the holder (batch:row:attempt) that owns the task
//	P:file:<sha256>           STRING the batch a file's content was enqueued as
//
// A finished batch's keys expire after the store's retention (see Retire).
// It also plans a CSV file into a batch (validation pass, batch id, video
// seconds) and exports a batch's results.
package batch

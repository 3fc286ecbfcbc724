// Package metrics exposes seedbatch's Prometheus metrics.
//
// Events (requests to the provider, waits for a limit, generation times,
// downloaded bytes) are counted in Redis by a Recorder, so that the /metrics
// endpoint of any one process, such as the dashboard, shows the totals of
// every worker sharing the Redis. At scrape time the Collector adds gauges
// read from Redis: jobs by state, in-flight leases, whether submitting is
// paused; Handler adds asynq's own queue metrics (asynq's x/metrics
// collector) for the namespace's queues. Every series exists from the first
// scrape, at 0 until its first event.
//
// Metric names:
//
//	seedbatch_provider_requests_total{kind,status}  creates and status reads by HTTP status ("error": no answer)
//	seedbatch_provider_rate_limited_total           answers 429
//	seedbatch_limit_wait_seconds_total{limit}       time handlers waited in place for a limit (rate, in_flight, cooldown)
//	seedbatch_limit_deferrals_total{limit}          tasks handed back to the queue to wait for a limit
//	seedbatch_generation_seconds                    histogram of provider generation times
//	seedbatch_download_bytes_total                  bytes of videos stored
//	seedbatch_jobs{state}                           jobs by state, all batches
//	seedbatch_leases_in_use                         in-flight leases held
//	seedbatch_submitting_paused{reason}             1 while submitting is paused, with the reason
//	seedbatch_account_leases_in_use{account}        in-flight leases held by each provider account
//	seedbatch_account_max_in_flight{account}        each account's in-flight limit
//	seedbatch_account_paused{account,reason}        1 while an account's submitting is paused
//	seedbatch_redis_up                              1 when the scrape could read Redis
//	asynq_queue_latency_seconds{queue} and the rest of asynq's x/metrics collector
package metrics

// Package sim is an in-process simulator of the Seedance 1.5 Pro provider
// (the APIXO task API described in PROVIDER.md). A *Sim is an http.Handler:
// serve it with httptest.NewServer in tests, or with an http.Server for the
// `seedbatch sim` command and for `seedbatch run` without an API key.
//
// # Routes
//
//	POST /api/v1/generateTask/seedance-1-5-pro          create a task
//	GET  /api/v1/statusTask/seedance-1-5-pro?taskId=ID  read a task
//	GET  /files/ID.mp4                                  the result video of a succeeded task
//	GET  /sim/stats                                     Stats as JSON
//
// The two provider endpoints answer exactly as the provider does: the same
// JSON envelope ({"code":...,"message":...,"data":...}), the same fields,
// the same HTTP statuses. The file and stats routes need no key and do not
// count against the rate limit. A result file is FileSize bytes of
// pseudo-random data derived from the task id, so its content and SHA-256
// (FileSHA256) are known in advance; result URLs use the Host of the status
// request that reported them.
//
// # Order of checks
//
// Every provider request goes through, in this order:
//
//  1. the bearer key: 401 {"code":401,"message":"Invalid or missing API key"};
//  2. the request limit: each create and each status read takes one token
//     from a token bucket (golang.org/x/time/rate) refilled at
//     RequestsPerMinute per simulated minute; with no token left the answer
//     is 429 with a Retry-After header (whole seconds, at least 1);
//  3. for a create: validation of the body (400, the message names the
//     field); then the in-flight limit: with MaxInFlight tasks created and not
//     yet ended the answer is 429 (with Retry-After) and nothing is created.
//
// Every 429 is counted in Stats.RateLimited. The create fields
// input.resolution and input.duration have no default and are required;
// request_type defaults to async, provider to auto, aspect_ratio to 1:1;
// unknown fields are ignored. Marker effects on a create come after
// validation: [sim:reject], then [sim:create-500], then the in-flight limit.
//
// # Stats
//
// Sim.Stats and GET /sim/stats report requests by kind ("create", "status",
// "file") and HTTP status (0 for a connection dropped by [sim:create-lost]),
// 429s, tasks created, in flight, at peak, succeeded and failed, tasks per
// exact prompt (Stats.MaxCreatesPerPrompt > 1 means a prompt was paid for
// twice) and the video seconds billed. FileSHA256 gives the expected hash of
// a task's result file, for checking downloads.
//
// # Time
//
// Tasks have no goroutines: their state is computed from the clock
// (Config.Now) on every request. A task's generation time is drawn
// uniformly from the provider's timing table (4 s video: 40–60 s, 8 s:
// 60–90 s, 12 s: 90–120 s) and divided by Config.TimeScale; the task is
// "pending" for the first 15% of it, then "processing", then "success" or
// "failed". The rate limiter is refilled on the same clock, at
// RequestsPerMinute×TimeScale/60 tokens per second of that clock.
//
// # Markers
//
// Text placed in a prompt or an image URL makes the simulator misbehave on
// purpose, so that clients can be tested against every failure the real
// provider can produce:
//
//	[sim:content-violation]  (prompt) the task fails with CONTENT_VIOLATION
//	sim-invalid-image        (in an image URL) the task fails with INVALID_IMAGE_URL
//	[sim:reject]             (prompt) the create answers 400 and creates nothing
//	[sim:create-500]         (prompt) the first two creates of that exact prompt answer
//	                         500 {"code":500,"message":"internal error"} and create
//	                         nothing; later ones succeed
//	[sim:create-lost]        (prompt) the task is created (and billed), then the
//	                         connection is closed without any answer
//	[sim:create-502]         (prompt) the task is created, the answer is 502 with an
//	                         HTML body (text/html, "<html>Bad Gateway</html>")
//	[sim:create-no-id]       (prompt) the task is created, the answer is
//	                         200 {"code":200,"message":"success","data":{}}
//	[sim:status-500]         (prompt) the first two status reads of that task answer
//	                         500 {"code":500,"message":"internal error"}; later ones
//	                         answer normally
//
// Besides markers, Config.FailRate makes that fraction of tasks (drawn from a
// generator seeded with Config.Seed) fail with GENERATION_FAILED.
//
// # Limitations
//
// Tasks created with request_type "callback" are validated (callback_url
// must be an absolute http or https URL) and run like async tasks, but no
// callback is delivered: a client in callback mode learns the outcome from
// its safety poll. Image URLs are checked for form only, never fetched.
// State lives in memory and is lost with the process.
package sim

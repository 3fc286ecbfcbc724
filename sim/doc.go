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
//	GET  /sim/faults                                    the fault rates (Faults) as JSON
//	PUT  /sim/faults                                    replace the fault rates
//	POST /sim/unstick                                   end the stuck tasks: {"unstuck":N}
//
// The two provider endpoints answer exactly as the provider does: the same
// JSON envelope ({"code":...,"message":...,"data":...}), the same fields,
// the same HTTP statuses. The file, stats and GET /sim/faults routes need
// no key; PUT /sim/faults and POST /sim/unstick need the bearer key (401
// otherwise; PUT answers 400 naming the field for an invalid body). None of
// these routes counts against the rate limit or in Stats.Requests, and no
// fault touches them. A result file is FileSize bytes of
// pseudo-random data derived from the task id, so its content and SHA-256
// (FileSHA256) are known in advance; result URLs use the Host of the status
// request that reported them.
//
// # Order of checks
//
// Every provider request goes through, in this order:
//
//  1. the bearer key: 401 {"code":401,"message":"Invalid or missing API key"};
//  2. a 429 storm (Faults.RateLimited, see Faults): an extra 429 that takes
//     no token;
//  3. the request limit: each create and each status read takes one token
//     from a token bucket (golang.org/x/time/rate) refilled at
//     RequestsPerMinute per simulated minute; with no token left the answer
//     is 429 with a Retry-After header (whole seconds, at least 1);
//  4. for a create: validation of the body (400, the message names the
//     field); then the in-flight limit: with MaxInFlight tasks created and not
//     yet ended the answer is 429 (with Retry-After) and nothing is created.
//
// Every 429 is counted in Stats.RateLimited. The create fields
// input.resolution and input.duration have no default and are required;
// request_type defaults to async, provider to auto, aspect_ratio to 1:1;
// unknown fields are ignored. Marker effects on a create come after
// validation: [sim:reject], then [sim:create-500], then the create faults
// that create nothing, then the in-flight limit, then the markers and
// faults that create the task and answer badly.
//
// # Stats
//
// Sim.Stats and GET /sim/stats report requests by kind ("create", "status",
// "file") and HTTP status (0 for a connection dropped by [sim:create-lost]),
// 429s, tasks created, in flight, at peak, succeeded and failed, tasks per
// exact prompt (Stats.MaxCreatesPerPrompt > 1 means a prompt was paid for
// twice), the video seconds billed, status reads answered 200 per task
// (Stats.StatusReadsPerTask: a callback-mode client that does no routine
// polling leaves it nearly empty) and callback deliveries
// (Stats.Callbacks, see Callbacks). FileSHA256 gives the expected hash of
// a task's result file, for checking downloads. Stats.Faults,
// Stats.FaultEvents and Stats.Stuck count the faults injected (see Faults).
//
// Stats also measures how well a client uses the provider, from the
// creation and completion time of every task (24 bytes a task, computed on
// each call): Stats.BusyUtilization, the share of the MaxInFlight slots
// generating between the MaxInFlight-th create and the last create (1 for
// a client that refills every freed slot at once); Stats.DetectionLag, the
// median and 99th percentile of the time from a task's end to the client's
// first status read showing it ended (answered 200) or first callback
// delivery answered 200, in provider seconds (simulated time × TimeScale),
// with the count of ended tasks never noticed; Stats.RequestsPerJob
// (creates and status reads, whatever their answer, per task created); and
// Stats.DuplicateCreates (tasks created beyond the first per prompt).
//
// # Time
//
// Tasks have no goroutines: their state is computed from the clock
// (Config.Now) on every request (only callback-mode tasks also get a timer,
// see Callbacks). A task's generation time is drawn
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
//	[sim:create-500-created] (prompt) the task is created (and billed), then the
//	                         answer is 500 {"code":500,"message":"internal error"},
//	                         the provider's own JSON error body
//	[sim:create-code-500]    (prompt) the task is created, the answer is HTTP 200
//	                         {"code":500,"message":"internal error"}
//	[sim:status-500]         (prompt) the first two status reads of that task answer
//	                         500 {"code":500,"message":"internal error"}; later ones
//	                         answer normally
//	[sim:echo-create]        (prompt) the create answers 400 with a message that
//	                         repeats the request's Authorization header and
//	                         callback_url, as a careless provider might
//	[sim:echo-status]        (prompt) the first status read of that task answers 500
//	                         with a message that repeats the Authorization header
//	                         and the task's callback_url; later ones answer normally
//	[sim:status-unknown-state] (prompt) every status read of the task (and its
//	                         callback) answers 200 with the state "queued_v2"
//	                         (UnknownState); the task still runs and ends, and is
//	                         billed
//	[sim:status-bad-result]  (prompt) once the task succeeded, its status reads
//	                         (and callback) carry a resultJson that is not JSON
//
// Besides markers, these knobs misbehave at random, drawn at create time
// from a generator seeded with Config.Seed (under the simulator's lock, so
// one seed and one sequence of creates give the same decisions):
//
//	Config.FailRate          that fraction of tasks fail with GENERATION_FAILED
//	Config.CallbackDropRate  that fraction of callback-mode tasks lose their
//	                         callback entirely: never sent, never retried
//	Config.CallbackDupRate   that fraction of callback-mode tasks have their
//	                         successful delivery sent a second time shortly after
//	Config.CallbackDelay     every first delivery attempt waits this much longer
//	                         (real time, not divided by TimeScale)
//
// Config.Faults adds random provider faults, switchable at run time: see
// Faults.
//
// # Faults
//
// Config.Faults injects provider faults at random rates (0 to 1), for
// reliability drills. Sim.SetFaults and PUT /sim/faults replace the rates
// at run time (absent JSON fields are 0, unknown ones refused); Sim.Faults
// and GET /sim/faults read them:
//
//	{"create_500":0,"create_500_created":0,"create_502_created":0,
//	 "create_dropped":0,"create_dropped_created":0,"create_slow":0,
//	 "create_slow_created":0,"status_slow":0,"status_truncated":0,
//	 "status_unknown_state":0,"slow_delay":"1m30s","rate_limited":0,
//	 "retry_after_share":0,"stuck":0,"callback_stale":0}
//
// Every decision is drawn from the generator seeded with Config.Seed, under
// the simulator's lock, and only while its rate is above 0: a simulator
// without faults draws exactly what it drew before they existed. Each
// fault injected is counted in Stats.Faults under its kind, the JSON name
// of its rate (the constants FaultCreate500 and so on, listed in
// FaultKinds), except the storm's two kinds:
//
//	create_500              500 {"code":500,"message":"internal error"},
//	                        nothing created
//	create_dropped          the connection is closed unanswered, nothing created
//	create_slow             nothing created; 500 {"code":500,...} after SlowDelay
//	create_500_created      the task is created (and billed), then 500
//	                        {"code":500,"message":"internal error"}
//	create_502_created      the task is created, then 502 with an HTML gateway page
//	                        (text/html, "<html>Bad Gateway</html>")
//	create_dropped_created  the task is created, then the connection is closed
//	                        unanswered
//	create_slow_created     the task is created; its normal answer (200 and the
//	                        task id) is written after SlowDelay
//	status_slow             a status read's answer, computed when the read
//	                        arrives, is written after SlowDelay
//	status_truncated        a status read answers 200 with the first half of
//	                        its JSON body (Content-Length matching): malformed JSON
//	status_unknown_state    a status read answers 200 with the state UnknownState
//	rate_limited_retry_after     an extra 429 {"code":429,"message":"rate limit
//	                        exceeded"} with Retry-After: 1
//	rate_limited_no_retry_after  the same 429 without a Retry-After header
//	stuck                   the task never completes (see below)
//	callback_stale          after a task's final callback was answered 200, a
//	                        stale delivery showing it "processing" (see Callbacks)
//
// A create kind ending in "_created" always creates the task; the others
// never do. Each create that passed validation and carries no create
// marker gets one draw that picks at most one create fault (the create
// rates are shares of it, summing to at most 1); the faults that create
// nothing come before the in-flight limit, the others after it: a create
// the limit refuses answers 429 and gets no fault. Each status read of a
// known task likewise gets one draw among the status rates (summing to at
// most 1), after the status markers. Each provider request with the right
// key gets a storm draw (RateLimited), and a storm 429 a second draw
// (RetryAfterShare) for its header; the storm answers before the request
// limit and takes no token from it. Each created task gets a stuck draw,
// and each callback-mode task a stale draw, when it is created: changing
// the rates later does not change them.
//
// A slow answer is held for SlowDelay in real time (not divided by
// TimeScale; default 90s: set it past the client's time limit of a
// request). When the client goes away first, nothing is written; Close
// ends every hold at once. A slow answer is counted in Stats.Requests, with
// the status it is written with, when it is decided. A client learns of a
// task's end from a slow status read when the answer is written, and never
// from a truncated or unknown-state one (Stats.DetectionLag).
//
// A stuck task is pending then processing for ever. It keeps counting in
// flight, as at the provider: in Stats.InFlight, against MaxInFlight and
// as busy in Stats.BusyUtilization (an in-flight 429 whose earliest task
// in flight is stuck carries Retry-After: 1). Stats.Stuck counts the tasks
// stuck now. Sim.Unstick (POST /sim/unstick) ends every stuck task at
// once, in success or in the failure drawn when it was created, and
// starts its callback: a drill turns Stuck off, then unsticks, so that its
// run can finish.
//
// Faults never change the simulator's accounting: only created tasks
// count in Stats.Created, CreatedPerPrompt, CreatedSeconds and in flight;
// every storm 429 counts in Stats.RateLimited; a dropped answer counts
// under StatusLost. Stats.FaultEvents lists, in the order injected, each
// create fault (its prompt, whether the task was created and its id),
// each task drawn stuck and each stale callback sent, so that a client's
// records can be checked against them: a row whose create got
// create_500_created was billed once, and should end ambiguous (or be
// resolved by its callback), never created again.
//
// # Callbacks
//
// A task created with request_type "callback" (callback_url is required and
// must be an absolute http or https URL) gets, when it ends in success or
// failure, a POST to its callback_url with Content-Type application/json
// and exactly the body a status read of the task would answer at that
// moment: {"code":200,"message":"success","data":{...}}, with the result
// URL on the host the create request reached. The payload is not signed.
// Async tasks never get a callback, even with a callback_url.
//
// Deliveries happen in real time, with no request needed: at create, a
// timer (time.AfterFunc) is armed for the task's completion time minus
// Config.Now(); when it fires and the clock shows the task ended, the
// delivery starts in its own goroutine (when the clock does not, the timer
// is re-armed for the time left). Any request or Stats call that finds the
// task ended on the clock starts its delivery at once too, so with a fake
// clock advancing it is enough. A delivery is sent with
// Config.CallbackClient (default: a client with a 30 s/TimeScale timeout),
// each attempt also bounded by a 30 s/TimeScale deadline.
//
// An attempt succeeds when the receiver answers HTTP 200 in time; any other
// status, a connection error or a timeout fails it, and the delivery is
// retried up to 3 times, 30 s, 60 s then 120 s (divided by TimeScale) after
// the failed attempt. After 4 failed attempts the callback is abandoned.
// Config.CallbackDropRate, Config.CallbackDupRate and Config.CallbackDelay
// (see Markers) make deliveries lost, repeated 2 s/TimeScale after the
// successful attempt, or late, as PROVIDER.md warns they can be.
//
// Faults.CallbackStale makes deliveries arrive out of order: once the
// final state was delivered (answered 200), and after its duplicate if
// any, a single stale delivery is sent 2 s/TimeScale later, with the body
// a status read gave while the task was processing (state "processing",
// no completeTime). It is not retried, and a task whose final state was
// never delivered gets none.
//
// Stats.Callbacks counts attempts sent (duplicates and stale deliveries
// included), delivered (answered 200) and failed, tasks whose callback was
// dropped (counted when the task ends, with their ids in DroppedTasks),
// duplicates and stale deliveries sent, and tasks abandoned.
//
// Sim.Close stops the timers of tasks not yet ended and the waits between
// attempts (and of CallbackDelay), then waits for the attempts in progress
// to finish; after it no delivery starts. The simulator keeps answering
// requests after Close.
//
// # Limitations
//
// Image URLs are checked for form only, never fetched. State lives in
// memory and is lost with the process; pending callbacks are lost with it.
package sim

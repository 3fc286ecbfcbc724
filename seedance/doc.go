// Package seedance is the HTTP client of the Seedance 1.5 Pro video API,
// served by the APIXO task API (model id "seedance-1-5-pro").
//
// The provider has two calls: [Client.Create] submits a generation task and
// returns its id, and [Client.Status] reads a task's state and, once it
// succeeded, its result URLs. [ParseTask] decodes a status-read body; the
// provider POSTs the same body to a callback URL in callback mode.
//
// # Errors and money
//
// A created task is billed, and the provider has no idempotency key, no
// cancel call and no way to list tasks. So the one question a caller must be
// able to answer after a failed Create is "could the provider have created
// the task?". Every error returned by Create and Status is an [*Error] whose
// Kind is one of the sentinels below, so callers branch with [errors.Is]:
//
//   - [ErrInvalid]: 400 and other 4xx (but 408, a request timeout, is
//     ErrServer), and unexpected 1xx/3xx answers (redirects are not
//     followed); the request is wrong; do not retry.
//   - [ErrAuth]: 401 or 403; nothing will work until the key is fixed.
//   - [ErrNotFound]: 404; for Status, the task id is unknown.
//   - [ErrRateLimited]: 429; nothing was created; retry after
//     [Error.RetryAfter].
//   - [ErrServer]: a 5xx carrying the provider's own JSON error body (the
//     provider answered, and refused): nothing was created, safe to retry.
//     Status also uses ErrServer for every failure after its request was
//     written (timeouts, resets, malformed bodies), since reading is safe.
//   - [ErrNotSent]: the request never fully left this process (dial refused,
//     DNS, TLS, a reset before the request was written, or a context that
//     was already done): nothing was created, safe to retry.
//   - [ErrUnknownOutcome]: Create only. The request was written but no
//     usable answer came back: a timeout, a reset or EOF while waiting, a
//     5xx that is not the provider's JSON {"code":N,"message":"..."} (a
//     gateway page: the gateway may have forwarded the request), or a 2xx
//     without a valid task id. The
//     task may exist and be billed; never resend blindly.
//
// Whether the request was written is observed with
// [net/http/httptrace.ClientTrace.WroteRequest]. The client never sets an
// Idempotency-Key header, because Go's transport replays POSTs that carry
// one.
//
// Error strings never contain the API key or a full request URL; the key is
// also redacted from any message the provider echoes back.
package seedance

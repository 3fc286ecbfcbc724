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
// the task?". The rule is: after the request was written, only an answer
// that proves nothing was created is a kind that may be retried. Every
// error returned by Create and Status is an [*Error] whose Kind is one of
// the sentinels below, so callers branch with [errors.Is]:
//
//   - [ErrInvalid]: 400, 402 and other 4xx (but not 404, 408 or 429), and
//     unexpected 1xx/3xx answers (redirects are not followed); the request
//     is wrong or the account cannot pay; do not retry.
//   - [ErrAuth]: 401 or 403; nothing will work until the key is fixed.
//   - [ErrNotFound]: 404; for Status, the task id is unknown.
//   - [ErrRateLimited]: 429; nothing was created; retry after
//     [Error.RetryAfter].
//   - [ErrServer]: for Create, an answer whose HTTP status or JSON code is
//     in [Config.NotCreatedCodes] (codes the provider documents as "not
//     created"): safe to retry. For Status, a 5xx or 408 and every failure
//     after the request was written (timeouts, resets, a body cut short),
//     since reading is safe.
//   - [ErrNotSent]: the request never fully left this process (dial refused,
//     DNS, TLS, a reset before the request was written, or a context that
//     was already done): nothing was created, safe to retry.
//   - [ErrUnknownOutcome]: Create only. The request was written and the
//     answer proves nothing: a timeout, a reset or EOF while waiting; a
//     5xx or 408 not in Config.NotCreatedCodes, whether a gateway page or
//     the provider's own JSON (the provider does not document whether the
//     task was created before the error); a 2xx without a valid task id,
//     or whose JSON code is an error code other than 400, 401, 402, 403,
//     429 or one of Config.NotCreatedCodes; an error answer that names a
//     task id. The task may exist and be billed; never resend blindly.
//   - [ErrUnreadable]: Status only. A 2xx answer that cannot be used: not
//     the provider's JSON, an unknown state, another task's id, a
//     resultJson that is not JSON, or a success without result URLs. The
//     task may have ended (a success is billed); [Error.Excerpt] shows the
//     start of the answer. Reading again may help, but not forever.
//
// Codes that prove a create created nothing, whether as the HTTP status or
// as the JSON code of a 2xx: 429, 400, 401, 402 and 403, plus
// Config.NotCreatedCodes (none by default).
//
// Whether the request was written is observed with
// [net/http/httptrace.ClientTrace.WroteRequest]. The client never sets an
// Idempotency-Key header, because Go's transport replays POSTs that carry
// one.
//
// Error strings never contain the API key or a full request URL; the key is
// also redacted from any message the provider echoes back.
package seedance

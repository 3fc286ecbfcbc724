// Package dashboard is seedbatch's web UI for operators: server-rendered
// batch pages, a few write actions, the asynqmon queue monitor, the
// downloaded files, /metrics and health checks, in one http.Handler.
//
// # Routes
//
//	GET  /                          batches, newest first (?page=N, 100 per page): a progress bar
//	                                (done, failed, skipped and running rows apart), counts per state,
//	                                rate and ETA (batch.Pace), video seconds against the budget; a chart
//	                                of the page's batches over the last 3 hours; a banner when
//	                                submitting is paused, and the in-flight leases in use
//	GET  /batches/{id}              one batch: the same summary, a chart over its life, links to its
//	                                queues in the monitor, then its rows (?page=N, 100 per page; or
//	                                ?state=S[&from=ROW], the rows in state S, found a page at a time)
//	                                with prompt, state, provider task id, fail code and message, files
//	POST /batches/{id}/cancel       batch.Store.Cancel
//	POST /batches/{id}/retry        batch.Store.Resubmit of the rows in form field state
//	                                (ambiguous, failed or budget); each one is created and billed again
//	POST /submitting/pause          queue.PauseSubmitting (form field reason, optional)
//	POST /submitting/resume         queue.ResumeSubmitting
//	     /monitor/                  asynqmon (read-only unless writes are allowed for the request)
//	GET  /files/{batch}/{row}/{n}   the n-th file recorded on the job (Job.Files), read from Config.OutDir
//	GET  /metrics                   Config.Metrics, when set
//	GET  /healthz                   200 "ok" while the process serves
//	GET  /readyz                    200 when Redis answers PING within 1s, 503 otherwise
//
// Actions answer 303 See Other back to the page they came from.
//
// # Pages that follow a batch
//
// The list, while a batch on it is not finished, and the page of a batch
// that is not finished reload themselves every Config.Refresh (10 s) with
// a <meta http-equiv="refresh">, which needs no script; a finished batch's
// page does not. Rates and ETAs are batch.Pace's, the same as seedbatch
// status shows. The charts are SVG drawn on the server from the batches'
// minute series (batch.Series): bars of rows finished a minute, a line of
// the most tasks in flight in each minute, and the in-flight limit dashed,
// so an operator sees whether the provider's limit is in use.
//
// # Files
//
// /files/ serves only the videos recorded on job rows, by construction: a
// URL names a job and an index into its recorded files, never a path, so
// nothing else in the output directory (results, run's journal, callback
// secret and addresses, files no row records) has a URL at all. The
// recorded path is opened under Config.OutDir through os.Root, so a
// symbolic link cannot lead out; it must be a regular file and have no
// segment starting with a dot. Every other /files/ URL answers 404.
//
// # Host names
//
// A web page can point a name it controls at the dashboard's address (DNS
// rebinding) and read the dashboard through the user's browser, credentials
// or not. So the dashboard answers only to the Host names it is meant to be
// reached by, by the rule of package hostcheck, from Config.Listen and
// Config.AllowedHosts:
//
//   - listening on a loopback address or localhost: localhost, 127.0.0.1,
//     [::1] and the listen host itself;
//   - listening on a specific address or name: that host;
//   - listening on every interface (empty host, 0.0.0.0, ::): the loopback
//     names and this machine's interface addresses;
//   - always: each name in Config.AllowedHosts (exact, case-insensitive).
//
// The port of the Host header is ignored: a rebinding page changes the
// name, not the port, and a published container port or a proxy changes
// the port legitimately. Other names get 421 Misdirected Request naming
// the dashboard.allowed_hosts setting, and a log line (host_refused), before
// any credential is looked at. /healthz and /readyz answer any Host:
// orchestrators probe them by address or service name, and they tell
// nothing.
//
// # Access
//
// Credentials are a bearer token (Config.Token) and/or HTTP basic auth
// (Config.User and Config.Password). When either is configured, every route
// except /healthz and /readyz needs it and answers 401 without it (with a
// WWW-Authenticate challenge). A token is accepted as
//
//   - an "Authorization: Bearer T" header (scripts, Prometheus),
//   - a "?token=T" query on a GET: the dashboard answers with a session
//     cookie and redirects to the same URL without the token, so the token
//     does not stay in the address bar, the history or Referer headers,
//   - that cookie (HttpOnly, SameSite=Strict, Secure over TLS). It holds an
//     HMAC derived from the token, never the token itself.
//
// Secrets are compared in constant time (crypto/subtle) and never rendered.
//
// Writes (the actions above and asynqmon's mutating API) need all of:
// Config.AllowWrites, configured credentials, and a request that carries
// them. Otherwise they answer 403 (401 when credentials are configured but
// the request has none). With no credentials configured, pages are open to
// read and every write is refused. Credentials a browser sends on its own
// (the cookie, basic auth) are open to cross-site request forgery, so every
// unsafe request must also pass net/http.CrossOriginProtection: a browser's
// Sec-Fetch-Site or Origin header must say same-origin. The action forms
// are shown only to requests allowed to write.
//
// # The loopback rule
//
// CheckListen refuses to serve on anything but a loopback address
// (127.0.0.0/8, ::1 or "localhost") unless credentials are configured: an
// empty host (":8080"), 0.0.0.0, a public IP or any other host name needs a
// token or a user and password.
//
// # asynqmon
//
// asynqmon has no authentication of its own; it is mounted behind the
// checks above (but for its static web app manifest, which browsers fetch
// without credentials: GET /monitor/manifest.json is served to any request
// the Host check lets through, so that loading the monitor logs no
// refusal), as two handlers built with ReadOnly true and false, and each
// request goes to the one its credentials allow. Non-GET requests to
// /monitor/api are refused before asynqmon sees them unless writes are
// allowed. Its payload formatter shows only the references seedbatch's
// payloads hold (batch, row, attempt, poll number, provider task id), and
// its result formatter shows nothing. asynqmon has no formatter for a
// task's last error, which it shows verbatim: seedbatch's errors can
// contain URLs (a provider or CDN address with its path and query).
// Callback tokens and API keys are kept out of error strings by the worker,
// but operators should treat the monitor as sensitive. On our own pages,
// fail messages and pause reasons have URL query strings and userinfo
// masked, and the transient LastError of a job is not shown.
//
// # Headers
//
// Every response carries X-Content-Type-Options: nosniff and
// X-Frame-Options: DENY. Our own pages carry a Content-Security-Policy that
// allows only this origin and no scripts; /files/ responses are sandboxed;
// asynqmon's pages, which need inline scripts, get no CSP from us.
package dashboard

// Package fetch downloads provider result files (videos) to local storage
// safely.
//
// [Fetcher.Get] streams a URL into a temporary file next to its final name
// (a dot file made with [os.CreateTemp]), hashing it with SHA-256 as it
// writes, then syncs, closes and renames it onto the final name. A reader
// therefore never sees a partial file under the final name, and a crash
// leaves at most a temporary file, which [Fetcher.CleanTemp] removes later.
// On any failure the temporary file is removed at once. When the final file
// already exists with the size and SHA-256 the caller expects, Get returns
// it without a request, so a re-run after a crash does not download again.
//
// The destination is given as a slash-separated path relative to
// [Config.Dir]; it must be clean and stay inside Dir (no "..", no absolute
// path, not empty), and its last element must not start with a dot (dot
// files are reserved for temporary files).
//
// # Errors
//
// Every error returned by Get is an [*Error] whose Kind is one of four
// sentinels; callers branch with [errors.Is] or [Classify]:
//
//   - [ErrExpired]: the URL answered 403, 404 or 410. Signed result URLs
//     expire (the provider keeps results for about 24 hours), so the result
//     is gone; retrying the same URL cannot help. Fetching a fresh URL from
//     the provider's status call might.
//   - [ErrTooLarge]: the body is larger than [Config.MaxBytes], by its
//     Content-Length or while streaming. Retrying cannot help.
//   - [ErrTransient]: network errors (dial, TLS, reset), timeouts (the
//     whole-download [Config.Timeout], or the caller's context), 408, 429
//     and 5xx answers, and a body shorter than its Content-Length. Also
//     every local file-system error (creating directories, writing, syncing
//     or renaming): the result is still downloadable and the cause (a full
//     disk, a permission) is the operator's to fix, so failing the row for
//     good would throw away a paid result; the caller's retry limit bounds
//     the attempts. Such errors wrap the [*os.PathError] or [*os.LinkError],
//     so errors.As tells them apart from network errors.
//   - [ErrPermanent]: any other 4xx, a non-200 answer that is not an error
//     (1xx, 2xx other than 200, or a 3xx the HTTP client did not follow), a
//     URL that is not http(s), and an invalid destination path.
//
// # Secrets
//
// Signed CDN URLs carry tokens in their query string. Error strings print
// at most scheme://host/path of the URL: the query, fragment and user
// information are dropped, the [*url.Error] wrapper that net/http puts
// around transport errors (it prints the full URL, including a redirect
// target) is removed, and any remaining occurrence of the query in an
// underlying error's text is redacted.
package fetch

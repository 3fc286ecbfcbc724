// Package fetch downloads provider result files (videos) safely, to a
// local directory or into a bucket.
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
// With [Config.Sink] set (a bucket, see package objstore), the body is
// streamed, hashed on the way, into an upload instead of a temporary file:
// closing the upload's writer commits the object, and any failure cancels
// the upload first, so that no partial object is left under the name.
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
//     the local file-system errors not named below (creating directories,
//     writing, syncing or renaming): the result is still downloadable, so
//     failing the row for good would throw away a paid result; the caller's
//     retry limit bounds the attempts. Such errors wrap the [*os.PathError]
//     or [*os.LinkError], so errors.As tells them apart from network errors.
//   - [ErrStorageFull]: the destination's file system is full or over its
//     quota (ENOSPC, EDQUOT); [ErrStorageReadOnly]: it cannot be written (a
//     read-only file system, EROFS, or no permission, EACCES or EPERM).
//     Retrying soon only fails again: the cause is the operator's to fix,
//     and the result is still downloadable while its URL lives.
//   - [ErrPermanent]: any other 4xx, a non-200 answer that is not an error
//     (1xx, 2xx other than 200, or a 3xx the HTTP client did not follow), a
//     URL that is not http(s), an invalid destination path, and a host or
//     address the policy below refuses.
//
// # Which hosts
//
// Result URLs come from the provider, and a URL can redirect anywhere, so a
// download must not become a way to reach this machine or its network (a
// loopback admin page, the cloud metadata service at 169.254.169.254, a
// private service). Unless [Config.AllowPrivate] is set, a Fetcher refuses
// every address that is not public (see [NonPublic] for the list:
// loopback, private, link-local, unspecified, multicast, broadcast and
// reserved ranges, in IPv4, IPv6 and IPv4-mapped IPv6 forms):
//
//   - an IP-literal host is checked before the request and before each
//     redirect is followed;
//   - a host name is checked where it matters, at connect time: the default
//     client's dialer checks every address the name resolved to before
//     connecting (a net.Dialer Control), so a name that resolves to
//     127.0.0.1, or whose DNS answer changes after a check (DNS rebinding),
//     is refused too. The default client uses no HTTP proxy, whatever
//     HTTP_PROXY or HTTPS_PROXY say: a proxy would make the connection on
//     its behalf, out of the dialer's sight. A client given in
//     [Config.HTTPClient] dials with its own Transport, which this check is
//     no part of.
//
// Every redirect must also stay on http or https. When [Config.AllowedHosts]
// is not empty, the URL's host and every redirect's must match one of its
// patterns, and must still pass the address check. A refusal's text names
// the host (never the URL's query) and the setting that would allow it.
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

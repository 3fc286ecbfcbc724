package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
)

// maxRedirects is how many redirects one download follows, as net/http
// does by default.
const maxRedirects = 10

// nonPublicRanges are the address ranges a download refuses unless
// Config.AllowPrivate is set, each with the word an error uses for it. The
// first range that holds an address names it. IPv4-mapped and other IPv6
// forms that carry an IPv4 address are judged by that address, in
// [NonPublic], before this list is read.
var nonPublicRanges = []struct {
	prefix netip.Prefix
	class  string
}{
	// IPv4.
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"}, // "this network": 0.0.0.0 reaches this host
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "private"},     // shared address space (RFC 6598); some clouds' metadata service
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"}, // the cloud metadata service 169.254.169.254
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},     // IETF protocol assignments
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},    // benchmarking
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"}, // before 240/4, which holds it
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	// IPv6.
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "reserved"},         // IPv4-compatible, deprecated
	{netip.MustParsePrefix("100::/64"), "reserved"},      // discard-only
	{netip.MustParsePrefix("64:ff9b:1::/48"), "private"}, // local-use IPv4/IPv6 translation
	{netip.MustParsePrefix("2001:db8::/32"), "reserved"}, // documentation
	{netip.MustParsePrefix("fc00::/7"), "private"},       // unique local (RFC 4193)
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "private"}, // site-local, deprecated
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// IPv6 ranges that carry an IPv4 address: NAT64's well-known prefix (the
// last 32 bits) and 6to4 (bits 16 to 48).
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourNet = netip.MustParsePrefix("2002::/16")
)

// NonPublic says why a download may not connect to ip unless
// [Config.AllowPrivate] is set: "loopback", "private" (RFC 1918, RFC 4193,
// shared address space), "link-local" (which holds the cloud metadata
// address 169.254.169.254), "unspecified" (0.0.0.0/8, ::), "multicast",
// "broadcast", "reserved" or "invalid". It returns "" for a public unicast
// address.
//
// An IPv4-mapped IPv6 address (::ffff:127.0.0.1) and the IPv6 forms that
// carry an IPv4 address (NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by
// the IPv4 address they carry. An IPv6 zone is ignored.
func NonPublic(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			return NonPublic(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFourNet.Contains(ip):
			return NonPublic(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	for _, r := range nonPublicRanges {
		if r.prefix.Contains(ip) {
			return r.class
		}
	}
	if !ip.IsGlobalUnicast() {
		// Nothing above should reach here; refuse whatever the standard
		// library does not call global unicast all the same.
		return "reserved"
	}
	return ""
}

// CheckHostPattern reports whether p is a valid entry of
// [Config.AllowedHosts]: a host name ("cdn.example.com"), an IP address
// ("203.0.113.7", "2001:db8::7"), or "*." followed by a host name
// ("*.example.com", which allows every name below example.com but not
// example.com itself). Case and a trailing dot do not matter; a scheme, a
// port, a path or any other wildcard is an error.
func CheckHostPattern(p string) error {
	_, err := normalizePattern(p)
	return err
}

// normalizePattern checks p and returns it lowercased, without a trailing
// dot, an IP address in its canonical form.
func normalizePattern(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty host pattern")
	}
	if ip, err := netip.ParseAddr(p); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("host pattern %q: an address with a zone", p)
		}
		return ip.String(), nil
	}
	name := strings.TrimSuffix(strings.ToLower(p), ".")
	wildcard := strings.HasPrefix(name, "*.")
	if wildcard {
		name = name[2:]
		if _, err := netip.ParseAddr(name); err == nil {
			return "", fmt.Errorf("host pattern %q: a wildcard needs a domain name, not an address", p)
		}
	}
	if err := checkHostName(name); err != nil {
		return "", fmt.Errorf("host pattern %q: %w (want cdn.example.com or *.example.com)", p, err)
	}
	if wildcard {
		return "*." + name, nil
	}
	return name, nil
}

// checkHostName reports whether name, lowercased, is a DNS name: dot-separated
// labels of letters, digits, '-' and '_'.
func checkHostName(name string) error {
	if name == "" {
		return errors.New("no host name")
	}
	if len(name) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("empty or over-long label")
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("character %q", c)
			}
		}
	}
	return nil
}

// policy decides which URLs a Fetcher may request. Its checks of host
// names and IP-literal hosts run before each request and each redirect;
// host names are checked again by address when the default client
// connects (see dialControl).
type policy struct {
	allowPrivate bool
	// allowed are the normalized AllowedHosts; empty allows every host.
	allowed []string
}

// newPolicy checks cfg's host patterns and returns its policy.
func newPolicy(cfg Config) (policy, error) {
	p := policy{allowPrivate: cfg.AllowPrivate}
	for i, pat := range cfg.AllowedHosts {
		n, err := normalizePattern(pat)
		if err != nil {
			return policy{}, fmt.Errorf("fetch: Config.AllowedHosts[%d]: %w", i, err)
		}
		p.allowed = append(p.allowed, n)
	}
	return p, nil
}

// hostAllowed reports whether host (a URL's Hostname) matches the
// allowlist; an empty allowlist allows every host.
func (p policy) hostAllowed(host string) bool {
	if len(p.allowed) == 0 {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.WithZone("").String()
	}
	for _, pat := range p.allowed {
		if suffix, ok := strings.CutPrefix(pat, "*"); ok {
			// suffix is ".example.com": at least one label must precede it.
			if len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == pat {
			return true
		}
	}
	return false
}

// checkHost returns a *refusedError when host may not be requested: it is
// not on the allowlist, or it is an IP address that is not public.
func (p policy) checkHost(host string) error {
	if !p.hostAllowed(host) {
		return &refusedError{host: host, reason: "it is not in download.allowed_hosts; add it there to allow it"}
	}
	if p.allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if class := NonPublic(ip); class != "" {
			return &refusedError{host: host, class: class}
		}
	}
	return nil
}

// checkRedirect returns the CheckRedirect function of a Fetcher's client:
// each redirect must stay on http or https and pass checkHost; then next,
// the client's own policy, decides, or, when it is nil, the limit of 10
// redirects net/http applies by default.
func (p policy) checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		host := req.URL.Hostname()
		if s := req.URL.Scheme; s != "http" && s != "https" {
			return &refusedError{host: host, redirect: true, reason: fmt.Sprintf("scheme %q: only http and https are followed", s)}
		}
		if err := p.checkHost(host); err != nil {
			if re, ok := errors.AsType[*refusedError](err); ok {
				re.redirect = true
			}
			return err
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
}

// dialControl is the net.Dialer Control of the default client when private
// addresses are refused. It runs after name resolution, for each address a
// connection is attempted to, so neither a name that resolves to a private
// address nor a name whose answer changes between a check and the
// connection (DNS rebinding) reaches one.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Refuse what cannot be checked.
		return &refusedError{addr: address, class: "uncheckable"}
	}
	if class := NonPublic(ap.Addr()); class != "" {
		return &refusedError{addr: ap.Addr().String(), class: class}
	}
	return nil
}

// guardedDial wraps a DialContext whose Control refuses addresses so that
// its refusals name the host being dialed.
func guardedDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if re, ok := errors.AsType[*refusedError](err); ok {
			named := *re
			named.host, _, _ = net.SplitHostPort(addr)
			return nil, &named
		}
		return conn, err
	}
}

// refusedError is a request the policy refuses: the host is not allowed,
// it is or resolves to an address that is not public, or a redirect left
// http(s). Its text names the host, never the URL's path or query, and
// says which setting allows it.
type refusedError struct {
	// host is the URL's host name (no port), when known.
	host string
	// addr is the address refused, when the refusal is about one.
	addr string
	// class is what NonPublic said of addr (or of host, an address).
	class string
	// reason replaces the address explanation for other refusals.
	reason string
	// redirect is set when the refused URL is a redirect's target.
	redirect bool
}

func (e *refusedError) Error() string {
	var b strings.Builder
	b.WriteString("refused")
	if e.redirect {
		b.WriteString(" redirect")
		if e.host != "" {
			b.WriteString(" to")
		}
	}
	if e.host != "" {
		fmt.Fprintf(&b, " host %s", e.host)
	}
	switch {
	case e.reason != "":
		fmt.Fprintf(&b, ": %s", e.reason)
	case e.addr != "" && e.addr != e.host:
		fmt.Fprintf(&b, ": it resolves to %s, %s address", e.addr, article(e.class))
	default:
		fmt.Fprintf(&b, ": %s address", article(e.class))
	}
	if e.class != "" {
		b.WriteString("; set download.allow_private_hosts: true to download from addresses that are not public")
	}
	return b.String()
}

// article returns word after "a" or "an".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

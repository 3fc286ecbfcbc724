// Package hostcheck decides which Host header values an HTTP server answers
// to.
//
// A web page can make a browser send requests to a server on the user's
// machine or network under a name the page controls, by pointing that name
// at the server's address after the page has loaded (DNS rebinding). The
// browser then takes the server's answers for the page's own and lets the
// page read them, credentials or not. Such a request carries the page's
// name in its Host header, so a server that answers only to the names it is
// meant to be reached by cannot be read this way.
//
// # The rule
//
// A server listening on Listen answers to:
//
//   - when Listen's host is a loopback address or "localhost": the loopback
//     names localhost, 127.0.0.1 and ::1, and Listen's host itself;
//   - when Listen's host is unspecified (empty, 0.0.0.0 or ::): the loopback
//     names and the addresses of this machine's network interfaces;
//   - when Listen's host is any other address or name: that host;
//   - whatever Listen is (or when it is empty): each name in Hosts.
//
// Names compare case-insensitively and without a trailing dot; IPv6
// addresses may be written with or without brackets. The port of the Host
// header is ignored, on both sides: a rebinding page changes the name it
// reaches the server by, never its port, while port mappings (a container
// published on another port, a proxy) change the port legitimately.
//
// A refused request gets 421 Misdirected Request with a short message that
// names the setting listing further hosts, and a log line.
package hostcheck

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// loopbackNames are the names a server on a loopback or unspecified address
// answers to, normalized.
var loopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// Allowed reports whether host, a request's Host header value (a name or an
// address, with or without a port), is one a server listening on listen
// answers to, by the rule in the package doc. hosts are further names;
// local are this machine's interface addresses, consulted only when
// listen's host is unspecified.
func Allowed(host, listen string, hosts []string, local []netip.Addr) bool {
	h := normalize(host)
	if h == "" {
		return false
	}
	for _, a := range hosts {
		if normalize(a) == h {
			return true
		}
	}
	lh, k := classify(listen)
	switch k {
	case loopback:
		return h == lh || isLoopbackName(h)
	case unspecified:
		if isLoopbackName(h) {
			return true
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			return false
		}
		for _, l := range local {
			if l.WithZone("").Unmap() == a {
				return true
			}
		}
		return false
	case specific:
		return h == lh
	}
	return false
}

// Loopback reports whether listen's host (host:port, or a bare host) is a
// loopback address or "localhost", so that only this machine can connect:
// false for an empty host, 0.0.0.0, ::, any other address or name.
func Loopback(listen string) bool {
	_, k := classify(listen)
	return k == loopback
}

// kind is what a listen address's host is.
type kind int

const (
	none kind = iota
	loopback
	unspecified
	specific
)

// classify returns listen's normalized host and its kind.
func classify(listen string) (string, kind) {
	if listen == "" {
		return "", none
	}
	h := normalize(listen)
	if h == "" {
		return "", unspecified
	}
	if a, err := netip.ParseAddr(h); err == nil {
		switch {
		case a.IsUnspecified():
			return h, unspecified
		case a.IsLoopback():
			return h, loopback
		}
		return h, specific
	}
	if h == "localhost" {
		return h, loopback
	}
	return h, specific
}

func isLoopbackName(h string) bool {
	for _, n := range loopbackNames {
		if h == n {
			return true
		}
	}
	return false
}

// normalize returns the host of s (a Host header value or a configured
// name) without its port or brackets, in lower case, without a trailing
// dot; addresses in their canonical form.
func normalize(s string) string {
	s = strings.TrimSpace(s)
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	} else if len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap().String()
	}
	return s
}

// ValidName checks a configured host: a DNS name or an IP address,
// optionally with a port, without a scheme, path, user or wildcard.
func ValidName(s string) error {
	if s == "" || strings.ContainsAny(s, "/@*?#% \t\r\n") {
		return fmt.Errorf("%q: want a host name or IP address (no scheme, path or wildcard)", s)
	}
	if _, port, err := net.SplitHostPort(s); err == nil && strings.Trim(port, "0123456789") != "" {
		return fmt.Errorf("%q: bad port", s)
	}
	n := normalize(s)
	if _, err := netip.ParseAddr(n); err == nil {
		return nil
	}
	if n == "" || len(n) > 253 {
		return fmt.Errorf("%q: want a host name or IP address", s)
	}
	for label := range strings.SplitSeq(n, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return fmt.Errorf("%q: want a host name or IP address", s)
		}
	}
	return nil
}

// Config says which Host names a server answers to.
type Config struct {
	// Listen is the server's listen address, host:port as net.Listen takes
	// it (":8080" is every interface). Empty: no name comes from it, only
	// Hosts.
	Listen string
	// Hosts are further names the server answers to (exact, case-insensitive,
	// port ignored): the host of a public URL, a configured list.
	Hosts []string
	// Setting names the configuration field that lists further hosts; the
	// refusal and its log line say it.
	Setting string
	// Logger receives a line for each refused request (default: discarded).
	Logger *slog.Logger
	// Interfaces returns this machine's addresses (default: those of
	// net.InterfaceAddrs). It is called only when Listen's host is
	// unspecified and a request names an address that no other rule accepts,
	// so an address added after the server started is taken too.
	Interfaces func() ([]netip.Addr, error)
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Interfaces == nil {
		c.Interfaces = interfaceAddrs
	}
	return c
}

func (c Config) validate() error {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("hostcheck: Listen %q: %w", c.Listen, err)
		}
	}
	for _, h := range c.Hosts {
		if err := ValidName(h); err != nil {
			return fmt.Errorf("hostcheck: Hosts: %w", err)
		}
	}
	return nil
}

// Checker applies the rule of the package doc to requests.
type Checker struct {
	cfg         Config
	unspecified bool
}

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	_, k := classify(cfg.Listen)
	return &Checker{cfg: cfg, unspecified: k == unspecified}, nil
}

// Allowed reports whether the server answers to host, a request's Host
// header value.
func (c *Checker) Allowed(host string) bool {
	if Allowed(host, c.cfg.Listen, c.cfg.Hosts, nil) {
		return true
	}
	if !c.unspecified {
		return false
	}
	if _, err := netip.ParseAddr(normalize(host)); err != nil {
		return false // a name: interface addresses cannot match it
	}
	local, err := c.cfg.Interfaces()
	if err != nil {
		c.cfg.Logger.Warn("host_check_interfaces", "err", err)
		return false
	}
	return Allowed(host, c.cfg.Listen, c.cfg.Hosts, local)
}

// Handler passes the requests whose Host is allowed to next, and answers
// the others 421 Misdirected Request.
func (c *Checker) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.Allowed(r.Host) {
			c.Refuse(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxShown caps how much of a refused Host is shown and logged.
const maxShown = 100

// Refuse answers r 421 Misdirected Request, naming the setting that lists
// further hosts, and logs it. The request's path is not logged: it may
// carry a capability.
func (c *Checker) Refuse(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if len(host) > maxShown {
		host = host[:maxShown] + "…"
	}
	c.cfg.Logger.Warn("host_refused", "host", host, "method", r.Method, "remote", r.RemoteAddr, "setting", c.cfg.Setting)
	msg := fmt.Sprintf("misdirected request: this server does not answer to the host %q", host)
	if c.cfg.Setting != "" {
		msg += "; to reach it by that name, add the name to " + c.cfg.Setting
	}
	http.Error(w, msg, http.StatusMisdirectedRequest)
}

// interfaceAddrs returns the addresses of this machine's network interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("interface addresses: %w", err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if p, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, p.Unmap())
		}
	}
	if len(out) == 0 {
		return nil, errors.New("interface addresses: none found")
	}
	return out, nil
}

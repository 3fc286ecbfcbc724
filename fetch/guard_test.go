package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNonPublic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want string
	}{
		// IPv4 public.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"93.184.216.34", ""},
		{"172.15.255.255", ""}, // just below 172.16/12
		{"172.32.0.1", ""},     // just above it
		{"100.63.255.255", ""}, // just below 100.64/10
		{"100.128.0.1", ""},    // just above it
		{"169.253.255.255", ""},
		{"223.255.255.255", ""},
		// IPv4 loopback, private, link-local, unspecified.
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"100.64.0.1", "private"},
		{"100.100.100.200", "private"}, // a cloud's metadata service
		{"169.254.169.254", "link-local"},
		{"169.254.0.1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		// IPv4 multicast, broadcast, reserved.
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"198.18.0.1", "reserved"},
		{"192.0.0.170", "reserved"},
		// IPv6 public.
		{"2001:4860:4860::8888", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:82b::200e", ""},
		// IPv6 loopback, private, link-local, unspecified, multicast.
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"fc00::1", "private"},
		{"fd00:ec2::254", "private"}, // a cloud's IPv6 metadata service
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"},
		{"fec0::1", "private"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"::127.0.0.1", "reserved"}, // IPv4-compatible
		{"100::1", "reserved"},
		{"2001:db8::1", "reserved"},
		{"64:ff9b:1::a00:1", "private"},
		// IPv4-mapped IPv6: judged by the IPv4 address.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:192.168.0.1", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:255.255.255.255", "broadcast"},
		{"::ffff:224.0.0.1", "multicast"},
		{"::ffff:8.8.8.8", ""},
		// NAT64 and 6to4 carry an IPv4 address too.
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"64:ff9b::808:808", ""},
		{"2002:7f00:1::1", "loopback"},
		{"2002:a00:1::", "private"},
		{"2002:808:808::1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			t.Parallel()
			ip, err := netip.ParseAddr(tt.ip)
			if err != nil {
				t.Fatal(err)
			}
			if got := NonPublic(ip); got != tt.want {
				t.Errorf("NonPublic(%s) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
	if got := NonPublic(netip.Addr{}); got != "invalid" {
		t.Errorf("NonPublic(zero Addr) = %q, want %q", got, "invalid")
	}
}

func TestCheckHostPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		want    string // normalized; "" for an error
	}{
		{"cdn.example.com", "cdn.example.com"},
		{"CDN.Example.COM.", "cdn.example.com"},
		{"*.example.com", "*.example.com"},
		{"*.Example.com.", "*.example.com"},
		{"localhost", "localhost"},
		{"video_store-1.example.com", "video_store-1.example.com"},
		{"203.0.113.7", "203.0.113.7"},
		{"2001:DB8::0:7", "2001:db8::7"},
		{"", ""},
		{"*", ""},
		{"*.", ""},
		{"**.example.com", ""},
		{"*.*.example.com", ""},
		{"cdn.*.example.com", ""},
		{"*example.com", ""},
		{"https://cdn.example.com", ""},
		{"cdn.example.com/videos", ""},
		{"cdn.example.com:443", ""},
		{"[2001:db8::7]", ""},
		{"fe80::1%eth0", ""},
		{"a..example.com", ""},
		{".example.com", ""},
		{"cdn example.com", ""},
		{"*.203.0.113.7", ""},
		{strings.Repeat("a", 64) + ".example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			got, err := normalizePattern(tt.pattern)
			if tt.want == "" {
				if err == nil {
					t.Errorf("normalizePattern(%q) = %q, want an error", tt.pattern, got)
				}
				if CheckHostPattern(tt.pattern) == nil {
					t.Errorf("CheckHostPattern(%q) = nil, want an error", tt.pattern)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("normalizePattern(%q) = %q, %v; want %q", tt.pattern, got, err, tt.want)
			}
		})
	}
}

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns []string
		host     string
		want     bool
	}{
		{"empty list allows any", nil, "anything.example", true},
		{"exact", []string{"cdn.example.com"}, "cdn.example.com", true},
		{"exact ignores case and trailing dot", []string{"cdn.example.com"}, "CDN.example.com.", true},
		{"exact is not a suffix", []string{"example.com"}, "cdn.example.com", false},
		{"exact is not a prefix", []string{"cdn.example.com"}, "cdn.example.com.evil.test", false},
		{"wildcard matches a subdomain", []string{"*.example.com"}, "cdn.example.com", true},
		{"wildcard matches deeper", []string{"*.example.com"}, "a.b.example.com", true},
		{"wildcard skips the bare domain", []string{"*.example.com"}, "example.com", false},
		{"wildcard needs a dot boundary", []string{"*.example.com"}, "evilexample.com", false},
		{"wildcard is not a prefix", []string{"*.example.com"}, "cdn.example.com.evil.test", false},
		{"second pattern", []string{"a.test", "*.example.com"}, "v.example.com", true},
		{"unlisted", []string{"a.test", "*.example.com"}, "b.test", false},
		{"IPv4 address", []string{"203.0.113.7"}, "203.0.113.7", true},
		{"IPv6 address in another form", []string{"2001:db8::7"}, "2001:DB8:0::7", true},
		{"other address", []string{"203.0.113.7"}, "203.0.113.8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := newPolicy(Config{AllowedHosts: tt.patterns})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.hostAllowed(tt.host); got != tt.want {
				t.Errorf("hostAllowed(%q) with %q = %v, want %v", tt.host, tt.patterns, got, tt.want)
			}
		})
	}
}

func TestNewRefusesBadAllowedHosts(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Dir: t.TempDir(), AllowedHosts: []string{"cdn.example.com", "https://cdn.example.com"}})
	if err == nil || !strings.Contains(err.Error(), "Config.AllowedHosts[1]") {
		t.Errorf("New error %v, want one naming Config.AllowedHosts[1]", err)
	}
}

func TestDefaultTransportUsesNoProxy(t *testing.T) {
	t.Parallel()
	for _, allowPrivate := range []bool{false, true} {
		if tr := newTransport(allowPrivate); tr.Proxy != nil {
			t.Errorf("newTransport(%v).Proxy is set: a proxy would connect beyond the address check", allowPrivate)
		}
	}
}

// Names the test transport resolves itself (see fakeDNS).
const (
	// publicName stands for a public host: dials to it reach the origin
	// server without the address check.
	publicName = "cdn.example.test"
	// reboundName stands for a name whose DNS answer is a loopback
	// address: dials to it go through the address check.
	reboundName = "rebound.example.test"
)

// fakeDNS returns the default Transport for allowPrivate with a stand-in
// for name resolution: publicName:PORT dials 127.0.0.1:PORT without the
// address check, as if it were a public host; reboundName:PORT dials
// 127.0.0.1:PORT through the Transport's own dial, as a name resolving to
// loopback would. Other addresses are dialed as usual.
func fakeDNS(allowPrivate bool) *http.Client {
	tr := newTransport(allowPrivate)
	checked := tr.DialContext
	unchecked := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		switch host {
		case publicName:
			return unchecked(ctx, network, net.JoinHostPort("127.0.0.1", port))
		case reboundName:
			conn, err := checked(ctx, network, net.JoinHostPort("127.0.0.1", port))
			if re, ok := errors.AsType[*refusedError](err); ok {
				re.host = host // as the Transport names a host it resolved itself
			}
			return conn, err
		}
		return checked(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

func TestGetRefused(t *testing.T) {
	t.Parallel()
	const body = "video bytes"
	// Each URL is built from the origin server's and the target server's
	// ports. The origin redirects to redirect when it is set, and serves
	// the body otherwise; the target always serves the body.
	type ports struct{ origin, target string }
	tests := []struct {
		name         string
		allowPrivate bool
		allowed      []string
		url          func(p ports) string
		redirect     func(p ports) string
		// refused is "" when the download must succeed; otherwise words
		// the error must hold.
		refused []string
	}{
		{
			name:    "loopback URL",
			url:     func(p ports) string { return "http://127.0.0.1:" + p.target + "/v.mp4" },
			refused: []string{"host 127.0.0.1", "loopback", "download.allow_private_hosts"},
		},
		{
			name:    "IPv6 loopback URL",
			url:     func(p ports) string { return "http://[::1]:" + p.target + "/v.mp4" },
			refused: []string{"host ::1", "loopback"},
		},
		{
			name:    "IPv4-mapped loopback URL",
			url:     func(p ports) string { return "http://[::ffff:127.0.0.1]:" + p.target + "/v.mp4" },
			refused: []string{"host ::ffff:127.0.0.1", "loopback"},
		},
		{
			name:    "localhost resolves to loopback: refused at connect",
			url:     func(p ports) string { return "http://localhost:" + p.target + "/v.mp4" },
			refused: []string{"host localhost", "resolves to", "loopback", "download.allow_private_hosts"},
		},
		{
			name:    "a public-looking name resolving to loopback: refused at connect",
			url:     func(p ports) string { return "http://" + reboundName + ":" + p.target + "/v.mp4" },
			refused: []string{"host " + reboundName, "resolves to 127.0.0.1", "loopback", "download.allow_private_hosts"},
		},
		{
			name: "a public host is fetched",
			url:  func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
		},
		{
			name:     "redirect to 127.0.0.1",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://127.0.0.1:" + p.target + "/v.mp4" },
			refused:  []string{"redirect to host 127.0.0.1", "loopback", "download.allow_private_hosts"},
		},
		{
			name:     "redirect to the metadata service",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(ports) string { return "http://169.254.169.254/latest/meta-data/iam/" },
			refused:  []string{"host 169.254.169.254", "link-local"},
		},
		{
			name:     "redirect to [::1]",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://[::1]:" + p.target + "/v.mp4" },
			refused:  []string{"host ::1", "loopback"},
		},
		{
			name:     "redirect to 10.x",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(ports) string { return "http://10.0.0.1/admin" },
			refused:  []string{"host 10.0.0.1", "private"},
		},
		{
			name:     "redirect to 0.0.0.0",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://0.0.0.0:" + p.target + "/v.mp4" },
			refused:  []string{"host 0.0.0.0", "unspecified"},
		},
		{
			name:     "redirect to an IPv4-mapped address",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://[::ffff:7f00:1]:" + p.target + "/v.mp4" },
			refused:  []string{"loopback"},
		},
		{
			name:     "redirect to localhost: refused at connect",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://localhost:" + p.target + "/v.mp4" },
			refused:  []string{"redirect to host localhost", "resolves to", "loopback"},
		},
		{
			name:     "redirect to a name resolving to loopback: refused at connect",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://" + reboundName + ":" + p.target + "/v.mp4" },
			refused:  []string{"redirect to host " + reboundName, "resolves to 127.0.0.1", "loopback"},
		},
		{
			name:     "redirect to another public host is followed",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://" + publicName + ":" + p.origin + "/final.mp4" },
		},
		{
			name:     "redirect to ftp",
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(ports) string { return "ftp://" + publicName + "/v.mp4" },
			refused:  []string{"redirect to host " + publicName, `scheme "ftp"`, "only http and https"},
		},
		{
			name:         "redirect to a file URL, private addresses allowed",
			allowPrivate: true,
			url:          func(p ports) string { return "http://127.0.0.1:" + p.origin + "/v.mp4" },
			redirect:     func(ports) string { return "file:///etc/passwd" },
			refused:      []string{"refused redirect", `scheme "file"`, "only http and https"},
		},
		{
			name:         "AllowPrivate lets loopback through",
			allowPrivate: true,
			url:          func(p ports) string { return "http://127.0.0.1:" + p.target + "/v.mp4" },
		},
		{
			name:         "AllowPrivate lets localhost through",
			allowPrivate: true,
			url:          func(p ports) string { return "http://localhost:" + p.target + "/v.mp4" },
		},
		{
			name:         "AllowPrivate lets a redirect to loopback through",
			allowPrivate: true,
			url:          func(p ports) string { return "http://127.0.0.1:" + p.origin + "/v.mp4" },
			redirect:     func(p ports) string { return "http://127.0.0.1:" + p.target + "/v.mp4" },
		},
		{
			name:         "allowlist: listed host",
			allowPrivate: true,
			allowed:      []string{"localhost"},
			url:          func(p ports) string { return "http://localhost:" + p.target + "/v.mp4" },
		},
		{
			name:         "allowlist: listed wildcard",
			allowPrivate: true,
			allowed:      []string{"*.example.test"},
			url:          func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
		},
		{
			name:         "allowlist: unlisted host",
			allowPrivate: true,
			allowed:      []string{"localhost", "*.example.test"},
			url:          func(p ports) string { return "http://127.0.0.1:" + p.target + "/v.mp4" },
			refused:      []string{"host 127.0.0.1", "download.allowed_hosts"},
		},
		{
			name:         "allowlist: redirect to an unlisted host",
			allowPrivate: true,
			allowed:      []string{publicName},
			url:          func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect:     func(p ports) string { return "http://localhost:" + p.target + "/v.mp4" },
			refused:      []string{"redirect to host localhost", "download.allowed_hosts"},
		},
		{
			name:         "allowlist: redirect to a listed host",
			allowPrivate: true,
			allowed:      []string{publicName, "127.0.0.1"},
			url:          func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect:     func(p ports) string { return "http://127.0.0.1:" + p.target + "/v.mp4" },
		},
		{
			name:     "allowlist does not lift the address check",
			allowed:  []string{publicName, "localhost"},
			url:      func(p ports) string { return "http://" + publicName + ":" + p.origin + "/v.mp4" },
			redirect: func(p ports) string { return "http://localhost:" + p.target + "/v.mp4" },
			refused:  []string{"host localhost", "resolves to", "loopback"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p ports
			targetHits := new(atomic.Int64)
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				targetHits.Add(1)
				serve(body)(w, r)
			}))
			t.Cleanup(target.Close)
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.redirect != nil && r.URL.Path == "/v.mp4" {
					http.Redirect(w, r, tt.redirect(p)+"?token="+secret, http.StatusFound)
					return
				}
				serve(body)(w, r)
			}))
			t.Cleanup(origin.Close)
			p.origin = port(t, origin)
			p.target = port(t, target)

			dir := t.TempDir()
			f, err := New(Config{Dir: dir, Timeout: 5 * time.Second, AllowPrivate: tt.allowPrivate,
				AllowedHosts: tt.allowed, HTTPClient: fakeDNS(tt.allowPrivate)})
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Get(t.Context(), tt.url(p)+"?token="+secret, "v.mp4", File{})
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if got.Size != int64(len(body)) {
					t.Errorf("Get = %+v, want %d bytes", got, len(body))
				}
				return
			}
			if err == nil {
				t.Fatalf("Get = %+v, want a refusal", got)
			}
			t.Log(err)
			if !errors.Is(err, ErrPermanent) || Classify(err) != ErrPermanent {
				t.Errorf("Get error %v, want ErrPermanent", err)
			}
			if _, ok := errors.AsType[*refusedError](err); !ok {
				t.Errorf("Get error %v is not a refusal", err)
			}
			for _, w := range tt.refused {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			checkNoSecret(t, err)
			if n := targetHits.Load(); n != 0 {
				t.Errorf("the refused server got %d requests", n)
			}
			if fs := files(t, dir); len(fs) != 0 {
				t.Errorf("files left behind: %q", fs)
			}
		})
	}
}

// TestGetRefusedDefaultClient checks the default client, not a test's copy
// of its Transport, refuses loopback at connect time.
func TestGetRefusedDefaultClient(t *testing.T) {
	t.Parallel()
	hits := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		serve("x")(w, r)
	}))
	t.Cleanup(srv.Close)
	f, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Get(t.Context(), "http://localhost:"+port(t, srv)+"/v.mp4?token="+secret, "v.mp4", File{})
	if !errors.Is(err, ErrPermanent) || err == nil || !strings.Contains(err.Error(), "resolves to") {
		t.Errorf("Get error %v, want a refusal at connect time", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

// port returns the port srv listens on.
func port(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

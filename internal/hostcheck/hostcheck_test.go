package hostcheck

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	t.Parallel()
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.10"),
		netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("::ffff:198.51.100.7")}
	extra := []string{"Dash.Example.COM", "proxy.example:443", "[2001:db8::99]", "203.0.113.50"}
	cases := []struct {
		name, host, listen string
		hosts              []string
		want               bool
	}{
		// Loopback listen address.
		{"loopback: 127.0.0.1 with the port", "127.0.0.1:8080", "127.0.0.1:8080", nil, true},
		{"loopback: 127.0.0.1 with another port", "127.0.0.1:9999", "127.0.0.1:8080", nil, true},
		{"loopback: without a port", "127.0.0.1", "127.0.0.1:8080", nil, true},
		{"loopback: localhost", "localhost:8080", "127.0.0.1:8080", nil, true},
		{"loopback: LOCALHOST.", "LOCALHOST.:8080", "127.0.0.1:8080", nil, true},
		{"loopback: [::1]", "[::1]:8080", "127.0.0.1:8080", nil, true},
		{"loopback: [::1] without a port", "[::1]", "127.0.0.1:8080", nil, true},
		{"loopback: long form of ::1", "[0:0:0:0:0:0:0:1]:8080", "127.0.0.1:8080", nil, true},
		{"loopback: the literal listen host", "127.1.2.3:8080", "127.1.2.3:8080", nil, true},
		{"loopback: another loopback address", "127.0.0.2:8080", "127.0.0.1:8080", nil, false},
		{"loopback: listen on localhost", "127.0.0.1:8080", "localhost:8080", nil, true},
		{"loopback: listen on [::1]", "localhost", "[::1]:8080", nil, true},
		{"loopback: rebinding name", "rebind.attacker.example", "127.0.0.1:8080", nil, false},
		{"loopback: rebinding name with the port", "rebind.attacker.example:8080", "127.0.0.1:8080", nil, false},
		{"loopback: a localhost subdomain", "evil.localhost:8080", "127.0.0.1:8080", nil, false},
		{"loopback: localhost as a prefix", "localhost.attacker.example", "127.0.0.1:8080", nil, false},
		{"loopback: an interface address", "192.0.2.10:8080", "127.0.0.1:8080", nil, false},
		{"loopback: empty Host", "", "127.0.0.1:8080", nil, false},
		{"loopback: only a port", ":8080", "127.0.0.1:8080", nil, false},
		// A specific address or name.
		{"specific IP: itself", "192.0.2.10:8080", "192.0.2.10:8080", nil, true},
		{"specific IP: itself on another port", "192.0.2.10", "192.0.2.10:8080", nil, true},
		{"specific IP: loopback names", "localhost:8080", "192.0.2.10:8080", nil, false},
		{"specific IP: 127.0.0.1", "127.0.0.1:8080", "192.0.2.10:8080", nil, false},
		{"specific IP: another interface", "2001:db8::10", "192.0.2.10:8080", nil, false},
		{"specific name: itself", "dash.internal:8080", "dash.internal:8080", nil, true},
		{"specific name: case", "DASH.Internal", "dash.internal:8080", nil, true},
		{"specific name: a subdomain", "x.dash.internal", "dash.internal:8080", nil, false},
		{"specific IPv6: itself", "[2001:db8::10]:8080", "[2001:db8::10]:8080", nil, true},
		// Unspecified.
		{"unspecified: localhost", "localhost:8080", "0.0.0.0:8080", nil, true},
		{"unspecified: 127.0.0.1", "127.0.0.1:8080", ":8080", nil, true},
		{"unspecified: [::1]", "[::1]:8080", "[::]:8080", nil, true},
		{"unspecified: an interface address", "192.0.2.10:8080", "0.0.0.0:8080", nil, true},
		{"unspecified: an IPv6 interface address", "[2001:db8::10]:8080", ":8080", nil, true},
		{"unspecified: a mapped interface address", "198.51.100.7", ":8080", nil, true},
		{"unspecified: another address", "192.0.2.11:8080", "0.0.0.0:8080", nil, false},
		{"unspecified: a rebinding name", "rebind.attacker.example", "0.0.0.0:8080", nil, false},
		{"unspecified: the any address itself", "0.0.0.0:8080", "0.0.0.0:8080", nil, false},
		// Further hosts.
		{"hosts: case-insensitive", "dash.example.com", "127.0.0.1:8080", extra, true},
		{"hosts: port ignored", "dash.example.com:8443", "127.0.0.1:8080", extra, true},
		{"hosts: configured port ignored", "proxy.example", "127.0.0.1:8080", extra, true},
		{"hosts: trailing dot", "dash.example.com.", "127.0.0.1:8080", extra, true},
		{"hosts: bracketed IPv6", "[2001:db8::99]:443", "127.0.0.1:8080", extra, true},
		{"hosts: IPv4", "203.0.113.50", "127.0.0.1:8080", extra, true},
		{"hosts: exact, no subdomains", "x.dash.example.com", "127.0.0.1:8080", extra, false},
		{"hosts: exact, no parents", "example.com", "127.0.0.1:8080", extra, false},
		{"hosts: still not a rebinding name", "rebind.attacker.example", "127.0.0.1:8080", extra, false},
		{"hosts: with a specific listen", "dash.example.com", "192.0.2.10:8080", extra, true},
		// No listen address: only the hosts.
		{"no listen: a host", "dash.example.com", "", extra, true},
		{"no listen: loopback is not implied", "127.0.0.1:8080", "", extra, false},
		{"no listen: nothing", "localhost", "", nil, false},
	}
	for _, tc := range cases {
		if got := Allowed(tc.host, tc.listen, tc.hosts, local); got != tc.want {
			t.Errorf("%s: Allowed(%q, %q, %q) = %v, want %v", tc.name, tc.host, tc.listen, tc.hosts, got, tc.want)
		}
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		ok   bool
	}{
		{"dash.example.com", true},
		{"DASH.example.com.", true},
		{"dash.example.com:443", true},
		{"localhost", true},
		{"192.0.2.1", true},
		{"::1", true},
		{"[2001:db8::1]:8080", true},
		{"my_host", true},
		{"", false},
		{"https://dash.example.com", false},
		{"dash.example.com/path", false},
		{"user@dash.example.com", false},
		{"*.example.com", false},
		{"dash example", false},
		{"dash..example", false},
		{"dash.example.com:https", false},
		{"ex!ample", false},
	}
	for _, tc := range cases {
		if err := ValidName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestChecker(t *testing.T) {
	t.Parallel()
	calls := 0
	ifaces := func() ([]netip.Addr, error) {
		calls++
		return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
	}
	var logs strings.Builder
	c, err := New(Config{Listen: "0.0.0.0:8080", Hosts: []string{"dash.example.com"}, Setting: "dashboard.allowed_hosts",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Interfaces: ifaces})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("page")) }))
	cases := []struct {
		host  string
		code  int
		calls int // Interfaces calls so far
	}{
		{"localhost:8080", 200, 0},
		{"dash.example.com", 200, 0},
		{"rebind.attacker.example:8080", 421, 0},
		{"10.1.2.3:8080", 200, 1},
		{"10.9.9.9:8080", 421, 2},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/secret/path", nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("Host %s: %d, want %d", tc.host, w.Code, tc.code)
		}
		if tc.code == 421 {
			if body := w.Body.String(); strings.Contains(body, "page") || !strings.Contains(body, "dashboard.allowed_hosts") {
				t.Errorf("Host %s: body %q", tc.host, body)
			}
		}
		if calls != tc.calls {
			t.Errorf("Host %s: Interfaces called %d times, want %d", tc.host, calls, tc.calls)
		}
	}
	if !strings.Contains(logs.String(), "host_refused") || !strings.Contains(logs.String(), "rebind.attacker.example") {
		t.Errorf("no log line for a refused host:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "/secret/path") {
		t.Error("the log shows a refused request's path")
	}

	failing, err := New(Config{Listen: ":8080", Interfaces: func() ([]netip.Addr, error) { return nil, errors.New("no netlink") }})
	if err != nil {
		t.Fatal(err)
	}
	if failing.Allowed("10.1.2.3") || !failing.Allowed("127.0.0.1") {
		t.Error("without interface addresses, only the loopback names may pass")
	}

	for _, bad := range []Config{{Listen: "no-port"}, {Hosts: []string{"https://x.example"}}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted a bad config", bad)
		}
	}
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:9090", true},
		{"127.0.0.2:9090", true},
		{"[::1]:9090", true},
		{"localhost:9090", true},
		{"LOCALHOST.:9090", true},
		{":9090", false},
		{"0.0.0.0:9090", false},
		{"[::]:9090", false},
		{"10.0.0.5:9090", false},
		{"worker.internal:9090", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Loopback(tt.listen); got != tt.want {
			t.Errorf("Loopback(%q) = %v, want %v", tt.listen, got, tt.want)
		}
	}
}

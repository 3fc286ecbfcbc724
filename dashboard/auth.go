package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// cookieName is the session cookie set after a ?token= login.
const cookieName = "seedbatch_session"

// access is what a request's credentials allow.
type access struct {
	// ok: the request carries valid configured credentials.
	ok bool
	// viaQuery: the credential was a ?token= query (a GET to redirect).
	viaQuery bool
}

type accessKey struct{}

func accessOf(r *http.Request) access {
	a, _ := r.Context().Value(accessKey{}).(access)
	return a
}

// sessionValue derives the cookie value from the token, so the cookie
// never holds the token itself and changing the token ends every session.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("seedbatch dashboard session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// equal compares secrets in constant time, their lengths included.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// authenticate checks the request's credentials against the configured ones.
func (s *Server) authenticate(r *http.Request) access {
	c := s.cfg
	if c.Token != "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			if equal(strings.TrimSpace(h[7:]), c.Token) {
				return access{ok: true}
			}
		}
		if ck, err := r.Cookie(cookieName); err == nil && equal(ck.Value, s.cookie) {
			return access{ok: true}
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if q := r.URL.Query(); q.Has("token") && equal(q.Get("token"), c.Token) {
				return access{ok: true, viaQuery: true}
			}
		}
	}
	if c.User != "" && c.Password != "" {
		if u, p, ok := r.BasicAuth(); ok {
			// Both comparisons run, whatever the first one says.
			uok, pok := equal(u, c.User), equal(p, c.Password)
			if uok && pok {
				return access{ok: true}
			}
		}
	}
	return access{}
}

// canWrite reports whether r may change anything: writes are enabled,
// credentials are configured, and r carries them.
func (s *Server) canWrite(r *http.Request) bool {
	return s.cfg.AllowWrites && s.cfg.authConfigured() && accessOf(r).ok
}

// open reports whether a path needs no credentials and answers to any Host:
// health probes come by address or service name, and say nothing.
func open(path string) bool { return path == "/healthz" || path == "/readyz" }

// monitorManifest is the web app manifest asynqmon's page links to, which
// browsers fetch without credentials.
const monitorManifest = MonitorPath + "/manifest.json"

// public reports whether r reads the one file served without credentials
// (to the Host names the dashboard answers to): asynqmon's static web app
// manifest, which names the app and its icons and nothing else. Otherwise
// each load of the monitor would be refused and logged as unauthorized.
func (s *Server) public(r *http.Request) bool {
	return s.monRO != nil && r.URL.Path == monitorManifest && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// secure sets the headers every response carries, refuses Host names the
// dashboard does not answer to, enforces the credentials, turns a ?token=
// login into a cookie, and refuses unsafe cross-origin browser requests.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if !s.hosts.Allowed(r.Host) {
			s.hosts.Refuse(w, r)
			return
		}
		if s.public(r) {
			next.ServeHTTP(w, r)
			return
		}
		a := s.authenticate(r)
		if s.cfg.authConfigured() && !a.ok {
			s.challenge(w, r)
			return
		}
		if a.viaQuery {
			s.login(w, r)
			return
		}
		if err := s.cop.Check(r); err != nil {
			s.log.Warn("dashboard_cross_origin_refused", "method", r.Method, "path", r.URL.Path)
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accessKey{}, a)))
	})
}

// challenge answers 401 with the challenges of the configured schemes.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	if s.cfg.User != "" {
		w.Header().Add("WWW-Authenticate", `Basic realm="seedbatch", charset="UTF-8"`)
	}
	if s.cfg.Token != "" {
		w.Header().Add("WWW-Authenticate", `Bearer realm="seedbatch"`)
	}
	s.log.Info("dashboard_unauthorized", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	http.Error(w, "authentication required", http.StatusUnauthorized)
}

// login sets the session cookie and redirects to the URL without the token.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: s.cookie, Path: "/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	q := r.URL.Query()
	q.Del("token")
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// csp is the Content-Security-Policy of our own pages: this origin only,
// no scripts, no framing.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func withCSP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

package seedance

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// Defaults and fixed values of the provider's API.
const (
	// BaseURLDefault is the provider's base URL.
	BaseURLDefault = "https://api.apixo.ai"
	// Model is the provider's model id, part of every endpoint path.
	Model = "seedance-1-5-pro"
	// TimeoutDefault is the default time limit of one request, reading the
	// answer included.
	TimeoutDefault = 60 * time.Second
	// RequestTypeAsync asks for a task the client polls (the default).
	RequestTypeAsync = "async"
	// RequestTypeCallback asks the provider to POST the result to
	// CreateRequest.CallbackURL.
	RequestTypeCallback = "callback"
)

// maxBody caps how much of an answer is read.
const maxBody = 1 << 20

// Config configures a [Client]. The zero value of a field means its default.
type Config struct {
	// BaseURL is the provider's base URL, default BaseURLDefault. A trailing
	// slash is tolerated.
	BaseURL string
	// APIKey is the provider's API key. Required.
	APIKey string
	// Timeout limits each request, reading the answer included; default
	// TimeoutDefault (60s).
	Timeout time.Duration
	// HTTPClient sends the requests; default a client with its own
	// Transport (10s dial and TLS handshake timeouts, 100 idle connections
	// per host) that does not follow redirects.
	HTTPClient *http.Client
	// NotCreatedCodes are codes the provider documents as meaning that a
	// create created nothing, matched against the HTTP status and the JSON
	// "code" of a create's answer: such an answer is ErrServer, safe to
	// retry. Default none: then only 400, 401, 402, 403 and 429 prove that
	// nothing was created, and a 5xx, a 408 or a 2xx with another error
	// code leave the outcome unknown (ErrUnknownOutcome). Each code must be
	// at least 400.
	NotCreatedCodes []int
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.BaseURL = cmp.Or(c.BaseURL, BaseURLDefault)
	c.Timeout = cmp.Or(c.Timeout, TimeoutDefault)
	if c.HTTPClient == nil {
		c.HTTPClient = newHTTPClient()
	}
	return c
}

// validate checks a Config that has its defaults. Its errors name the field
// and never print the key.
func (c Config) validate() error {
	if c.APIKey == "" {
		return errors.New("seedance: Config.APIKey is required")
	}
	if strings.ContainsFunc(c.APIKey, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return errors.New("seedance: Config.APIKey must not contain spaces or control characters")
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		return errors.New("seedance: Config.BaseURL is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("seedance: Config.BaseURL must be an http or https URL")
	case u.Host == "":
		return errors.New("seedance: Config.BaseURL has no host")
	case u.User != nil:
		return errors.New("seedance: Config.BaseURL must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("seedance: Config.BaseURL must not have a query or fragment")
	}
	if c.Timeout < 0 {
		return errors.New("seedance: Config.Timeout must not be negative")
	}
	for _, code := range c.NotCreatedCodes {
		if code < 400 {
			return fmt.Errorf("seedance: Config.NotCreatedCodes: %d is not an error code (want at least 400)", code)
		}
	}
	return nil
}

// newHTTPClient returns the default HTTP client: its own Transport with
// bounded dial and TLS handshake times, and no redirect following (a
// redirected POST would silently become a GET). It speaks HTTP/1.1 only:
// over HTTP/2 the WroteRequest trace fires only after the body is flushed,
// so a create cut off in that gap would look unsent and be sent again.
func newHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     false,
			TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   100,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Client calls the provider. It is safe for concurrent use.
type Client struct {
	base       string
	key        string
	timeout    time.Duration
	http       *http.Client
	notCreated []int
	now        func() time.Time
}

// New returns a client for cfg, or an error naming the invalid field.
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Client{
		base:       strings.TrimRight(cfg.BaseURL, "/"),
		key:        cfg.APIKey,
		timeout:    cfg.Timeout,
		http:       cfg.HTTPClient,
		notCreated: slices.Clone(cfg.NotCreatedCodes),
		now:        time.Now,
	}, nil
}

// Input is the "input" object of a create request: what to generate.
type Input struct {
	// Mode is "text-to-video" or "image-to-video".
	Mode string `json:"mode"`
	// Prompt describes the video (3–2500 characters).
	Prompt string `json:"prompt"`
	// ImageURLs are the start and optional end frames (image-to-video only).
	ImageURLs []string `json:"image_urls,omitempty"`
	// Resolution is "480p" or "720p".
	Resolution string `json:"resolution"`
	// Duration is the video length in seconds: 4, 8 or 12.
	Duration int `json:"duration"`
	// AspectRatio is one of "1:1", "16:9", "9:16", "21:9", "4:3", "3:4".
	AspectRatio string `json:"aspect_ratio"`
	// Sound asks for generated ambient sound and music.
	Sound bool `json:"sound"`
	// FixedLens asks for a static camera.
	FixedLens bool `json:"fixed_lens"`
}

// CreateRequest is the body of a create call.
type CreateRequest struct {
	// RequestType is RequestTypeAsync or RequestTypeCallback; empty means
	// RequestTypeAsync.
	RequestType string `json:"request_type"`
	// CallbackURL receives the result when RequestType is
	// RequestTypeCallback.
	CallbackURL string `json:"callback_url,omitempty"`
	// Provider is the routing choice: "auto" (the provider's default),
	// "value" or "official".
	Provider string `json:"provider,omitempty"`
	// Input says what to generate.
	Input Input `json:"input"`
}

// Operation names, as in Error.Op.
const (
	opCreate = "create"
	opStatus = "status"
)

// Create submits a generation task and returns the provider's task id
// (POST /api/v1/generateTask/seedance-1-5-pro). On failure the error is an
// [*Error]; see the package documentation for what each kind means for
// billing. It never resends the request.
func (c *Client) Create(ctx context.Context, req CreateRequest) (taskID string, err error) {
	req.RequestType = cmp.Or(req.RequestType, RequestTypeAsync)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return "", &Error{Kind: ErrInvalid, Op: opCreate, Err: err, detail: "cannot encode the request"}
	}
	res, err := c.do(ctx, opCreate, http.MethodPost, c.base+"/api/v1/generateTask/"+Model, buf.Bytes())
	if err != nil {
		return "", err
	}
	return classifyCreate(res, createRules{key: c.key, notCreated: c.notCreated, now: c.now()})
}

// Status reads a task (GET /api/v1/statusTask/seedance-1-5-pro?taskId=...).
// On failure the error is an [*Error]. Reading is safe to retry: a failure
// after the request was written (a timeout, a reset, a 5xx) has kind
// ErrServer, never ErrUnknownOutcome. A 2xx answer that cannot be used
// (not JSON, an unknown state, another task, a resultJson that is not
// JSON, a success without result URLs) has kind ErrUnreadable, with an
// excerpt of the answer.
func (c *Client) Status(ctx context.Context, taskID string) (Task, error) {
	if taskID == "" {
		return Task{}, &Error{Kind: ErrInvalid, Op: opStatus, detail: "empty task id"}
	}
	endpoint := c.base + "/api/v1/statusTask/" + Model + "?taskId=" + url.QueryEscape(taskID)
	res, err := c.do(ctx, opStatus, http.MethodGet, endpoint, nil)
	if err != nil {
		return Task{}, err
	}
	if res.status/100 != 2 {
		return Task{}, c.statusError(res)
	}
	if res.readErr != nil {
		return Task{}, &Error{Kind: ErrServer, Op: opStatus, StatusCode: res.status, Err: res.readErr,
			detail: "reading the answer failed"}
	}
	if env, ok := decodeEnvelope(res.body); ok && env.hasCode && env.code != 200 {
		if e := c.envelopeError(res, env); e != nil {
			return Task{}, e
		}
	}
	unreadable := func(detail string) error {
		return &Error{Kind: ErrUnreadable, Op: opStatus, StatusCode: res.status,
			detail: cleanMessage(detail, c.key), Excerpt: excerpt(res.body, c.key)}
	}
	t, err := ParseTask(res.body)
	switch {
	case err != nil:
		if key := []byte(c.key); bytes.Contains(res.body, key) {
			// Say why from the answer with the key redacted, so that no cut
			// in the reason can leave part of it.
			if _, rerr := ParseTask(bytes.ReplaceAll(res.body, key, []byte("[REDACTED]"))); rerr != nil {
				err = rerr
			}
		}
		return Task{}, unreadable(strings.TrimPrefix(err.Error(), errParse.Error()+": ") + contentType(res.header))
	case t.ID != taskID:
		return Task{}, unreadable(fmt.Sprintf("the answer is about task %q, not %q", t.ID, taskID))
	case t.State == StateSuccess && len(t.ResultURLs) == 0:
		return Task{}, unreadable("task " + t.ID + ": a success without result URLs")
	}
	return t, nil
}

// response is an answer from the provider, its body read (up to maxBody).
type response struct {
	status  int
	header  http.Header
	body    []byte
	readErr error // reading the body failed (or it exceeded maxBody)
}

// errBodyTooLarge reports an answer longer than maxBody.
var errBodyTooLarge = fmt.Errorf("answer longer than %d bytes", maxBody)

// do sends one request and reads the answer. Transport failures come back
// as an *Error: ErrNotSent if the request was never fully written, else
// ErrUnknownOutcome (create) or ErrServer (status).
func (c *Client) do(ctx context.Context, op, method, endpoint string, body []byte) (*response, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Kind: ErrNotSent, Op: op, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		return nil, &Error{Kind: ErrNotSent, Op: op, Err: transportCause(err), detail: "cannot build the request"}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cause := transportCause(err)
		if !wrote.Load() {
			return nil, &Error{Kind: ErrNotSent, Op: op, Err: cause}
		}
		kind := ErrServer
		if op == opCreate {
			kind = ErrUnknownOutcome
		}
		return nil, &Error{Kind: kind, Op: op, Err: cause, detail: "no answer after the request was sent"}
	}
	defer resp.Body.Close()
	res := &response{status: resp.StatusCode, header: resp.Header}
	res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	switch {
	case err != nil:
		res.readErr = transportCause(err)
	case len(res.body) > maxBody:
		res.body, res.readErr = res.body[:maxBody], errBodyTooLarge
	}
	return res, nil
}

// statusError classifies a non-2xx answer to a Status read.
func (c *Client) statusError(res *response) *Error {
	e := &Error{Op: opStatus, StatusCode: res.status, Err: res.readErr}
	if env, ok := decodeEnvelope(res.body); ok && env.hasCode && env.hasMessage {
		e.Code, e.Message = env.code, cleanMessage(env.message, c.key)
	} else {
		e.detail = "the answer is not the provider's JSON" + contentType(res.header)
	}
	kind, ok := kindForStatus(res.status)
	switch {
	case !ok:
		// Redirects are not followed: the base URL is probably wrong.
		kind, e.detail = ErrInvalid, "unexpected answer"+contentType(res.header)+"; check Config.BaseURL"
	case kind == ErrRateLimited:
		e.RetryAfter = parseRetryAfter(res.header.Get("Retry-After"), c.now())
	}
	e.Kind = kind
	return e
}

// envelopeError classifies a 2xx answer to a Status read whose JSON code is
// an error code, or returns nil if the code is not one.
func (c *Client) envelopeError(res *response, env envelope) *Error {
	kind, ok := kindForStatus(env.code)
	if !ok {
		return nil
	}
	e := &Error{Kind: kind, Op: opStatus, StatusCode: res.status, Code: env.code,
		Message: cleanMessage(env.message, c.key)}
	if kind == ErrRateLimited {
		e.RetryAfter = parseRetryAfter(res.header.Get("Retry-After"), c.now())
	}
	return e
}

// envelope is the provider's answer wrapper: {"code":..,"message":..,"data":..}.
type envelope struct {
	code       int
	hasCode    bool
	message    string
	hasMessage bool
	data       json.RawMessage
}

// decodeEnvelope decodes body as the provider's wrapper. ok is false if
// body is not a JSON object. A code given as a numeric string is accepted.
func decodeEnvelope(body []byte) (env envelope, ok bool) {
	var raw struct {
		Code    json.RawMessage `json:"code"`
		Message json.RawMessage `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return envelope{}, false
	}
	if len(raw.Code) > 0 && string(raw.Code) != "null" {
		var f flexString
		if f.UnmarshalJSON(raw.Code) == nil {
			if n, err := strconv.Atoi(string(f)); err == nil {
				env.code, env.hasCode = n, true
			}
		}
	}
	if len(raw.Message) > 0 {
		var s string
		if json.Unmarshal(raw.Message, &s) == nil {
			env.message, env.hasMessage = s, true
		}
	}
	if string(raw.Data) != "null" {
		env.data = raw.Data
	}
	return env, true
}

// contentType describes an answer's media type for an error message, as
// " (text/html)", or "" if it has none.
func contentType(h http.Header) string {
	v := h.Get("Content-Type")
	if v == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return " (" + short(mt) + ")"
}

package seedance

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testKey is a canary: it must never appear in an error text.
const testKey = "sk-test-CANARY-5f3a9c1e77"

// setup starts a server running h and returns a client for it.
func setup(t *testing.T, h http.HandlerFunc, opts ...func(*Config)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL + "/", APIKey: testKey, Timeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv
}

// reply answers with status, a JSON content type and body.
func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// replyHTML answers with status and an HTML page, as a gateway does.
func replyHTML(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	}
}

// hijackClose reads the request body, then drops the connection unanswered.
func hijackClose(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// truncated promises a 200 body it never finishes.
func truncated(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"code":200,"data":{"taskId":`)
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// hang waits until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

func sampleRequest() CreateRequest {
	return CreateRequest{
		RequestType: RequestTypeCallback,
		CallbackURL: "https://example.org/hook/tok_123",
		Provider:    "auto",
		Input: Input{
			Mode:        "image-to-video",
			Prompt:      "a calm seaside sunrise, slow dolly in, waves & gulls <3",
			ImageURLs:   []string{"https://img.example/start.png", "https://img.example/end.png"},
			Resolution:  "720p",
			Duration:    8,
			AspectRatio: "16:9",
			Sound:       true,
			FixedLens:   false,
		},
	}
}

// asError checks that err is an *Error of kind and op, and returns it.
func asError(t *testing.T, err error, kind error, op string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", kind)
	}
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %T %v, want *Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v (kind %v), want kind %v", err, se.Kind, kind)
	}
	if se.Op != op {
		t.Errorf("Op = %q, want %q", se.Op, op)
	}
	checkText(t, err)
	return se
}

// checkText fails if an error text shows the key or a request URL.
func checkText(t *testing.T, err error) {
	t.Helper()
	text := err.Error()
	for _, bad := range []string{testKey, "http://", "https://", "taskId=", "Bearer"} {
		if strings.Contains(text, bad) {
			t.Errorf("error text %q contains %q", text, bad)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means success
	}{
		{"defaults", Config{APIKey: testKey}, ""},
		{"missing key", Config{}, "Config.APIKey"},
		{"key with space", Config{APIKey: "sk test"}, "Config.APIKey"},
		{"bad scheme", Config{APIKey: testKey, BaseURL: "ftp://x"}, "Config.BaseURL"},
		{"no host", Config{APIKey: testKey, BaseURL: "https://"}, "Config.BaseURL"},
		{"not a URL", Config{APIKey: testKey, BaseURL: "http://[::1"}, "Config.BaseURL"},
		{"credentials", Config{APIKey: testKey, BaseURL: "https://u:p@api.example"}, "Config.BaseURL"},
		{"query", Config{APIKey: testKey, BaseURL: "https://api.example/?a=1"}, "Config.BaseURL"},
		{"negative timeout", Config{APIKey: testKey, Timeout: -time.Second}, "Config.Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, %v; want error naming %s", c, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	c, err := New(Config{APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != BaseURLDefault || c.timeout != TimeoutDefault {
		t.Errorf("base, timeout = %q, %v", c.base, c.timeout)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport = %T", c.http.Transport)
	}
	if tr == http.DefaultTransport {
		t.Error("default client shares http.DefaultTransport")
	}
	if tr.TLSHandshakeTimeout != 10*time.Second || tr.MaxIdleConnsPerHost != 100 || tr.DialContext == nil {
		t.Errorf("transport settings: tls %v, idle/host %d", tr.TLSHandshakeTimeout, tr.MaxIdleConnsPerHost)
	}
	if c.http.CheckRedirect == nil {
		t.Error("default client follows redirects")
	}
	custom := &http.Client{}
	c, _ = New(Config{APIKey: testKey, HTTPClient: custom, BaseURL: "https://api.example///"})
	if c.http != custom || c.base != "https://api.example" {
		t.Errorf("http, base = %p, %q", c.http, c.base)
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	var got map[string]any
	var hdr http.Header
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/generateTask/seedance-1-5-pro" || r.URL.RawQuery != "" {
			t.Errorf("request = %s %s", r.Method, r.URL)
		}
		hdr = r.Header.Clone()
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("body: %v", err)
		}
		reply(200, `{"code":200,"message":"success","data":{"taskId":"task_abc123"}}`)(w, r)
	})
	id, err := c.Create(t.Context(), sampleRequest())
	if err != nil || id != "task_abc123" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + testKey,
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if hdr.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, hdr.Get(k), want)
		}
	}
	for _, k := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
		if _, ok := hdr[k]; ok {
			t.Errorf("request carries %s", k)
		}
	}
	want := map[string]any{
		"request_type": "callback",
		"callback_url": "https://example.org/hook/tok_123",
		"provider":     "auto",
		"input": map[string]any{
			"mode":         "image-to-video",
			"prompt":       "a calm seaside sunrise, slow dolly in, waves & gulls <3",
			"image_urls":   []any{"https://img.example/start.png", "https://img.example/end.png"},
			"resolution":   "720p",
			"duration":     float64(8),
			"aspect_ratio": "16:9",
			"sound":        true,
			"fixed_lens":   false,
		},
	}
	if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
		t.Errorf("body\n got %s\nwant %s", a, b)
	}
}

func TestCreateDefaultsAndOmits(t *testing.T) {
	t.Parallel()
	var got map[string]any
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		reply(201, `{"code":200,"data":{"taskId":"t-1"}}`)(w, r)
	})
	req := CreateRequest{Input: Input{Mode: "text-to-video", Prompt: "abc", Resolution: "480p", Duration: 4, AspectRatio: "1:1"}}
	if id, err := c.Create(t.Context(), req); err != nil || id != "t-1" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	if got["request_type"] != "async" {
		t.Errorf("request_type = %v, want async", got["request_type"])
	}
	for _, k := range []string{"callback_url", "provider"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s sent though empty", k)
		}
	}
	in := got["input"].(map[string]any)
	if _, ok := in["image_urls"]; ok {
		t.Error("image_urls sent though empty")
	}
	if in["sound"] != false || in["fixed_lens"] != false {
		t.Errorf("false booleans must be sent: %v", in)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	const id = "task_a+b/c&d=e"
	var hdr http.Header
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		hdr = r.Header.Clone()
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/statusTask/seedance-1-5-pro" {
			t.Errorf("request = %s %s", r.Method, r.URL.Path)
		}
		if got := r.URL.Query().Get("taskId"); got != id {
			t.Errorf("taskId = %q, want %q", got, id)
		}
		reply(200, `{"code":200,"message":"success","data":{
			"taskId":"task_a+b/c&d=e","state":"success",
			"resultJson":"{\"resultUrls\":[\"https://cdn.example/abc.mp4\"]}",
			"createTime":1704067200000,"completeTime":1704067262500,"costTime":62500}}`)(w, r)
	})
	task, err := c.Status(t.Context(), id)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want := Task{
		ID: id, State: StateSuccess, ResultURLs: []string{"https://cdn.example/abc.mp4"},
		CreateTime:   time.UnixMilli(1704067200000).UTC(),
		CompleteTime: time.UnixMilli(1704067262500).UTC(),
		CostTime:     62500 * time.Millisecond,
	}
	if mustJSON(t, task) != mustJSON(t, want) || !task.CreateTime.Equal(want.CreateTime) {
		t.Errorf("task = %+v, want %+v", task, want)
	}
	if hdr.Get("Authorization") != "Bearer "+testKey || hdr.Get("Content-Type") != "" {
		t.Errorf("headers: auth %q, content-type %q", hdr.Get("Authorization"), hdr.Get("Content-Type"))
	}
	if _, err := c.Status(t.Context(), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Status(\"\") = %v, want ErrInvalid", err)
	}
}

// errorCase is one provider behaviour and the error it must produce.
type errorCase struct {
	name       string
	h          http.HandlerFunc
	kind       error
	status     int
	code       int
	message    string
	retryAfter time.Duration
	// notCreated is Config.NotCreatedCodes.
	notCreated []int
	// contains is a substring the error text must hold, if set.
	contains string
}

func TestCreateErrors(t *testing.T) {
	t.Parallel()
	big := `{"code":200,"data":{"taskId":"t1"},"pad":"` + strings.Repeat("x", maxBody) + `"}`
	tests := []errorCase{
		{name: "400", h: reply(400, `{"code":400,"message":"duration must be 4, 8 or 12"}`),
			kind: ErrInvalid, status: 400, code: 400, message: "duration must be 4, 8 or 12"},
		{name: "401", h: reply(401, `{"code":401,"message":"Invalid or missing API key"}`),
			kind: ErrAuth, status: 401, code: 401, message: "Invalid or missing API key"},
		{name: "403", h: reply(403, `{"code":403,"message":"no access to model"}`),
			kind: ErrAuth, status: 403, code: 403, message: "no access to model"},
		{name: "404", h: reply(404, `{"code":404,"message":"model not found"}`),
			kind: ErrNotFound, status: 404, code: 404, message: "model not found"},
		{name: "429 retry-after", h: withHeader("Retry-After", "7", reply(429, `{"code":429,"message":"Too many requests"}`)),
			kind: ErrRateLimited, status: 429, code: 429, message: "Too many requests", retryAfter: 7 * time.Second},
		{name: "429 bare", h: replyHTML(429), kind: ErrRateLimited, status: 429},
		{name: "402 other 4xx", h: reply(402, `{"code":402,"message":"insufficient credits"}`),
			kind: ErrInvalid, status: 402, code: 402, message: "insufficient credits"},
		{name: "422 html", h: replyHTML(422), kind: ErrInvalid, status: 422},
		{name: "408 is unknown", h: replyHTML(408), kind: ErrUnknownOutcome, status: 408},
		{name: "408 listed", h: replyHTML(408), kind: ErrServer, status: 408, notCreated: []int{408}},
		// The provider's own 5xx does not say whether it created the task first.
		{name: "500 provider json", h: reply(500, `{"code":500,"message":"internal error"}`),
			kind: ErrUnknownOutcome, status: 500, code: 500, message: "internal error"},
		{name: "503 provider json", h: reply(503, `{"code":503,"message":"busy"}`),
			kind: ErrUnknownOutcome, status: 503, code: 503, message: "busy"},
		{name: "500 listed", h: reply(500, `{"code":500,"message":"internal error"}`),
			kind: ErrServer, status: 500, code: 500, message: "internal error", notCreated: []int{500}},
		{name: "503 with a listed json code", h: reply(503, `{"code":1001,"message":"not created, try again"}`),
			kind: ErrServer, status: 503, code: 1001, message: "not created, try again", notCreated: []int{1001}},
		{name: "502 html, other code listed", h: replyHTML(502), kind: ErrUnknownOutcome, status: 502, notCreated: []int{500}},
		{name: "502 html", h: replyHTML(502), kind: ErrUnknownOutcome, status: 502},
		{name: "503 empty", h: reply(503, ""), kind: ErrUnknownOutcome, status: 503},
		{name: "504 json without code", h: reply(504, `{"message":"Endpoint request timed out"}`),
			kind: ErrUnknownOutcome, status: 504},
		{name: "500 html", h: replyHTML(500), kind: ErrUnknownOutcome, status: 500},
		{name: "500 listed naming a task", h: reply(500, `{"code":500,"message":"oops","data":{"taskId":"t9"}}`),
			kind: ErrUnknownOutcome, status: 500, code: 500, message: "oops", notCreated: []int{500}, contains: "names task t9"},
		{name: "429 naming a task", h: reply(429, `{"code":429,"message":"slow","data":{"taskId":"t9"}}`),
			kind: ErrUnknownOutcome, status: 429, code: 429, message: "slow"},
		{name: "302 not followed", h: redirect, kind: ErrInvalid, status: 302},
		{name: "200 no task id", h: reply(200, `{"code":200,"message":"success","data":{}}`),
			kind: ErrUnknownOutcome, status: 200},
		{name: "200 null data", h: reply(200, `{"code":200,"data":null}`), kind: ErrUnknownOutcome, status: 200},
		{name: "200 not json", h: replyHTML(200), kind: ErrUnknownOutcome, status: 200},
		{name: "200 bad task id", h: reply(200, `{"code":200,"data":{"taskId":"a b"}}`),
			kind: ErrUnknownOutcome, status: 200},
		{name: "200 numeric task id", h: reply(200, `{"code":200,"data":{"taskId":12}}`),
			kind: ErrUnknownOutcome, status: 200},
		{name: "200 odd code", h: reply(200, `{"code":302,"data":{"taskId":"t1"}}`),
			kind: ErrUnknownOutcome, status: 200, code: 302},
		{name: "200 truncated", h: truncated, kind: ErrUnknownOutcome, status: 200},
		{name: "200 too large", h: reply(200, big), kind: ErrUnknownOutcome, status: 200},
		{name: "200 with error code 400", h: reply(200, `{"code":400,"message":"bad prompt"}`),
			kind: ErrInvalid, status: 200, code: 400, message: "bad prompt"},
		{name: "200 with error code 402", h: reply(200, `{"code":402,"message":"insufficient credits"}`),
			kind: ErrInvalid, status: 200, code: 402, message: "insufficient credits"},
		{name: "200 with error code 403", h: reply(200, `{"code":403,"message":"no access"}`),
			kind: ErrAuth, status: 200, code: 403, message: "no access"},
		{name: "200 with error code 429", h: withHeader("Retry-After", "3", reply(200, `{"code":"429","message":"slow down"}`)),
			kind: ErrRateLimited, status: 200, code: 429, message: "slow down", retryAfter: 3 * time.Second},
		{name: "200 with error code 500", h: reply(200, `{"code":500,"message":"oops"}`),
			kind: ErrUnknownOutcome, status: 200, code: 500, message: "oops", contains: "the answer has code 500"},
		{name: "200 with error code 404", h: reply(200, `{"code":404,"message":"model not found"}`),
			kind: ErrUnknownOutcome, status: 200, code: 404, message: "model not found"},
		{name: "200 with a listed error code", h: reply(200, `{"code":500,"message":"oops"}`),
			kind: ErrServer, status: 200, code: 500, message: "oops", notCreated: []int{500}},
		{name: "key echoed", h: reply(401, `{"code":401,"message":"bad key `+testKey+`\n"}`),
			kind: ErrAuth, status: 401, code: 401, message: "bad key [REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := setup(t, tt.h, func(cfg *Config) { cfg.NotCreatedCodes = tt.notCreated })
			id, err := c.Create(t.Context(), sampleRequest())
			if id != "" {
				t.Errorf("task id = %q on error", id)
			}
			checkCase(t, err, tt, opCreate)
		})
	}
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	tests := []errorCase{
		{name: "400", h: reply(400, `{"code":400,"message":"taskId required"}`),
			kind: ErrInvalid, status: 400, code: 400, message: "taskId required"},
		{name: "401", h: reply(401, `{"code":401,"message":"Invalid or missing API key"}`),
			kind: ErrAuth, status: 401, code: 401, message: "Invalid or missing API key"},
		{name: "403", h: replyHTML(403), kind: ErrAuth, status: 403},
		{name: "404", h: reply(404, `{"code":404,"message":"task not found"}`),
			kind: ErrNotFound, status: 404, code: 404, message: "task not found"},
		{name: "429", h: withHeader("Retry-After", "2", reply(429, `{"code":429,"message":"Too many requests"}`)),
			kind: ErrRateLimited, status: 429, code: 429, message: "Too many requests", retryAfter: 2 * time.Second},
		{name: "500 provider json", h: reply(500, `{"code":500,"message":"internal error"}`),
			kind: ErrServer, status: 500, code: 500, message: "internal error"},
		{name: "502 html is only a server error", h: replyHTML(502), kind: ErrServer, status: 502},
		{name: "504 empty", h: reply(504, ""), kind: ErrServer, status: 504},
		{name: "200 garbage", h: replyHTML(200), kind: ErrUnreadable, status: 200, contains: "answer: <html>"},
		{name: "200 code 404", h: reply(200, `{"code":404,"message":"task not found"}`),
			kind: ErrNotFound, status: 200, code: 404, message: "task not found"},
		{name: "200 unknown state", h: reply(200, `{"code":200,"data":{"taskId":"t1","state":"queued_v2"}}`),
			kind: ErrUnreadable, status: 200, contains: `unknown state "queued_v2"`},
		{name: "200 bad resultJson", h: reply(200, `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":"{nope"}}`),
			kind: ErrUnreadable, status: 200, contains: "resultJson"},
		{name: "200 success without urls", h: reply(200, `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":""}}`),
			kind: ErrUnreadable, status: 200, contains: "without result URLs"},
		{name: "200 another task", h: reply(200, `{"code":200,"data":{"taskId":"t2","state":"pending"}}`),
			kind: ErrUnreadable, status: 200, contains: `task "t2"`},
		{name: "200 unknown state echoing the key and a URL", h: reply(200, `{"code":200,"data":{"taskId":"t1","state":"`+testKey+`",
			"callback":"https://hooks.example/cb/tok_SECRET?x=1"}}`),
			kind: ErrUnreadable, status: 200, contains: `"callback":"[URL]"`},
		{name: "200 truncated", h: truncated, kind: ErrServer, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := setup(t, tt.h)
			_, err := c.Status(t.Context(), "t1")
			checkCase(t, err, tt, opStatus)
		})
	}
}

func checkCase(t *testing.T, err error, tt errorCase, op string) {
	t.Helper()
	se := asError(t, err, tt.kind, op)
	if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
		t.Errorf("error %q does not contain %q", err, tt.contains)
	}
	if (se.Excerpt != "") != (tt.kind == ErrUnreadable) {
		t.Errorf("Excerpt = %q for kind %v", se.Excerpt, se.Kind)
	}
	if strings.Contains(err.Error(), "tok_SECRET") {
		t.Errorf("error %q holds a URL's token", err)
	}
	if se.StatusCode != tt.status || se.Code != tt.code || se.Message != tt.message || se.RetryAfter != tt.retryAfter {
		t.Errorf("got status %d code %d message %q retry %v; want %d %d %q %v",
			se.StatusCode, se.Code, se.Message, se.RetryAfter, tt.status, tt.code, tt.message, tt.retryAfter)
	}
	t.Log(err)
}

func withHeader(k, v string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(k, v)
		h(w, r)
	}
}

func redirect(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/elsewhere" {
		panic("redirect followed")
	}
	http.Redirect(w, r, "/elsewhere", http.StatusFound)
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	_ = ln.Close()

	tests := []struct {
		name       string
		h          http.HandlerFunc // nil: no server, a closed port
		timeout    time.Duration
		createKind error
		statusKind error
		cause      error // also matched with errors.Is, if set
	}{
		{name: "connection refused", createKind: ErrNotSent, statusKind: ErrNotSent, cause: syscall.ECONNREFUSED},
		{name: "closed after body read", h: hijackClose, createKind: ErrUnknownOutcome, statusKind: ErrServer},
		{name: "slower than timeout", h: hang, timeout: 100 * time.Millisecond,
			createKind: ErrUnknownOutcome, statusKind: ErrServer, cause: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := func(cfg *Config) {
				cfg.Timeout = cmpDuration(tt.timeout, 5*time.Second)
				if tt.h == nil {
					cfg.BaseURL = closedURL
				}
			}
			c, _ := setup(t, cmpHandler(tt.h), opt)
			_, err := c.Create(t.Context(), sampleRequest())
			asError(t, err, tt.createKind, opCreate)
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("create err = %v, want cause %v", err, tt.cause)
			}
			t.Log(err)
			_, err = c.Status(t.Context(), "t1")
			asError(t, err, tt.statusKind, opStatus)
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("status err = %v, want cause %v", err, tt.cause)
			}
			t.Log(err)
		})
	}
}

func TestContextCanceledBeforeSending(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Create(ctx, sampleRequest())
	asError(t, err, ErrNotSent, opCreate)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	_, err = c.Status(ctx, "t1")
	asError(t, err, ErrNotSent, opStatus)
	if hits.Load() != 0 {
		t.Errorf("server got %d requests", hits.Load())
	}
}

func TestContextCanceledAfterSending(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		started <- struct{}{}
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err := c.Create(ctx, sampleRequest())
	asError(t, err, ErrUnknownOutcome, opCreate)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: ErrRateLimited, Op: "create", StatusCode: 429, Code: 429, Message: "Too many requests"},
			"seedance create: rate limited (429): Too many requests"},
		{&Error{Kind: ErrRateLimited, Op: "status", StatusCode: 429, RetryAfter: 2 * time.Second, detail: "x"},
			"seedance status: rate limited (429): x (retry after 2s)"},
		{&Error{Kind: ErrNotSent, Op: "create", Err: context.Canceled},
			"seedance create: not sent: context canceled"},
		{&Error{}, "seedance call: failed"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	err := error(&Error{Kind: ErrUnknownOutcome, Op: "create", Err: context.DeadlineExceeded})
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrServer) {
		t.Errorf("errors.Is does not see both kind and cause of %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 12 ", 12 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"1.5", 0},
		{"99999999999", 24 * time.Hour},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCleanMessage(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxMessage)
	got := cleanMessage(long, "")
	if len(got) > maxMessage+len("…") || !strings.HasSuffix(got, "…") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("cleanMessage cut badly: len %d", len(got))
	}
	if got := cleanMessage("a\x00b\nkey=K3Y", "K3Y"); got != "a b key=[REDACTED]" {
		t.Errorf("cleanMessage = %q", got)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cmpHandler(h http.HandlerFunc) http.HandlerFunc {
	if h == nil {
		return func(http.ResponseWriter, *http.Request) {}
	}
	return h
}

func cmpDuration(d, fallback time.Duration) time.Duration {
	if d != 0 {
		return d
	}
	return fallback
}

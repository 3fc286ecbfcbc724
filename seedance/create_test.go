package seedance

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// proves reports whether an answer code proves that a create created
// nothing: 429, 400, 401, 402, 403 or a listed code.
func proves(code int, listed []int) bool {
	switch code {
	case 429, 400, 401, 402, 403:
		return true
	}
	return slices.Contains(listed, code)
}

// FuzzClassifyCreate checks the money rule on any answer to a create whose
// request was written: it is never a kind that leads to sending the create
// again unless its HTTP status or JSON code proves that nothing was
// created.
func FuzzClassifyCreate(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
		ra     string
		ct     string
		listed int
	}{
		{200, `{"code":200,"message":"success","data":{"taskId":"task_abc123"}}`, "", "application/json", 0},
		{200, `{"code":500,"message":"oops"}`, "", "application/json", 0},
		{200, `{"code":"429","message":"slow down"}`, "3", "application/json", 0},
		{200, `{"code":500,"message":"oops","data":{"taskId":"t9"}}`, "", "application/json", 500},
		{500, `{"code":500,"message":"internal error"}`, "", "application/json", 0},
		{500, `{"code":500,"message":"internal error"}`, "", "application/json", 500},
		{503, `{"code":1001,"message":"not created"}`, "", "application/json", 1001},
		{502, `<html>Bad Gateway</html>`, "", "text/html", 0},
		{429, `{"code":429,"message":"Too many requests"}`, "Wed, 21 Oct 2015 07:28:00 GMT", "application/json", 0},
		{408, ``, "", "", 408},
		{402, `{"code":402,"message":"insufficient credits"}`, "", "application/json", 0},
		{302, ``, "", "", 0},
		{404, `{"code":404,"message":"model not found"}`, "", "application/json", 0},
	} {
		f.Add(s.status, []byte(s.body), s.ra, s.ct, false, s.listed)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter, contentType string, readErr bool, listed int) {
		status = 100 + abs(status)%900
		res := &response{status: status, header: http.Header{}, body: body}
		res.header.Set("Retry-After", retryAfter)
		res.header.Set("Content-Type", contentType)
		if readErr {
			res.readErr = io.ErrUnexpectedEOF
		}
		var notCreated []int
		if listed >= 400 {
			notCreated = []int{listed}
		}
		id, err := classifyCreate(res, createRules{key: testKey, notCreated: notCreated, now: time.Unix(1e9, 0)})
		if err == nil {
			if id == "" || checkTaskID(id) != nil || status/100 != 2 || readErr {
				t.Fatalf("accepted task id %q from status %d (read error %v)", id, status, readErr)
			}
			return
		}
		if id != "" {
			t.Fatalf("task id %q with error %v", id, err)
		}
		var se *Error
		if !errors.As(err, &se) || se.Op != opCreate || se.StatusCode != status {
			t.Fatalf("err = %#v", err)
		}
		if strings.Contains(err.Error(), testKey) {
			t.Fatalf("error text shows the key: %v", err)
		}
		env, _ := decodeEnvelope(body)
		code := 0
		if env.hasCode {
			code = env.code
		}
		switch {
		case errors.Is(err, ErrServer), errors.Is(err, ErrNotSent), errors.Is(err, ErrRateLimited), errors.Is(err, ErrAuth):
			// Each of these sends the create again, now or after an operator acts.
			if !proves(status, notCreated) && !proves(code, notCreated) {
				t.Fatalf("status %d, code %d (listed %v) classified %v: it may have created the task", status, code, notCreated, se.Kind)
			}
		case errors.Is(err, ErrNotFound):
			if status != http.StatusNotFound {
				t.Fatalf("status %d classified not found", status)
			}
		case errors.Is(err, ErrInvalid), errors.Is(err, ErrUnknownOutcome):
		default:
			t.Fatalf("unexpected kind %v", se.Kind)
		}
		if se.RetryAfter < 0 || se.RetryAfter > maxRetryAfterSeconds*time.Second {
			t.Fatalf("RetryAfter = %v", se.RetryAfter)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}

// FuzzParseRetryAfter checks that any Retry-After header gives a wait
// between zero and the cap, without panicking.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"", "5", " 12 ", "0", "-3", "soon", "1.5", "99999999999", "9223372036854775807",
		"-9223372036854775808", now.Add(30 * time.Second).Format(http.TimeFormat), "Mon, 02 Jan 9999 15:04:05 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, v string, offset int64) {
		at := now.Add(time.Duration(offset))
		d := parseRetryAfter(v, at)
		if d < 0 || d > maxRetryAfterSeconds*time.Second {
			t.Fatalf("parseRetryAfter(%q, %v) = %v", v, at, d)
		}
	})
}

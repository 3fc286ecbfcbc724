package seedance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// State is a task's state as the provider reports it.
type State string

// The provider's task states.
const (
	// StatePending means the task was accepted and waits for a worker.
	StatePending State = "pending"
	// StateProcessing means the video is being generated.
	StateProcessing State = "processing"
	// StateSuccess means the video is ready; [Task.ResultURLs] holds it.
	StateSuccess State = "success"
	// StateFailed means generation failed; [Task.FailCode] says why.
	StateFailed State = "failed"
)

// Ended reports whether a task in state s will not change again: it
// succeeded or failed.
func (s State) Ended() bool { return s == StateSuccess || s == StateFailed }

// valid reports whether s is one of the four provider states.
func (s State) valid() bool {
	switch s {
	case StatePending, StateProcessing, StateSuccess, StateFailed:
		return true
	}
	return false
}

// Task is a task as read from the provider (a status read or a callback).
type Task struct {
	// ID is the provider's task id.
	ID string
	// State is the task's state.
	State State
	// ResultURLs are the generated videos (on success). They expire soon:
	// download them at once.
	ResultURLs []string
	// FailCode is the provider's failure code (on failure), such as
	// "CONTENT_VIOLATION".
	FailCode string
	// FailMsg is the provider's failure message (on failure).
	FailMsg string
	// CreateTime is when the provider created the task; zero if not given.
	CreateTime time.Time
	// CompleteTime is when the task ended; zero if not given.
	CompleteTime time.Time
	// CostTime is the generation time the provider reports on completion.
	CostTime time.Duration
}

// ParseTask decodes a status-read body, which is also the body of a
// callback:
//
//	{"code":200,"message":"success","data":{"taskId":"task_abc123",
//	 "state":"success","resultJson":"{\"resultUrls\":[\"https://...\"]}",
//	 "createTime":1704067200000,"completeTime":1704067262500,"costTime":62500}}
//
// resultJson is a JSON string holding {"resultUrls":[...]}; an embedded
// object is accepted too, and blank URLs are dropped. Times are Unix
// milliseconds. ParseTask fails if the body is not JSON, code is not 200,
// taskId is empty, state is unknown, or resultJson or a time is malformed.
func ParseTask(body []byte) (Task, error) {
	var env struct {
		Code    *int      `json:"code"`
		Message string    `json:"message"`
		Data    *taskData `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Task{}, parseError("not a task body: %v", err)
	}
	switch {
	case env.Code == nil:
		return Task{}, parseError("no code")
	case *env.Code != 200:
		return Task{}, parseError("code %d: %s", *env.Code, short(env.Message))
	case env.Data == nil:
		return Task{}, parseError("no data")
	}
	d := env.Data
	if err := checkTaskID(d.TaskID); err != nil {
		return Task{}, err
	}
	t := Task{
		ID:       d.TaskID,
		State:    State(d.State),
		FailCode: string(d.FailCode),
		FailMsg:  d.FailMsg,
		CostTime: time.Duration(d.CostTime) * time.Millisecond,
	}
	if !t.State.valid() {
		return Task{}, parseError("task %s: unknown state %q", t.ID, short(d.State))
	}
	urls, err := parseResultJSON(d.ResultJSON)
	if err != nil {
		return Task{}, parseError("task %s: resultJson: %v", t.ID, err)
	}
	t.ResultURLs = urls
	if d.CreateTime > 0 {
		t.CreateTime = time.UnixMilli(int64(d.CreateTime)).UTC()
	}
	if d.CompleteTime > 0 {
		t.CompleteTime = time.UnixMilli(int64(d.CompleteTime)).UTC()
	}
	return t, nil
}

// taskData is the "data" object of a status read.
type taskData struct {
	TaskID       string          `json:"taskId"`
	State        string          `json:"state"`
	ResultJSON   json.RawMessage `json:"resultJson"`
	FailCode     flexString      `json:"failCode"`
	FailMsg      string          `json:"failMsg"`
	CreateTime   millis          `json:"createTime"`
	CompleteTime millis          `json:"completeTime"`
	CostTime     millis          `json:"costTime"`
}

// parseResultJSON decodes resultJson: a JSON string holding
// {"resultUrls":[...]} (or that object itself). Absent, null or an empty
// string mean no result.
func parseResultJSON(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	inner := raw
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		inner = []byte(s)
	}
	var r struct {
		ResultURLs []string `json:"resultUrls"`
	}
	if err := json.Unmarshal(inner, &r); err != nil {
		return nil, err
	}
	var urls []string
	for _, u := range r.ResultURLs {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls, nil
}

// millis is a count of milliseconds: a JSON number (or numeric string),
// never negative, small enough to be a time.Duration.
type millis int64

// maxMillis is the largest millisecond count a time.Duration holds.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// UnmarshalJSON implements json.Unmarshaler.
func (m *millis) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" {
		*m = 0
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			*m = 0
			return nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > maxMillis {
			return fmt.Errorf("milliseconds out of range: %d", n)
		}
		*m = millis(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > float64(maxMillis) {
		return fmt.Errorf("not a millisecond count: %q", short(s))
	}
	*m = millis(f)
	return nil
}

// flexString is a JSON string that also accepts a number or null.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("not a string or number: %s", short(string(b)))
	}
	*f = flexString(n.String())
	return nil
}

// maxTaskID caps the length of a task id.
const maxTaskID = 256

// checkTaskID reports whether id is a plausible task id: non-empty, short,
// without spaces or control characters.
func checkTaskID(id string) error {
	if id == "" {
		return parseError("empty taskId")
	}
	if len(id) > maxTaskID {
		return parseError("taskId longer than %d bytes", maxTaskID)
	}
	if strings.ContainsFunc(id, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	}) {
		return parseError("taskId %q has spaces or control characters", id)
	}
	return nil
}

// errParse is the cause of every ParseTask error.
var errParse = errors.New("seedance: malformed task body")

func parseError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errParse, fmt.Sprintf(format, args...))
}

// short caps s for use inside an error message.
func short(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

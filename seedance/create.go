package seedance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// createRules is what the classification of a create's answer depends on
// besides the answer itself.
type createRules struct {
	// key is redacted from every message kept.
	key string
	// notCreated is Config.NotCreatedCodes.
	notCreated []int
	// now dates a Retry-After given as an HTTP date.
	now time.Time
}

// provenKind returns the kind of an answer code (an HTTP status, or the
// JSON code of a 2xx) that proves a create created nothing, or nil when
// the code proves nothing. 429 and 400 are refusals the provider documents
// as costing nothing; 401 and 403 refuse the key and 402 the account
// before any work; the codes of Config.NotCreatedCodes are documented by
// the provider as "not created".
func (r createRules) provenKind(code int) error {
	switch {
	case code == http.StatusTooManyRequests:
		return ErrRateLimited
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return ErrAuth
	case code == http.StatusBadRequest || code == http.StatusPaymentRequired:
		return ErrInvalid
	case slices.Contains(r.notCreated, code):
		return ErrServer
	}
	return nil
}

// classifyCreate turns the answer to a create whose request was written
// into the task id or an *Error. It is a pure function of the answer and
// the rules, so it can be tested alone: an answer is a retryable kind
// (ErrServer, ErrRateLimited, ErrAuth) only when its code proves that
// nothing was created (provenKind); ErrInvalid and ErrNotFound end or hold
// the row without resending; everything else is ErrUnknownOutcome.
func classifyCreate(res *response, r createRules) (taskID string, err error) {
	env, isJSON := decodeEnvelope(res.body)
	if res.status/100 == 2 {
		return classifyCreated(res, env, isJSON, r)
	}
	e := &Error{Op: opCreate, StatusCode: res.status, Err: res.readErr}
	fromProvider := isJSON && env.hasCode && env.hasMessage
	if fromProvider {
		e.Code, e.Message = env.code, cleanMessage(env.message, r.key)
	} else {
		e.detail = "the answer is not the provider's JSON" + contentType(res.header)
	}
	e.Kind = r.provenKind(res.status)
	switch {
	case e.Kind != nil:
	case fromProvider && slices.Contains(r.notCreated, env.code):
		e.Kind = ErrServer
	case res.status == http.StatusNotFound:
		e.Kind = ErrNotFound
	case res.status >= 400 && res.status < 500 && res.status != http.StatusRequestTimeout:
		// The provider refused the request as wrong: the row fails, and
		// nothing is sent again.
		e.Kind = ErrInvalid
	case res.status < 400:
		// Redirects are not followed: the base URL is probably wrong.
		e.Kind, e.detail = ErrInvalid, "unexpected answer"+contentType(res.header)+"; check Config.BaseURL"
	case fromProvider:
		// A 5xx or 408 in the provider's own form: its documentation does
		// not say that nothing was created before the error.
		e.Kind = ErrUnknownOutcome
		e.detail = "the provider answered an error after the request was sent"
	default:
		// Not the provider's own error: a gateway or proxy answered, and
		// it may have forwarded the request before giving up.
		e.Kind = ErrUnknownOutcome
		e.detail = "a gateway answered (it may have forwarded the request)" + contentType(res.header)
	}
	if e.Kind == ErrRateLimited {
		e.RetryAfter = parseRetryAfter(res.header.Get("Retry-After"), r.now)
	}
	namesTask(e, env)
	return "", e
}

// classifyCreated classifies a 2xx answer to a create: the task was most
// likely created, so anything short of a valid task id, or of an error code
// that proves nothing was created, leaves the outcome unknown.
func classifyCreated(res *response, env envelope, isJSON bool, r createRules) (string, error) {
	unknown := func(detail string, err error) error {
		return &Error{Kind: ErrUnknownOutcome, Op: opCreate, StatusCode: res.status, Err: err, detail: detail}
	}
	if res.readErr != nil {
		return "", unknown("reading the answer failed", res.readErr)
	}
	if !isJSON {
		return "", unknown("the answer is not the provider's JSON"+contentType(res.header), nil)
	}
	if env.hasCode && env.code != http.StatusOK {
		e := &Error{Op: opCreate, StatusCode: res.status, Code: env.code, Message: cleanMessage(env.message, r.key),
			Kind: r.provenKind(env.code)}
		switch {
		case e.Kind == nil:
			e.Kind, e.detail = ErrUnknownOutcome, fmt.Sprintf("the answer has code %d", env.code)
		case e.Kind == ErrRateLimited:
			e.RetryAfter = parseRetryAfter(res.header.Get("Retry-After"), r.now)
		}
		namesTask(e, env)
		return "", e
	}
	var data struct {
		TaskID string `json:"taskId"`
	}
	if len(env.data) == 0 || json.Unmarshal(env.data, &data) != nil {
		return "", unknown("the answer has no data.taskId", nil)
	}
	if err := checkTaskID(data.TaskID); err != nil {
		return "", unknown("the answer has no valid task id", err)
	}
	return data.TaskID, nil
}

// namesTask makes e an unknown outcome when the error answer nonetheless
// names a valid task id: such an answer proves nothing.
func namesTask(e *Error, env envelope) {
	if e.Kind == ErrUnknownOutcome || len(env.data) == 0 {
		return
	}
	var data struct {
		TaskID string `json:"taskId"`
	}
	if json.Unmarshal(env.data, &data) != nil || checkTaskID(data.TaskID) != nil {
		return
	}
	e.Kind, e.RetryAfter = ErrUnknownOutcome, 0
	e.detail = "the error answer names task " + data.TaskID
}

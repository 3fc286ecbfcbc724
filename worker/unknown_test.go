package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/seedance"
)

func TestUnknownOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no answer", &seedance.Error{Kind: seedance.ErrUnknownOutcome, Op: "create", Err: context.DeadlineExceeded},
			"no answer came after the create was sent"},
		{"5xx", &seedance.Error{Kind: seedance.ErrUnknownOutcome, Op: "create", StatusCode: 503, Code: 503, Message: "busy"},
			"the provider answered HTTP 503 after the create was sent"},
		{"2xx with an error code", &seedance.Error{Kind: seedance.ErrUnknownOutcome, Op: "create", StatusCode: 200, Code: 500},
			"the provider answered HTTP 200 with code 500 after the create was sent"},
		{"2xx without a task id", &seedance.Error{Kind: seedance.ErrUnknownOutcome, Op: "create", StatusCode: 201},
			"the provider answered HTTP 201 without a usable task id"},
		{"not a provider error", errors.New("boom"), "the create failed after it was sent"},
	}
	for _, tt := range tests {
		got := unknownOutcome("b-1", tt.err)
		for _, w := range []string{tt.want, "it may have created (and will bill) the task", "`seedbatch retry b-1 --state ambiguous`",
			tt.err.Error()} {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q does not say %q", tt.name, got, w)
			}
		}
	}
}

func TestAccountRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&seedance.Error{Kind: seedance.ErrInvalid, StatusCode: 402, Code: 402}, true},
		{&seedance.Error{Kind: seedance.ErrInvalid, StatusCode: 200, Code: 402, Message: "insufficient credits"}, true},
		{fmt.Errorf("create: %w", &seedance.Error{Kind: seedance.ErrInvalid, StatusCode: 200, Code: 402}), true},
		{&seedance.Error{Kind: seedance.ErrInvalid, StatusCode: 400, Code: 400, Message: "INSUFFICIENT_CREDITS: top up"}, true},
		{&seedance.Error{Kind: seedance.ErrInvalid, StatusCode: 400, Code: 400, Message: "bad prompt"}, false},
		{&seedance.Error{Kind: seedance.ErrUnknownOutcome, StatusCode: 200, Code: 500}, false},
		{errors.New("402"), false},
	}
	for _, tt := range tests {
		if got := accountRefused(tt.err); got != tt.want {
			t.Errorf("accountRefused(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

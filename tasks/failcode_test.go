package tasks

import "testing"

func TestPossiblyBilled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code    string
		hadTask bool
		want    bool
	}{
		{CodeNoResult, true, true},
		{CodeResultExpired, true, true},
		{CodeDownloadTooLarge, true, true},
		{CodeDownloadFailed, true, true},
		{CodeAnswerUnreadable, true, true},
		{CodeAnswerUnreadable, false, true},
		{CodeTimedOut, true, true},
		{CodeTimedOut, false, false},
		{CodeTaskNotFound, true, true},
		{CodeTaskNotFound, false, false},
		{"CONTENT_VIOLATION", true, false},
		{"GENERATION_FAILED", true, false},
		{"SOMETHING_NEW", true, false},
		{CodeProviderError, true, false},
		{CodeProviderError, false, false},
		{CodeInvalidRequest, false, false},
		{CodeCreateUnknown, false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if got := PossiblyBilled(tt.code, tt.hadTask); got != tt.want {
			t.Errorf("PossiblyBilled(%q, %v) = %v, want %v", tt.code, tt.hadTask, got, tt.want)
		}
	}
}

package dashboard

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/seedbatch/seedbatch/tasks"
)

// handleMonitor sends a request to the writable asynqmon when it may
// write, to the read-only one otherwise, and refuses mutating requests
// that may not write before asynqmon sees them.
func (s *Server) handleMonitor(w http.ResponseWriter, r *http.Request) {
	rw := s.canWrite(r) && s.monRW != nil
	if !rw && r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "the queue monitor is read-only for this request", http.StatusForbidden)
		return
	}
	if rw {
		s.monRW.ServeHTTP(w, r)
		return
	}
	s.monRO.ServeHTTP(w, r)
}

// formatPayload shows the references a seedbatch payload holds and
// nothing else; a payload that is not one shows as hidden.
func formatPayload(taskType string, payload []byte) string {
	if !strings.HasPrefix(taskType, "video:") {
		return fmt.Sprintf("(%d bytes hidden)", len(payload))
	}
	p, err := tasks.ParseJobPayload(payload)
	if err != nil {
		return fmt.Sprintf("(%d bytes hidden)", len(payload))
	}
	out := fmt.Sprintf("batch=%s row=%d attempt=%d", p.Batch, p.Row, p.Attempt)
	if p.Poll != 0 {
		out += fmt.Sprintf(" poll=%d", p.Poll)
	}
	if p.Callback {
		out += " callback"
	}
	if p.TaskID != "" {
		out += " task=" + p.TaskID
	}
	return out
}

// formatResult shows nothing of a task's result: seedbatch keeps its
// outcomes in its own records.
func formatResult(_ string, result []byte) string {
	if len(result) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d bytes hidden)", len(result))
}

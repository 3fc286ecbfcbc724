package queue

import (
	"strings"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/tasks"
)

// Names are the asynq queues of one seedbatch namespace. Several
// namespaces can share one Redis without seeing each other's tasks.
type Names struct {
	Submit, Poll, Download string
}

// NamesFor returns the queue names under prefix.
func NamesFor(prefix string) Names {
	return Names{Submit: prefix + "-" + tasks.QueueSubmit, Poll: prefix + "-" + tasks.QueuePoll,
		Download: prefix + "-" + tasks.QueueDownload}
}

// Prefix returns the prefix the names were made with.
func (q Names) Prefix() string { return strings.TrimSuffix(q.Submit, "-"+tasks.QueueSubmit) }

// All lists the queue names.
func (q Names) All() []string { return []string{q.Submit, q.Poll, q.Download} }

// Mover returns the queue whose tasks move a job on from state st, and
// false for a state no task moves (one that waits for an operator or has
// ended).
func (q Names) Mover(st tasks.State) (string, bool) {
	switch st {
	case tasks.StateQueued, tasks.StateSubmitting:
		return q.Submit, true
	case tasks.StateSubmitted:
		return q.Poll, true
	case tasks.StateSucceeded:
		return q.Download, true
	}
	return "", false
}

// Served reports whether any active server among servers (as asynq's
// Inspector.Servers lists the live ones) takes tasks from the queue name.
func Served(servers []*asynq.ServerInfo, name string) bool {
	for _, s := range servers {
		if s.Status == "active" && s.Queues[name] > 0 {
			return true
		}
	}
	return false
}

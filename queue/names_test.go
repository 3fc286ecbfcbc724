package queue

import (
	"testing"

	"github.com/hibiken/asynq"

	"github.com/seedbatch/seedbatch/tasks"
)

func TestServed(t *testing.T) {
	t.Parallel()
	q := NamesFor("sb")
	active := &asynq.ServerInfo{Status: "active", Queues: map[string]int{q.Submit: 5, q.Poll: 5}}
	stopped := &asynq.ServerInfo{Status: "stopped", Queues: map[string]int{q.Download: 1}}
	other := &asynq.ServerInfo{Status: "active", Queues: map[string]int{"other-download": 1}}
	tests := []struct {
		name    string
		servers []*asynq.ServerInfo
		queue   string
		want    bool
	}{
		{"no server", nil, q.Submit, false},
		{"an active server", []*asynq.ServerInfo{active}, q.Submit, true},
		{"a queue it does not serve", []*asynq.ServerInfo{active}, q.Download, false},
		{"a stopped server", []*asynq.ServerInfo{stopped, other}, q.Download, false},
		{"another namespace's server", []*asynq.ServerInfo{other}, q.Download, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Served(tt.servers, tt.queue); got != tt.want {
				t.Errorf("Served(%s) = %v, want %v", tt.queue, got, tt.want)
			}
		})
	}
}

func TestMover(t *testing.T) {
	t.Parallel()
	q := NamesFor("sb")
	want := map[tasks.State]string{
		tasks.StateQueued: q.Submit, tasks.StateSubmitting: q.Submit,
		tasks.StateSubmitted: q.Poll, tasks.StateSucceeded: q.Download,
	}
	for _, st := range tasks.States {
		got, ok := q.Mover(st)
		if w, moves := want[st]; got != w || ok != moves {
			t.Errorf("Mover(%s) = %q, %v; want %q, %v", st, got, ok, w, moves)
		}
	}
}

package batch_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/internal/redistest"
	"github.com/seedbatch/seedbatch/tasks"
)

// FuzzReplay replays arbitrary journals after a valid header. Whatever the
// records say, replay must not panic, every job must stay in a valid state
// with the batch's counts adding up, and a record that cannot be read is
// skipped only when it is the journal's last line.
func FuzzReplay(f *testing.F) {
	rs := redistest.New(f)
	s := batch.NewStore(rs.Client, rs.Prefix)
	hdr := batch.JournalHeader{Batch: "b", Hash: "h", Store: batch.StoreEmbedded}
	header := `{"k":"header","b":"b","h":"h","st":"embedded"}` + "\n"
	f.Add(`{"k":"transition","b":"b","r":0,"c":{"From":["queued"],"To":"submitting"}}` + "\n")
	f.Add(`{"k":"transition","b":"b","r":1,"c":{"From":["queued"],"To":"done","Files":[{"path":"x"}]}}` + "\n" + `{"k":"reserve","b":"b","r":1,"s":4}`)
	f.Add(`{"k":"transition","b":"b","r":0,"c":{"From":["queued"],"To":"mystery"}}` + "\n")
	f.Add(`{"k":"cancel","b":"b"}` + "\n" + `{"k":"budget","s":-3}` + "\n")
	f.Add(`{"k":"transition","b":"other","r":9,"c":{"From":["queued"],"To":"failed"}}` + "\n{\n")
	f.Add("not json\n" + `{"k":"cancel","b":"b"}` + "\n")
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, body string) {
		ctx := t.Context()
		if rs.Mini != nil {
			rs.Mini.FlushAll() // miniredis slows down as it fills
		}
		id := fmt.Sprintf("b%d", n.Add(1))
		journal := strings.ReplaceAll(header+body, `"b":"b"`, `"b":"`+id+`"`)
		want := hdr
		want.Batch = id
		if _, err := s.CreateBatch(ctx, batch.Meta{ID: id, Rows: 3}); err != nil {
			t.Fatal(err)
		}
		var jobs []batch.Job
		for i := range 3 {
			jobs = append(jobs, batch.Job{Batch: id, Row: i, Spec: spec(fmt.Sprintf("row %d", i)), State: tasks.StateQueued})
		}
		if _, err := s.AddJobs(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		_, err := s.Replay(ctx, strings.NewReader(journal), want)

		lines := bytes.Split(bytes.TrimRight([]byte(journal), "\n"), []byte("\n"))
		for i, l := range lines[:len(lines)-1] {
			if i > 0 && !validJSON(l) && err == nil {
				t.Fatalf("line %d %q is unreadable and not the last, yet replay succeeded", i+1, l)
			}
		}
		_, counts, berr := s.Get(ctx, id)
		if berr != nil {
			t.Fatal(berr)
		}
		if counts.Total() != 3 {
			t.Fatalf("counts %v add up to %d, want 3", counts, counts.Total())
		}
		for j, jerr := range s.All(ctx, id) {
			if jerr != nil {
				t.Fatal(jerr)
			}
			if !j.State.Valid() {
				t.Fatalf("row %d is in state %q after replay", j.Row, j.State)
			}
		}
	})
}

func validJSON(b []byte) bool {
	var v map[string]any
	return json.Unmarshal(b, &v) == nil
}

package tasks

import "testing"

// FuzzParseJobPayload checks that whatever ParseJobPayload accepts names a
// batch and a row, and survives Marshal and ParseJobPayload unchanged.
func FuzzParseJobPayload(f *testing.F) {
	f.Add(JobPayload{Batch: "b", Row: 3}.Marshal())
	f.Add(JobPayload{Batch: "ads-1f2e", Attempt: 2, Poll: 7, NotBeforeMS: 1767225600000, Callback: true, TaskID: "task_x"}.Marshal())
	f.Add([]byte(`{"batch":"b","row":-1}`))
	f.Add([]byte(`{"batch":"","row":0}`))
	f.Add([]byte(`{"BATCH":"b","Row":1,"row":2}`))
	f.Add([]byte("{\"batch\":\"\\ud800\xff\",\"row\":1}")) // a lone surrogate, a stray byte
	f.Add([]byte(`{"batch":"b","row":1e2}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseJobPayload(b)
		if err != nil {
			return
		}
		if p.Batch == "" || p.Row < 0 {
			t.Fatalf("ParseJobPayload(%q) accepted %+v", b, p)
		}
		q, err := ParseJobPayload(p.Marshal())
		if err != nil || q != p {
			t.Fatalf("ParseJobPayload(%q) = %+v; after Marshal: %+v, %v", b, p, q, err)
		}
	})
}

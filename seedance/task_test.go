package seedance

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseTask(t *testing.T) {
	t.Parallel()
	ms := func(n int64) time.Time { return time.UnixMilli(n).UTC() }
	tests := []struct {
		name    string
		body    string
		want    Task
		wantErr bool
	}{
		{name: "success",
			body: `{"code":200,"message":"success","data":{"taskId":"task_abc123","state":"success",
				"resultJson":"{\"resultUrls\":[\"https://cdn.example/abc.mp4\"]}",
				"createTime":1704067200000,"completeTime":1704067262500,"costTime":62500}}`,
			want: Task{ID: "task_abc123", State: StateSuccess, ResultURLs: []string{"https://cdn.example/abc.mp4"},
				CreateTime: ms(1704067200000), CompleteTime: ms(1704067262500), CostTime: 62500 * time.Millisecond}},
		{name: "pending",
			body: `{"code":200,"data":{"taskId":"t1","state":"pending","createTime":1704067200000}}`,
			want: Task{ID: "t1", State: StatePending, CreateTime: ms(1704067200000)}},
		{name: "processing, null fields",
			body: `{"code":200,"data":{"taskId":"t1","state":"processing","resultJson":null,"costTime":null,"failCode":null}}`,
			want: Task{ID: "t1", State: StateProcessing}},
		{name: "failed",
			body: `{"code":200,"data":{"taskId":"t1","state":"failed","failCode":"CONTENT_VIOLATION","failMsg":"prompt breaks the rules","completeTime":1704067262500,"costTime":"1200"}}`,
			want: Task{ID: "t1", State: StateFailed, FailCode: "CONTENT_VIOLATION", FailMsg: "prompt breaks the rules",
				CompleteTime: ms(1704067262500), CostTime: 1200 * time.Millisecond}},
		{name: "numeric fail code",
			body: `{"code":200,"data":{"taskId":"t1","state":"failed","failCode":501}}`,
			want: Task{ID: "t1", State: StateFailed, FailCode: "501"}},
		{name: "resultJson as object, blanks dropped",
			body: `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":{"resultUrls":["u1"," ","u2"]}}}`,
			want: Task{ID: "t1", State: StateSuccess, ResultURLs: []string{"u1", "u2"}}},
		{name: "resultJson empty string",
			body: `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":""}}`,
			want: Task{ID: "t1", State: StateSuccess}},
		{name: "float millis",
			body: `{"code":200,"data":{"taskId":"t1","state":"success","costTime":1.5e3}}`,
			want: Task{ID: "t1", State: StateSuccess, CostTime: 1500 * time.Millisecond}},
		{name: "not json", body: `<html>`, wantErr: true},
		{name: "empty", body: ``, wantErr: true},
		{name: "no code", body: `{"data":{"taskId":"t1","state":"success"}}`, wantErr: true},
		{name: "code 404", body: `{"code":404,"message":"task not found"}`, wantErr: true},
		{name: "no data", body: `{"code":200}`, wantErr: true},
		{name: "empty task id", body: `{"code":200,"data":{"taskId":"","state":"success"}}`, wantErr: true},
		{name: "task id with newline", body: `{"code":200,"data":{"taskId":"t\n1","state":"success"}}`, wantErr: true},
		{name: "unknown state", body: `{"code":200,"data":{"taskId":"t1","state":"done"}}`, wantErr: true},
		{name: "resultJson malformed", body: `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":"{\"resultUrls\":"}}`, wantErr: true},
		{name: "resultJson urls not strings", body: `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":"{\"resultUrls\":[1]}"}}`, wantErr: true},
		{name: "resultJson number", body: `{"code":200,"data":{"taskId":"t1","state":"success","resultJson":5}}`, wantErr: true},
		{name: "negative time", body: `{"code":200,"data":{"taskId":"t1","state":"success","costTime":-1}}`, wantErr: true},
		{name: "huge time", body: `{"code":200,"data":{"taskId":"t1","state":"success","costTime":1e300}}`, wantErr: true},
		{name: "time not a number", body: `{"code":200,"data":{"taskId":"t1","state":"success","createTime":"soon"}}`, wantErr: true},
		{name: "fail code object", body: `{"code":200,"data":{"taskId":"t1","state":"failed","failCode":{}}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTask([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseTask = %+v, want error", got)
				}
				if !errors.Is(err, errParse) {
					t.Errorf("err = %v, want errParse", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTask: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseTask =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseTask(f *testing.F) {
	for _, s := range []string{
		`{"code":200,"message":"success","data":{"taskId":"task_abc123","state":"success","resultJson":"{\"resultUrls\":[\"https://cdn.example/abc.mp4\"]}","createTime":1704067200000,"completeTime":1704067262500,"costTime":62500}}`,
		`{"code":200,"data":{"taskId":"t1","state":"failed","failCode":"CONTENT_VIOLATION","failMsg":"x"}}`,
		`{"code":200,"data":{"taskId":"t1","state":"success","resultJson":{"resultUrls":["u"]},"costTime":"1e3"}}`,
		`{"code":404,"message":"task not found"}`,
		`{"code":200,"data":null}`,
		`null`, `[]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		task, err := ParseTask(body)
		if err != nil {
			return
		}
		if task.ID == "" || !task.State.valid() || task.CostTime < 0 {
			t.Fatalf("ParseTask accepted an invalid task: %+v", task)
		}
		for _, u := range task.ResultURLs {
			if u == "" {
				t.Fatalf("blank result URL in %+v", task)
			}
		}
	})
}

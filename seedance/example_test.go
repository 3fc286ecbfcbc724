package seedance_test

import (
	"errors"
	"fmt"

	"github.com/seedbatch/seedbatch/seedance"
)

func ExampleParseTask() {
	body := []byte(`{"code":200,"message":"success","data":{"taskId":"task_abc123","state":"success",
		"resultJson":"{\"resultUrls\":[\"https://cdn.example/abc.mp4\"]}",
		"createTime":1704067200000,"completeTime":1704067262500,"costTime":62500}}`)
	t, err := seedance.ParseTask(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.ID, t.State, t.ResultURLs, t.CostTime, t.CompleteTime.Format("2006-01-02T15:04:05.000Z07:00"))
	// Output: task_abc123 success [https://cdn.example/abc.mp4] 1m2.5s 2024-01-01T00:01:02.500Z
}

func ExampleError() {
	var err error = &seedance.Error{Kind: seedance.ErrRateLimited, Op: "create", StatusCode: 429, Code: 429, Message: "Too many requests"}
	fmt.Println(err)
	fmt.Println(errors.Is(err, seedance.ErrRateLimited), errors.Is(err, seedance.ErrUnknownOutcome))
	// Output:
	// seedance create: rate limited (429): Too many requests
	// true false
}

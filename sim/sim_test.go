package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "test-key"

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// bundle is what a test needs: the simulator, its server and its clock.
type bundle struct {
	sim   *Sim
	srv   *httptest.Server
	clock *fakeClock
}

// setup serves a simulator built from cfg. An empty APIKey becomes testKey;
// a nil Now becomes a fake clock (bundle.clock).
func setup(t testing.TB, cfg Config) *bundle {
	t.Helper()
	b := &bundle{}
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	if cfg.Now == nil {
		b.clock = &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
		cfg.Now = b.clock.Now
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b.sim = s
	b.srv = httptest.NewServer(s)
	t.Cleanup(b.srv.Close)
	t.Cleanup(s.Close) // runs first: stops callback deliveries
	return b
}

// answer is a decoded provider answer.
type answer struct {
	status int
	header http.Header
	raw    []byte
	Code   int             `json:"code"`
	Msg    string          `json:"message"`
	Data   json.RawMessage `json:"data"`
}

// do sends one request with the given bearer key ("" for none).
func (b *bundle) do(t testing.TB, method, path, key, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	a.raw, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(a.raw, &a); err != nil {
			t.Fatalf("decode %s: %v", a.raw, err)
		}
	}
	return a
}

const createPath = "/api/v1/generateTask/seedance-1-5-pro"

func statusPath(id string) string { return "/api/v1/statusTask/seedance-1-5-pro?taskId=" + id }

// body returns a valid text-to-video create body, changed by edit.
func body(t testing.TB, edit func(req, in map[string]any)) string {
	t.Helper()
	in := map[string]any{
		"mode": "text-to-video", "prompt": "a calm seaside sunrise", "resolution": "720p",
		"duration": 8, "aspect_ratio": "16:9", "sound": true, "fixed_lens": false,
	}
	req := map[string]any{"request_type": "async", "provider": "auto", "input": in}
	if edit != nil {
		edit(req, in)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func promptBody(t testing.TB, prompt string, duration int) string {
	return body(t, func(_, in map[string]any) { in["prompt"] = prompt; in["duration"] = duration })
}

// create creates a task and returns its id, failing the test on any other answer.
func (b *bundle) create(t testing.TB, body string) string {
	t.Helper()
	a := b.do(t, "POST", createPath, testKey, body)
	if a.status != 200 || a.Code != 200 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	var d struct {
		TaskID string `json:"taskId"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil || !strings.HasPrefix(d.TaskID, "task_") {
		t.Fatalf("create data %s: %v", a.Data, err)
	}
	return d.TaskID
}

// view is the data of a status answer.
type view struct {
	TaskID       string `json:"taskId"`
	State        string `json:"state"`
	ResultJSON   string `json:"resultJson"`
	FailCode     string `json:"failCode"`
	FailMsg      string `json:"failMsg"`
	CreateTime   int64  `json:"createTime"`
	CompleteTime *int64 `json:"completeTime"`
	CostTime     *int64 `json:"costTime"`
}

// status reads a task, failing the test on anything but a 200.
func (b *bundle) status(t testing.TB, id string) view {
	t.Helper()
	a := b.do(t, "GET", statusPath(id), testKey, "")
	if a.status != 200 || a.Code != 200 {
		t.Fatalf("status: %d %s", a.status, a.raw)
	}
	var v view
	if err := json.Unmarshal(a.Data, &v); err != nil {
		t.Fatalf("status data %s: %v", a.Data, err)
	}
	return v
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no key", Config{}, "APIKey"},
		{"time scale below 1", Config{APIKey: "k", TimeScale: 0.5}, "TimeScale"},
		{"negative rpm", Config{APIKey: "k", RequestsPerMinute: -1}, "RequestsPerMinute"},
		{"negative burst", Config{APIKey: "k", Burst: -1}, "Burst"},
		{"negative in flight", Config{APIKey: "k", MaxInFlight: -1}, "MaxInFlight"},
		{"fail rate above 1", Config{APIKey: "k", FailRate: 1.5}, "FailRate"},
		{"negative file size", Config{APIKey: "k", FileSize: -1}, "FileSize"},
		{"callback drop rate above 1", Config{APIKey: "k", CallbackDropRate: 1.01}, "CallbackDropRate"},
		{"negative callback drop rate", Config{APIKey: "k", CallbackDropRate: -0.1}, "CallbackDropRate"},
		{"callback dup rate above 1", Config{APIKey: "k", CallbackDupRate: 2}, "CallbackDupRate"},
		{"negative callback delay", Config{APIKey: "k", CallbackDelay: -time.Second}, "CallbackDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("New = %v, want an error naming %s", err, tt.field)
			}
		})
	}
	if _, err := New(Config{APIKey: "k"}); err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	c := Config{RequestsPerMinute: 600}.WithDefaults()
	if c.Burst != 10 || c.TimeScale != 1 || c.MaxInFlight != MaxInFlightDefault || c.FileSize != FileSizeDefault {
		t.Fatalf("WithDefaults = %+v", c)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tests := []struct {
		name, method, path, key, body string
	}{
		{"create without key", "POST", createPath, "", body(t, nil)},
		{"create with wrong key", "POST", createPath, "wrong", body(t, nil)},
		{"status without key", "GET", statusPath("task_x"), "", ""},
		{"status with wrong key", "GET", statusPath("task_x"), "wrong", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.do(t, tt.method, tt.path, tt.key, tt.body)
			if a.status != 401 || a.Code != 401 || a.Msg != "Invalid or missing API key" {
				t.Fatalf("got %d %s", a.status, a.raw)
			}
		})
	}
	b.sim.SetAPIKey("new-key")
	if a := b.do(t, "POST", createPath, testKey, body(t, nil)); a.status != 401 {
		t.Fatalf("old key after SetAPIKey: %d", a.status)
	}
	if a := b.do(t, "POST", createPath, "new-key", body(t, nil)); a.status != 200 {
		t.Fatalf("new key: %d %s", a.status, a.raw)
	}
	st := b.sim.Stats()
	if st.Count(KindCreate, 401) != 3 || st.Count(KindStatus, 401) != 2 || st.Created != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		field string // "" means valid
	}{
		{"malformed JSON", `{"input":`, "JSON"},
		{"empty body", ``, "JSON"},
		{"duration as string", `{"input":{"duration":"8"}}`, "JSON"},
		{"bad request_type", body(t, func(r, _ map[string]any) { r["request_type"] = "sync" }), "request_type"},
		{"callback without url", body(t, func(r, _ map[string]any) { r["request_type"] = "callback" }), "callback_url"},
		{"callback with bad url", body(t, func(r, _ map[string]any) {
			r["request_type"], r["callback_url"] = "callback", "not a url"
		}), "callback_url"},
		{"bad provider", body(t, func(r, _ map[string]any) { r["provider"] = "cheap" }), "provider"},
		{"no mode", body(t, func(_, in map[string]any) { delete(in, "mode") }), "input.mode"},
		{"bad mode", body(t, func(_, in map[string]any) { in["mode"] = "video-to-video" }), "input.mode"},
		{"short prompt", body(t, func(_, in map[string]any) { in["prompt"] = "ab" }), "input.prompt"},
		{"long prompt", body(t, func(_, in map[string]any) { in["prompt"] = strings.Repeat("a", 2501) }), "input.prompt"},
		{"images with text-to-video", body(t, func(_, in map[string]any) {
			in["image_urls"] = []string{"https://example.org/a.png"}
		}), "input.image_urls"},
		{"image-to-video without images", body(t, func(_, in map[string]any) { in["mode"] = "image-to-video" }), "input.image_urls"},
		{"three images", body(t, func(_, in map[string]any) {
			in["mode"] = "image-to-video"
			in["image_urls"] = []string{"https://e.org/1.png", "https://e.org/2.png", "https://e.org/3.png"}
		}), "input.image_urls"},
		{"ftp image", body(t, func(_, in map[string]any) {
			in["mode"], in["image_urls"] = "image-to-video", []string{"ftp://e.org/1.png"}
		}), "input.image_urls[0]"},
		{"bad resolution", body(t, func(_, in map[string]any) { in["resolution"] = "1080p" }), "input.resolution"},
		{"no resolution", body(t, func(_, in map[string]any) { delete(in, "resolution") }), "input.resolution"},
		{"bad duration", body(t, func(_, in map[string]any) { in["duration"] = 5 }), "input.duration"},
		{"bad aspect ratio", body(t, func(_, in map[string]any) { in["aspect_ratio"] = "2:1" }), "input.aspect_ratio"},

		{"valid text-to-video", body(t, nil), ""},
		{"valid defaults", `{"input":{"mode":"text-to-video","prompt":"abc","resolution":"480p","duration":4}}`, ""},
		{"valid 3 runes", body(t, func(_, in map[string]any) { in["prompt"] = "日本語" }), ""},
		{"valid 2500 runes", body(t, func(_, in map[string]any) { in["prompt"] = strings.Repeat("é", 2500) }), ""},
		{"valid unknown fields", body(t, func(r, in map[string]any) { r["extra"] = 1; in["seed"] = 42 }), ""},
		{"valid image-to-video", body(t, func(_, in map[string]any) {
			in["mode"], in["image_urls"] = "image-to-video", []string{"https://e.org/1.png", "http://e.org/2.png"}
		}), ""},
		{"valid callback", body(t, func(r, _ map[string]any) {
			r["request_type"], r["callback_url"], r["provider"] = "callback", "https://e.org/hook", "official"
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, Config{})
			a := b.do(t, "POST", createPath, testKey, tt.body)
			st := b.sim.Stats()
			if tt.field == "" {
				if a.status != 200 || st.Created != 1 {
					t.Fatalf("got %d %s, created %d", a.status, a.raw, st.Created)
				}
				return
			}
			if a.status != 400 || a.Code != 400 || !strings.Contains(a.Msg, tt.field) {
				t.Fatalf("got %d %s, want 400 naming %s", a.status, a.raw, tt.field)
			}
			if st.Created != 0 || st.Count(KindCreate, 400) != 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	for _, scale := range []float64{1, 10} {
		t.Run("scale "+strconv.FormatFloat(scale, 'g', -1, 64), func(t *testing.T) {
			b := setup(t, Config{TimeScale: scale, FileSize: 1000})
			sc := func(d time.Duration) time.Duration { return time.Duration(float64(d) / scale) }
			start := b.clock.Now()
			id := b.create(t, body(t, nil)) // 8 s video: 60–90 s

			v := b.status(t, id)
			if v.TaskID != id || v.State != "pending" || v.CreateTime != start.UnixMilli() ||
				v.CompleteTime != nil || v.CostTime != nil || v.ResultJSON != "" || v.FailCode != "" {
				t.Fatalf("at start: %+v", v)
			}
			if a := b.do(t, "GET", "/files/"+id+".mp4", "", ""); a.status != 404 {
				t.Fatalf("file before success: %d", a.status)
			}
			b.clock.Advance(sc(5 * time.Second)) // pending lasts at least 9 s
			if v := b.status(t, id); v.State != "pending" {
				t.Fatalf("at 5 s: %+v", v)
			}
			b.clock.Advance(sc(10 * time.Second)) // pending lasts at most 13.5 s
			if v := b.status(t, id); v.State != "processing" {
				t.Fatalf("at 15 s: %+v", v)
			}
			if st := b.sim.Stats(); st.InFlight != 1 || st.Succeeded != 0 {
				t.Fatalf("stats while processing: %+v", st)
			}
			b.clock.Advance(sc(45 * time.Second))
			if v := b.status(t, id); v.State != "processing" && v.State != "success" {
				t.Fatalf("at 60 s: %+v", v)
			}
			b.clock.Advance(sc(31 * time.Second))
			v = b.status(t, id)
			if v.State != "success" || v.CompleteTime == nil || v.CostTime == nil || v.FailCode != "" || v.FailMsg != "" {
				t.Fatalf("at 91 s: %+v", v)
			}
			if cost := time.Duration(*v.CostTime) * time.Millisecond; cost < sc(60*time.Second)-time.Millisecond || cost > sc(90*time.Second) {
				t.Fatalf("costTime %v out of range", cost)
			}
			if *v.CompleteTime-v.CreateTime != *v.CostTime {
				t.Fatalf("completeTime - createTime != costTime: %+v", v)
			}
			var res struct {
				ResultURLs []string `json:"resultUrls"`
			}
			if err := json.Unmarshal([]byte(v.ResultJSON), &res); err != nil || len(res.ResultURLs) != 1 {
				t.Fatalf("resultJson %q: %v", v.ResultJSON, err)
			}
			want := b.srv.URL + "/files/" + id + ".mp4"
			if res.ResultURLs[0] != want {
				t.Fatalf("result URL %q, want %q", res.ResultURLs[0], want)
			}

			resp, err := http.Get(res.ResultURLs[0])
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || len(data) != 1000 ||
				resp.Header.Get("Content-Type") != "video/mp4" || resp.ContentLength != 1000 {
				t.Fatalf("file: %d %v, %d bytes, %v", resp.StatusCode, err, len(data), resp.Header)
			}
			sum := sha256.Sum256(data)
			if h, ok := b.sim.FileSHA256(id); !ok || h != hex.EncodeToString(sum[:]) {
				t.Fatalf("FileSHA256 = %q %v, served %x", h, ok, sum)
			}
			if again := b.do(t, "GET", "/files/"+id+".mp4", "", ""); !bytes.Equal(again.raw, data) {
				t.Fatal("file content changed between downloads")
			}
			st := b.sim.Stats()
			if st.InFlight != 0 || st.Succeeded != 1 || st.Failed != 0 || st.PeakInFlight != 1 ||
				st.Count(KindFile, 200) != 2 || st.Count(KindFile, 404) != 1 || st.Count(KindStatus, 200) != 5 {
				t.Fatalf("final stats: %+v", st)
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	if a := b.do(t, "GET", statusPath("task_nope"), testKey, ""); a.status != 404 || a.Code != 404 || a.Msg != "task not found" {
		t.Fatalf("unknown task: %d %s", a.status, a.raw)
	}
	if a := b.do(t, "GET", statusPath(""), testKey, ""); a.status != 400 || !strings.Contains(a.Msg, "taskId") {
		t.Fatalf("no task id: %d %s", a.status, a.raw)
	}
	if a := b.do(t, "GET", "/files/task_nope.mp4", "", ""); a.status != 404 {
		t.Fatalf("unknown file: %d", a.status)
	}
	if _, ok := b.sim.FileSHA256("task_nope"); ok {
		t.Fatal("FileSHA256 of an unknown task")
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      Config
		body     func(t testing.TB) string
		failCode string
	}{
		{"content violation", Config{}, func(t testing.TB) string {
			return promptBody(t, "a fight [sim:content-violation]", 4)
		}, "CONTENT_VIOLATION"},
		{"invalid image", Config{}, func(t testing.TB) string {
			return body(t, func(_, in map[string]any) {
				in["mode"] = "image-to-video"
				in["image_urls"] = []string{"https://e.org/ok.png", "https://e.org/sim-invalid-image.png"}
			})
		}, "INVALID_IMAGE_URL"},
		{"fail rate", Config{FailRate: 1}, func(t testing.TB) string { return body(t, nil) }, "GENERATION_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, tt.cfg)
			id := b.create(t, tt.body(t))
			if _, ok := b.sim.FileSHA256(id); ok {
				t.Fatal("FileSHA256 of a failing task")
			}
			if v := b.status(t, id); v.State != "pending" {
				t.Fatalf("at start: %+v", v)
			}
			b.clock.Advance(2 * time.Minute)
			v := b.status(t, id)
			if v.State != "failed" || v.FailCode != tt.failCode || v.FailMsg == "" || v.ResultJSON != "" || v.CostTime == nil {
				t.Fatalf("at end: %+v", v)
			}
			if a := b.do(t, "GET", "/files/"+id+".mp4", "", ""); a.status != 404 {
				t.Fatalf("file of a failed task: %d", a.status)
			}
			if st := b.sim.Stats(); st.Failed != 1 || st.Succeeded != 0 || st.InFlight != 0 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

func TestCreateMarkers(t *testing.T) {
	t.Parallel()
	t.Run("reject", func(t *testing.T) {
		b := setup(t, Config{})
		a := b.do(t, "POST", createPath, testKey, promptBody(t, "x [sim:reject]", 4))
		if a.status != 400 || a.Code != 400 || !strings.Contains(a.Msg, "prompt") {
			t.Fatalf("got %d %s", a.status, a.raw)
		}
		if st := b.sim.Stats(); st.Created != 0 {
			t.Fatalf("created %d", st.Created)
		}
	})
	t.Run("create-500", func(t *testing.T) {
		b := setup(t, Config{})
		p := promptBody(t, "flaky [sim:create-500]", 4)
		for i := range 2 {
			a := b.do(t, "POST", createPath, testKey, p)
			if a.status != 500 || a.Code != 500 || a.Msg != "internal error" {
				t.Fatalf("attempt %d: %d %s", i, a.status, a.raw)
			}
		}
		if st := b.sim.Stats(); st.Created != 0 {
			t.Fatalf("created %d after two 500s", st.Created)
		}
		b.create(t, p)
		b.create(t, p)
		st := b.sim.Stats()
		if st.Created != 2 || st.CreatedPerPrompt["flaky [sim:create-500]"] != 2 || st.Count(KindCreate, 500) != 2 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("create-lost", func(t *testing.T) {
		b := setup(t, Config{})
		req, _ := http.NewRequest("POST", b.srv.URL+createPath, strings.NewReader(promptBody(t, "x [sim:create-lost]", 4)))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := b.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got an answer: %d", resp.StatusCode)
		}
		st := b.sim.Stats()
		if st.Created != 1 || st.InFlight != 1 || st.Count(KindCreate, StatusLost) != 1 || st.CreatedSeconds != 4 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("create-502", func(t *testing.T) {
		b := setup(t, Config{})
		a := b.do(t, "POST", createPath, testKey, promptBody(t, "x [sim:create-502]", 4))
		if a.status != 502 || a.header.Get("Content-Type") != "text/html" || string(a.raw) != "<html>Bad Gateway</html>" {
			t.Fatalf("got %d %v %s", a.status, a.header, a.raw)
		}
		if st := b.sim.Stats(); st.Created != 1 || st.Count(KindCreate, 502) != 1 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("create-no-id", func(t *testing.T) {
		b := setup(t, Config{})
		a := b.do(t, "POST", createPath, testKey, promptBody(t, "x [sim:create-no-id]", 4))
		if a.status != 200 || a.Code != 200 || string(a.Data) != "{}" {
			t.Fatalf("got %d %s", a.status, a.raw)
		}
		if st := b.sim.Stats(); st.Created != 1 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("create-500-created", func(t *testing.T) {
		b := setup(t, Config{})
		p := "x [sim:create-500-created]"
		a := b.do(t, "POST", createPath, testKey, promptBody(t, p, 4))
		if a.status != 500 || a.Code != 500 || a.Msg != "internal error" || len(a.Data) != 0 {
			t.Fatalf("got %d %s", a.status, a.raw)
		}
		if st := b.sim.Stats(); st.Created != 1 || st.CreatedPerPrompt[p] != 1 || st.InFlight != 1 || st.Count(KindCreate, 500) != 1 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("create-code-500", func(t *testing.T) {
		b := setup(t, Config{})
		p := "x [sim:create-code-500]"
		a := b.do(t, "POST", createPath, testKey, promptBody(t, p, 4))
		if a.status != 200 || a.Code != 500 || a.Msg != "internal error" || len(a.Data) != 0 {
			t.Fatalf("got %d %s", a.status, a.raw)
		}
		if st := b.sim.Stats(); st.Created != 1 || st.CreatedPerPrompt[p] != 1 || st.Count(KindCreate, 200) != 1 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("status-500", func(t *testing.T) {
		b := setup(t, Config{})
		id := b.create(t, promptBody(t, "x [sim:status-500]", 4))
		for i := range 2 {
			a := b.do(t, "GET", statusPath(id), testKey, "")
			if a.status != 500 || a.Code != 500 || a.Msg != "internal error" {
				t.Fatalf("read %d: %d %s", i, a.status, a.raw)
			}
		}
		if v := b.status(t, id); v.State != "pending" {
			t.Fatalf("third read: %+v", v)
		}
		if st := b.sim.Stats(); st.Count(KindStatus, 500) != 2 || st.Count(KindStatus, 200) != 1 {
			t.Fatalf("stats: %+v", st)
		}
	})
}

func TestStatusMarkers(t *testing.T) {
	t.Parallel()
	t.Run("status-unknown-state", func(t *testing.T) {
		b := setup(t, Config{})
		id := b.create(t, promptBody(t, "x [sim:status-unknown-state]", 4))
		if v := b.status(t, id); v.State != UnknownState || v.TaskID != id {
			t.Fatalf("running: %+v", v)
		}
		b.clock.Advance(2 * time.Minute)
		if v := b.status(t, id); v.State != UnknownState || v.ResultJSON == "" {
			t.Fatalf("ended: %+v", v)
		}
		if st := b.sim.Stats(); st.StatusReadsPerTask[id] != 2 || st.Succeeded != 1 || st.Created != 1 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("status-bad-result", func(t *testing.T) {
		b := setup(t, Config{})
		id := b.create(t, promptBody(t, "x [sim:status-bad-result]", 4))
		if v := b.status(t, id); v.State != "pending" || v.ResultJSON != "" {
			t.Fatalf("running: %+v", v)
		}
		b.clock.Advance(2 * time.Minute)
		v := b.status(t, id)
		if v.State != "success" || v.ResultJSON == "" || json.Valid([]byte(v.ResultJSON)) {
			t.Fatalf("ended: %+v", v)
		}
		if _, ok := b.sim.FileSHA256(id); !ok {
			t.Fatal("the task has no file")
		}
	})
}

func TestInFlightLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 3})
	for range 3 {
		b.create(t, body(t, nil))
	}
	a := b.do(t, "POST", createPath, testKey, body(t, nil))
	if a.status != 429 || a.Code != 429 {
		t.Fatalf("4th create: %d %s", a.status, a.raw)
	}
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 60 || ra > 90 {
		t.Fatalf("Retry-After %q, want the earliest completion (60–90 s)", a.header.Get("Retry-After"))
	}
	st := b.sim.Stats()
	if st.Created != 3 || st.InFlight != 3 || st.PeakInFlight != 3 || st.RateLimited != 1 || st.Count(KindCreate, 429) != 1 {
		t.Fatalf("stats at the limit: %+v", st)
	}
	b.clock.Advance(90 * time.Second)
	b.create(t, body(t, nil))
	b.create(t, body(t, nil))
	st = b.sim.Stats()
	if st.Created != 5 || st.InFlight != 2 || st.PeakInFlight != 3 || st.Succeeded != 3 {
		t.Fatalf("stats after completion: %+v", st)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	t.Run("fake clock", func(t *testing.T) {
		b := setup(t, Config{RequestsPerMinute: 60, Burst: 2}) // 1 per second
		b.create(t, body(t, nil))
		if a := b.do(t, "GET", statusPath("task_nope"), testKey, ""); a.status != 404 {
			t.Fatalf("status within the burst: %d", a.status)
		}
		for _, path := range []string{createPath, statusPath("task_nope")} {
			method := map[bool]string{true: "POST", false: "GET"}[path == createPath]
			a := b.do(t, method, path, testKey, body(t, nil))
			if a.status != 429 || a.Code != 429 || a.header.Get("Retry-After") != "1" {
				t.Fatalf("%s over the limit: %d %v %s", method, a.status, a.header, a.raw)
			}
		}
		b.clock.Advance(time.Second)
		b.create(t, body(t, nil))
		st := b.sim.Stats()
		if st.RateLimited != 2 || st.Count(KindCreate, 429) != 1 || st.Count(KindStatus, 429) != 1 || st.Created != 2 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("slow refill", func(t *testing.T) {
		b := setup(t, Config{RequestsPerMinute: 6, Burst: 1}) // 1 per 10 s
		b.create(t, body(t, nil))
		b.clock.Advance(2 * time.Second)
		a := b.do(t, "POST", createPath, testKey, body(t, nil))
		if a.status != 429 || a.header.Get("Retry-After") != "8" {
			t.Fatalf("got %d Retry-After %q", a.status, a.header.Get("Retry-After"))
		}
	})
	t.Run("real clock", func(t *testing.T) {
		// 60 per simulated minute at 10x = 10/s, burst 1.
		b := setup(t, Config{RequestsPerMinute: 60, TimeScale: 10, Now: time.Now})
		ok, limited := 0, 0
		for range 60 {
			a := b.do(t, "GET", statusPath("task_nope"), testKey, "")
			switch a.status {
			case 404:
				ok++
			case 429:
				limited++
				if a.header.Get("Retry-After") != "1" {
					t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
				}
			default:
				t.Fatalf("got %d", a.status)
			}
		}
		if limited == 0 || ok == 0 {
			t.Fatalf("ok %d, limited %d", ok, limited)
		}
		if st := b.sim.Stats(); st.RateLimited != limited {
			t.Fatalf("RateLimited %d, want %d", st.RateLimited, limited)
		}
	})
}

func TestCreatedAccounting(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.create(t, promptBody(t, "prompt one", 4))
	b.create(t, promptBody(t, "prompt one", 4))
	b.create(t, promptBody(t, "prompt two", 12))
	st := b.sim.Stats()
	if st.CreatedSeconds != 20 || st.Created != 3 || st.MaxCreatesPerPrompt() != 2 ||
		st.CreatedPerPrompt["prompt one"] != 2 || st.CreatedPerPrompt["prompt two"] != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// Stats are copies.
	st.CreatedPerPrompt["prompt one"] = 99
	st.Requests[KindCreate][200] = 99
	if again := b.sim.Stats(); again.CreatedPerPrompt["prompt one"] != 2 || again.Count(KindCreate, 200) != 3 {
		t.Fatalf("Stats shares state: %+v", again)
	}
	if (Stats{}).MaxCreatesPerPrompt() != 0 || (Stats{}).Count(KindFile, 200) != 0 {
		t.Fatal("zero Stats")
	}
}

func TestStatsEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	id := b.create(t, promptBody(t, "one prompt", 8))
	b.clock.Advance(2 * time.Minute)
	b.status(t, id)
	a := b.do(t, "GET", "/sim/stats", "", "") // no key needed
	if a.status != 200 {
		t.Fatalf("got %d %s", a.status, a.raw)
	}
	var got Stats
	if err := json.Unmarshal(a.raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Created != 1 || got.Succeeded != 1 || got.CreatedSeconds != 8 || got.PeakInFlight != 1 ||
		got.CreatedPerPrompt["one prompt"] != 1 || got.Count(KindStatus, 200) != 1 || got.Count(KindCreate, 200) != 1 {
		t.Fatalf("stats JSON: %s", a.raw)
	}
	if got.StatusReadsPerTask[id] != 1 || got.Callbacks.DroppedTasks == nil {
		t.Fatalf("stats JSON: %s", a.raw)
	}
	for _, key := range []string{`"requests"`, `"rate_limited"`, `"in_flight"`, `"peak_in_flight"`, `"created_per_prompt"`,
		`"created_seconds"`, `"status_reads_per_task"`, `"callbacks"`, `"dropped_tasks"`, `"abandoned"`} {
		if !bytes.Contains(a.raw, []byte(key)) {
			t.Errorf("stats JSON lacks %s: %s", key, a.raw)
		}
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 50, Now: time.Now, TimeScale: 1000, RequestsPerMinute: 1 << 30})
	// send returns the HTTP status and body of one request; safe off the test goroutine.
	send := func(method, path, body string) (int, []byte, error) {
		req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := b.srv.Client().Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp.StatusCode, raw, err
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				code, raw, err := send("POST", createPath, promptBody(t, "p"+strconv.Itoa(g)+"-"+strconv.Itoa(i), 4))
				if err != nil || (code != 200 && code != 429) {
					t.Errorf("create: %d %s %v", code, raw, err)
					return
				}
				if code == 200 {
					var a struct {
						Data struct {
							TaskID string `json:"taskId"`
						} `json:"data"`
					}
					json.Unmarshal(raw, &a)
					if code, raw, err := send("GET", statusPath(a.Data.TaskID), ""); err != nil || code != 200 {
						t.Errorf("status: %d %s %v", code, raw, err)
						return
					}
				}
				b.sim.Stats()
			}
		})
	}
	wg.Wait()
	st := b.sim.Stats()
	if st.Created+st.RateLimited != 160 || st.PeakInFlight > 50 || st.Count(KindStatus, 200) != st.Created {
		t.Fatalf("stats: %+v", st)
	}
}

func BenchmarkCreateStatus(b *testing.B) {
	bb := setup(b, Config{Now: time.Now, TimeScale: 1000, RequestsPerMinute: 1 << 30, MaxInFlight: 1 << 30})
	create := body(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		id := bb.create(b, create)
		bb.status(b, id)
	}
}

func TestAdoptUnknown(t *testing.T) {
	t.Parallel()
	for _, adopt := range []bool{false, true} {
		s, err := New(Config{APIKey: "k", TimeScale: 1000, AdoptUnknown: adopt})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/statusTask/seedance-1-5-pro?taskId=task_0123456789abcdef", nil)
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusNotFound
		if adopt {
			want = http.StatusOK
		}
		if resp.StatusCode != want || s.Stats().Adopted != map[bool]int{false: 0, true: 1}[adopt] {
			t.Errorf("adopt=%v: status %d, adopted %d", adopt, resp.StatusCode, s.Stats().Adopted)
		}
		srv.Close()
		s.Close()
	}
}

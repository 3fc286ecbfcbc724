package sim

import (
	"container/heap"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Markers recognised in prompts and image URLs; see the package doc.
const (
	// MarkerContentViolation in a prompt makes the task fail with CONTENT_VIOLATION.
	MarkerContentViolation = "[sim:content-violation]"
	// MarkerInvalidImage in an image URL makes the task fail with INVALID_IMAGE_URL.
	MarkerInvalidImage = "sim-invalid-image"
	// MarkerReject in a prompt makes the create answer 400.
	MarkerReject = "[sim:reject]"
	// MarkerCreate500 in a prompt makes the first two creates of that prompt answer 500.
	MarkerCreate500 = "[sim:create-500]"
	// MarkerCreateLost in a prompt creates the task and drops the connection unanswered.
	MarkerCreateLost = "[sim:create-lost]"
	// MarkerCreate502 in a prompt creates the task and answers 502 with an HTML body.
	MarkerCreate502 = "[sim:create-502]"
	// MarkerCreateNoID in a prompt creates the task and answers 200 without its id.
	MarkerCreateNoID = "[sim:create-no-id]"
	// MarkerCreate500Created in a prompt creates the task and answers 500
	// with the provider's JSON error body.
	MarkerCreate500Created = "[sim:create-500-created]"
	// MarkerCreateCode500 in a prompt creates the task and answers HTTP 200
	// with the body {"code":500,...}.
	MarkerCreateCode500 = "[sim:create-code-500]"
	// MarkerStatus500 in a prompt makes the first two status reads of the task answer 500.
	MarkerStatus500 = "[sim:status-500]"
	// MarkerEchoCreate in a prompt makes the create answer 400 with a message
	// that repeats the request's credentials and callback URL.
	MarkerEchoCreate = "[sim:echo-create]"
	// MarkerEchoStatus in a prompt makes the first status read of the task
	// answer 500 with a message that repeats the request's credentials and
	// the task's callback URL.
	MarkerEchoStatus = "[sim:echo-status]"
	// MarkerStatusUnknownState in a prompt makes every status read (and the
	// callback) of the task report the state UnknownState.
	MarkerStatusUnknownState = "[sim:status-unknown-state]"
	// MarkerStatusBadResult in a prompt makes the task's success carry a
	// resultJson that is not JSON.
	MarkerStatusBadResult = "[sim:status-bad-result]"
)

// UnknownState is the state [sim:status-unknown-state] reports: not one of
// the provider's four.
const UnknownState = "queued_v2"

// badResultJSON is the resultJson of a success under [sim:status-bad-result].
const badResultJSON = `{"resultUrls":["`

// markerErrors is how many answers [sim:create-500] and [sim:status-500]
// turn into 500s before answering normally.
const markerErrors = 2

// maxBodyBytes bounds the size of a create body.
const maxBodyBytes = 1 << 20

// Provider answer messages.
const (
	msgUnauthorized = "Invalid or missing API key"
	msgRateLimited  = "rate limit exceeded"
	msgInFlight     = "too many tasks in flight"
	msgInternal     = "internal error"
	msgNotFound     = "task not found"
)

// Sim simulates the provider. It is an http.Handler safe for concurrent use;
// create it with New.
type Sim struct {
	cfg Config
	mux *http.ServeMux
	key atomic.Pointer[string]
	// accounts are the keys accepted, each with its limits: the first is
	// DefaultAccount (key), then Config.Accounts.
	accounts []*account

	mu        sync.Mutex
	rng       *mrand.Rand
	tasks     map[string]*task
	inflight  taskHeap
	create500 map[string]int // prompt -> 500 answers given for [sim:create-500]
	faults    Faults
	stats     Stats
	spans     []span // one per created task, in creation order
	closed    bool   // Close was called: no delivery starts any more

	// generation draws a task's generation time (at TimeScale 1) from the
	// provider's range for its duration; tests replace it before the
	// first create.
	generation func(bounds [2]time.Duration) time.Duration

	closing    chan struct{}  // closed by Close: waits between attempts end
	deliveries sync.WaitGroup // delivery goroutines
}

// New returns a simulator configured by cfg, with defaults applied to zero
// fields. The error names the first invalid field.
func New(cfg Config) (*Sim, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	accounts := []*account{newAccount(DefaultAccount, "", cfg.RequestsPerMinute, cfg.Burst, cfg.MaxInFlight, cfg.TimeScale)}
	for _, a := range cfg.Accounts {
		accounts = append(accounts, newAccount(a.Name, a.APIKey, a.RequestsPerMinute, a.Burst, a.MaxInFlight, cfg.TimeScale))
	}
	s := &Sim{
		cfg:       cfg,
		mux:       http.NewServeMux(),
		accounts:  accounts,
		rng:       mrand.New(mrand.NewPCG(uint64(cfg.Seed), 0x5eedba7c4)),
		tasks:     make(map[string]*task),
		create500: make(map[string]int),
		faults:    cfg.Faults,
		stats: Stats{
			Requests:           make(map[string]map[int]int),
			CreatedPerPrompt:   make(map[string]int),
			StatusReadsPerTask: make(map[string]int),
			Faults:             make(map[string]int),
		},
		closing: make(chan struct{}),
	}
	s.generation = s.drawGeneration
	s.SetAPIKey(cfg.APIKey)
	s.mux.HandleFunc("POST /api/v1/generateTask/seedance-1-5-pro", s.handleCreate)
	s.mux.HandleFunc("GET /api/v1/statusTask/seedance-1-5-pro", s.handleStatus)
	s.mux.HandleFunc("GET /files/{file}", s.handleFile)
	s.mux.HandleFunc("GET /sim/stats", s.handleStats)
	s.mux.HandleFunc("GET /sim/faults", s.handleGetFaults)
	s.mux.HandleFunc("PUT /sim/faults", s.handlePutFaults)
	s.mux.HandleFunc("POST /sim/unstick", s.handleUnstick)
	return s, nil
}

// ServeHTTP serves the provider endpoints, the result files and the /sim/
// routes.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetAPIKey changes the bearer key the provider endpoints accept.
func (s *Sim) SetAPIKey(key string) {
	s.key.Store(&key)
}

// Stats returns a copy of the simulator's counters, with tasks complete by
// now counted as ended.
func (s *Sim) Stats() Stats {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(now)
	st := s.stats.clone()
	st.Accounts = make(map[string]AccountStats, len(s.accounts))
	for _, a := range s.accounts {
		st.Accounts[a.name] = a.stats
	}
	st.derive(s.spans, s.cfg.MaxInFlight, now, s.cfg.TimeScale)
	return st
}

// FileSHA256 returns the hex SHA-256 of the result file served for taskID.
// It reports false when no such task exists or the task fails (and so never
// has a file); the hash of a task still running is already known.
func (s *Sim) FileSHA256(taskID string) (string, bool) {
	s.mu.Lock()
	t := s.tasks[taskID]
	ok := t != nil && t.failCode == ""
	s.mu.Unlock()
	if !ok {
		return "", false
	}
	sum := sha256.Sum256(s.fileBytes(taskID))
	return hex.EncodeToString(sum[:]), true
}

// envelope is the provider's JSON answer.
type envelope struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// taskView is the "data" of a status answer.
type taskView struct {
	TaskID       string `json:"taskId"`
	State        string `json:"state"`
	ResultJSON   string `json:"resultJson,omitempty"`
	FailCode     string `json:"failCode,omitempty"`
	FailMsg      string `json:"failMsg,omitempty"`
	CreateTime   int64  `json:"createTime"`
	CompleteTime *int64 `json:"completeTime,omitempty"`
	CostTime     *int64 `json:"costTime,omitempty"`
}

func (s *Sim) handleCreate(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	acct := s.admit(w, r, KindCreate, now)
	if acct == nil {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		s.answer(w, KindCreate, http.StatusBadRequest, "cannot read request body: "+err.Error())
		return
	}
	var req createRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.answer(w, KindCreate, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	if msg := req.validate(); msg != "" {
		s.answer(w, KindCreate, http.StatusBadRequest, msg)
		return
	}
	prompt := req.Input.Prompt
	if strings.Contains(prompt, MarkerEchoCreate) {
		s.answer(w, KindCreate, http.StatusBadRequest, echo(r, req.CallbackURL))
		return
	}
	if strings.Contains(prompt, MarkerReject) {
		s.answer(w, KindCreate, http.StatusBadRequest, "input.prompt was rejected by the provider")
		return
	}

	s.mu.Lock()
	s.advance(now)
	if strings.Contains(prompt, MarkerCreate500) && s.create500[prompt] < markerErrors {
		s.create500[prompt]++
		s.countLocked(KindCreate, http.StatusInternalServerError)
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, envelope{Code: 500, Message: msgInternal})
		return
	}
	fault := ""
	if !hasCreateMarker(prompt) {
		fault = s.drawLocked(s.faults.createRates())
	}
	switch fault {
	case FaultCreate500, FaultCreateSlow, FaultCreateDropped:
		status := http.StatusInternalServerError
		if fault == FaultCreateDropped {
			status = StatusLost
		}
		s.countLocked(KindCreate, status)
		s.faultLocked(fault, prompt, nil)
		delay := s.faults.SlowDelay
		s.mu.Unlock()
		switch {
		case fault == FaultCreateDropped:
			dropConnection(w)
		case fault == FaultCreateSlow && !s.hold(r, delay):
		default:
			writeJSON(w, http.StatusInternalServerError, envelope{Code: 500, Message: msgInternal})
		}
		return
	}
	if acct.stats.InFlight >= acct.maxInFlight {
		wait := time.Second
		if t := s.firstEndLocked(acct); t != nil && !t.stuck {
			wait = t.complete.Sub(now)
		}
		s.countLocked(KindCreate, http.StatusTooManyRequests)
		s.stats.RateLimited++
		acct.stats.RateLimited++
		s.mu.Unlock()
		tooMany(w, msgInFlight, wait.Seconds())
		return
	}
	t := s.createLocked(now, acct, &req, baseURL(r))
	status := http.StatusOK
	switch {
	case strings.Contains(prompt, MarkerCreateLost), fault == FaultCreateDroppedCreated:
		status = StatusLost
	case strings.Contains(prompt, MarkerCreate502), fault == FaultCreate502Created:
		status = http.StatusBadGateway
	case strings.Contains(prompt, MarkerCreate500Created), fault == FaultCreate500Created:
		status = http.StatusInternalServerError
	}
	s.countLocked(KindCreate, status)
	if fault != "" {
		s.faultLocked(fault, prompt, t)
	}
	delay := s.faults.SlowDelay
	s.mu.Unlock()

	if fault == FaultCreateSlowCreated && !s.hold(r, delay) {
		return
	}
	switch {
	case status == StatusLost:
		dropConnection(w)
	case status == http.StatusBadGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>Bad Gateway</html>")
	case status == http.StatusInternalServerError:
		writeJSON(w, http.StatusInternalServerError, envelope{Code: 500, Message: msgInternal})
	case strings.Contains(prompt, MarkerCreateCode500):
		writeJSON(w, http.StatusOK, envelope{Code: 500, Message: msgInternal})
	case strings.Contains(prompt, MarkerCreateNoID):
		writeJSON(w, http.StatusOK, envelope{Code: 200, Message: "success", Data: struct{}{}})
	default:
		writeJSON(w, http.StatusOK, envelope{Code: 200, Message: "success",
			Data: struct {
				TaskID string `json:"taskId"`
			}{t.id}})
	}
}

func (s *Sim) handleStatus(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	acct := s.admit(w, r, KindStatus, now)
	if acct == nil {
		return
	}
	id := r.URL.Query().Get("taskId")
	if id == "" {
		s.answer(w, KindStatus, http.StatusBadRequest, "taskId is required")
		return
	}
	s.mu.Lock()
	s.advance(now)
	t := s.tasks[id]
	if t == nil && s.cfg.AdoptUnknown && strings.HasPrefix(id, "task_") && len(id) <= 64 {
		t = s.adoptLocked(now, acct, id)
	}
	switch {
	case t == nil:
		s.countLocked(KindStatus, http.StatusNotFound)
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, envelope{Code: 404, Message: msgNotFound})
		return
	case t.echoStatus:
		t.echoStatus = false
		s.countLocked(KindStatus, http.StatusInternalServerError)
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, envelope{Code: 500, Message: echo(r, t.callbackURL)})
		return
	case t.statusErrors > 0:
		t.statusErrors--
		s.countLocked(KindStatus, http.StatusInternalServerError)
		s.mu.Unlock()
		writeJSON(w, http.StatusInternalServerError, envelope{Code: 500, Message: msgInternal})
		return
	}
	fault := s.drawLocked(s.faults.statusRates())
	v := t.view(now, fileURL(r, t.id))
	if fault == FaultStatusUnknownState {
		v.State = UnknownState
	}
	ended := v.State == stateSuccess || v.State == stateFailed
	if ended && fault == "" {
		s.noticeLocked(t, now)
	}
	s.countLocked(KindStatus, http.StatusOK)
	s.stats.StatusReadsPerTask[t.id]++
	if fault != "" {
		s.faultLocked(fault, "", nil)
	}
	delay := s.faults.SlowDelay
	s.mu.Unlock()

	answer := envelope{Code: 200, Message: "success", Data: v}
	switch fault {
	case FaultStatusTruncated:
		writeTruncated(w, answer)
		return
	case FaultStatusSlow:
		if !s.hold(r, delay) {
			return
		}
	}
	writeJSON(w, http.StatusOK, answer)
	if ended && fault == FaultStatusSlow { // the client learns it only now
		s.mu.Lock()
		s.noticeLocked(t, s.cfg.Now())
		s.mu.Unlock()
	}
}

func (s *Sim) handleFile(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	id, ok := strings.CutSuffix(r.PathValue("file"), ".mp4")
	s.mu.Lock()
	s.advance(now)
	if ok {
		t := s.tasks[id]
		ok = t != nil && t.done && t.failCode == ""
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusNotFound
	}
	s.countLocked(KindFile, status)
	s.mu.Unlock()

	if !ok {
		http.NotFound(w, r)
		return
	}
	data := s.fileBytes(id)
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

func (s *Sim) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// admit checks the bearer key and takes a request token of its account,
// answering 401 or 429 itself when the request may not go on; it returns
// the account, or nil when it answered.
func (s *Sim) admit(w http.ResponseWriter, r *http.Request, kind string, now time.Time) *account {
	acct := s.accountOf(r)
	if acct == nil {
		s.answer(w, kind, http.StatusUnauthorized, msgUnauthorized)
		return nil
	}
	s.mu.Lock()
	storm, retryAfter := s.stormLocked(kind)
	s.mu.Unlock()
	if storm {
		if retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, http.StatusTooManyRequests, envelope{Code: 429, Message: msgRateLimited})
		return nil
	}
	if acct.limiter.AllowN(now, 1) {
		return acct
	}
	wait := (1 - acct.limiter.TokensAt(now)) / float64(acct.limiter.Limit())
	s.mu.Lock()
	s.countLocked(kind, http.StatusTooManyRequests)
	s.stats.RateLimited++
	acct.stats.RateLimited++
	s.mu.Unlock()
	tooMany(w, msgRateLimited, wait)
	return nil
}

// authorized reports whether r carries the bearer key of any account.
func (s *Sim) authorized(r *http.Request) bool {
	return s.accountOf(r) != nil
}

// firstEndLocked returns acct's task in flight that ends first, or nil.
// s.mu is held.
func (s *Sim) firstEndLocked(acct *account) *task {
	if len(s.accounts) == 1 {
		if len(s.inflight) == 0 {
			return nil
		}
		return s.inflight[0]
	}
	var first *task
	for _, t := range s.inflight {
		if t.acct == acct && (first == nil || t.complete.Before(first.complete)) {
			first = t
		}
	}
	return first
}

// hasCreateMarker reports whether prompt holds a marker that changes a
// create's answer; such a create gets no random create fault.
func hasCreateMarker(prompt string) bool {
	for _, m := range []string{MarkerCreate500, MarkerCreateLost, MarkerCreate502, MarkerCreateNoID,
		MarkerCreate500Created, MarkerCreateCode500} {
		if strings.Contains(prompt, m) {
			return true
		}
	}
	return false
}

// answer counts and writes a provider error answer.
func (s *Sim) answer(w http.ResponseWriter, kind string, status int, msg string) {
	s.mu.Lock()
	s.countLocked(kind, status)
	s.mu.Unlock()
	writeJSON(w, status, envelope{Code: status, Message: msg})
}

// countLocked counts one answer of kind with HTTP status. s.mu is held.
func (s *Sim) countLocked(kind string, status int) {
	m := s.stats.Requests[kind]
	if m == nil {
		m = make(map[int]int)
		s.stats.Requests[kind] = m
	}
	m[status]++
}

// createLocked creates a task for req at now and counts it; base is the
// scheme and host the create reached (baseURL). s.mu is held.
func (s *Sim) createLocked(now time.Time, acct *account, req *createRequest, base string) *task {
	in := &req.Input
	gen := s.generation(generationRange[in.Duration])
	gen = time.Duration(float64(gen) / s.cfg.TimeScale)
	t := &task{
		id:           s.newIDLocked(),
		acct:         acct,
		created:      now,
		pendingUntil: now.Add(time.Duration(float64(gen) * pendingShare)),
		complete:     now.Add(gen),
	}
	switch {
	case strings.Contains(in.Prompt, MarkerContentViolation):
		t.failCode, t.failMsg = "CONTENT_VIOLATION", "the prompt or an image breaks the content safety rules"
	case slices.ContainsFunc(in.ImageURLs, func(u string) bool { return strings.Contains(u, MarkerInvalidImage) }):
		t.failCode, t.failMsg = "INVALID_IMAGE_URL", "an image URL could not be fetched"
	case s.cfg.FailRate > 0 && s.rng.Float64() < s.cfg.FailRate:
		t.failCode, t.failMsg = "GENERATION_FAILED", "video generation failed, please try again"
	}
	if s.chanceLocked(s.faults.Stuck) {
		t.stuck, t.complete = true, neverComplete
		s.stats.Stuck++
		s.faultLocked(FaultStuck, in.Prompt, t)
	}
	t.prompt = in.Prompt
	if strings.Contains(in.Prompt, MarkerStatus500) {
		t.statusErrors = markerErrors
	}
	t.echoStatus = strings.Contains(in.Prompt, MarkerEchoStatus)
	t.unknownState = strings.Contains(in.Prompt, MarkerStatusUnknownState)
	t.badResult = strings.Contains(in.Prompt, MarkerStatusBadResult)
	if req.RequestType == requestTypeCallback {
		s.setupCallbackLocked(t, now, req.CallbackURL, base+filePath(t.id))
	}
	t.span = len(s.spans)
	s.spans = append(s.spans, span{created: now.UnixNano(), complete: t.complete.UnixNano()})
	s.tasks[t.id] = t
	heap.Push(&s.inflight, t)
	s.stats.Created++
	s.stats.CreatedPerPrompt[in.Prompt]++
	s.stats.CreatedSeconds += in.Duration
	s.stats.InFlight = len(s.inflight)
	s.stats.PeakInFlight = max(s.stats.PeakInFlight, s.stats.InFlight)
	acct.stats.Created++
	acct.startedLocked()
	s.cfg.Logger.Debug("task_created", slog.String("task_id", t.id),
		slog.Int("duration", in.Duration), slog.Duration("generation", gen),
		slog.String("fail_code", t.failCode))
	return t
}

// drawGeneration draws a generation time uniformly from bounds. s.mu is held.
func (s *Sim) drawGeneration(bounds [2]time.Duration) time.Duration {
	return bounds[0] + time.Duration(s.rng.Int64N(int64(bounds[1]-bounds[0])+1))
}

// adoptLocked starts an unknown task as a 4-second video created at now.
// s.mu is held.
func (s *Sim) adoptLocked(now time.Time, acct *account, id string) *task {
	gen := time.Duration(float64(generationRange[4][0]) / s.cfg.TimeScale)
	t := &task{id: id, acct: acct, created: now, pendingUntil: now, complete: now.Add(gen), span: -1}
	acct.startedLocked()
	s.tasks[id] = t
	heap.Push(&s.inflight, t)
	s.stats.Adopted++
	s.stats.InFlight = len(s.inflight)
	s.stats.PeakInFlight = max(s.stats.PeakInFlight, s.stats.InFlight)
	return t
}

// advance ends every in-flight task complete at now. s.mu is held.
func (s *Sim) advance(now time.Time) {
	for len(s.inflight) > 0 && !s.inflight[0].complete.After(now) {
		t := heap.Pop(&s.inflight).(*task)
		t.done = true
		t.acct.stats.InFlight--
		if t.failCode != "" {
			s.stats.Failed++
		} else {
			s.stats.Succeeded++
		}
		s.cfg.Logger.Debug("task_ended", slog.String("task_id", t.id), slog.String("state", t.state(now)))
		if t.callbackURL != "" {
			s.endCallbackLocked(t, now)
		}
	}
	s.stats.InFlight = len(s.inflight)
}

// newIDLocked returns an unused task id. s.mu is held.
func (s *Sim) newIDLocked() string {
	for {
		var b [12]byte
		rand.Read(b[:])
		id := "task_" + hex.EncodeToString(b[:])
		if _, taken := s.tasks[id]; !taken {
			return id
		}
	}
}

// fileBytes returns the content of the result file of task id:
// pseudo-random bytes seeded by the id.
func (s *Sim) fileBytes(id string) []byte {
	seed := sha256.Sum256([]byte(id))
	data := make([]byte, s.cfg.FileSize)
	mrand.NewChaCha8(seed).Read(data)
	return data
}

// fileURL returns the URL of a task's result file on the server that r reached.
func fileURL(r *http.Request, id string) string {
	return baseURL(r) + filePath(id)
}

// baseURL returns the scheme and host of the server that r reached.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// filePath returns the path of a task's result file.
func filePath(id string) string {
	return "/files/" + id + ".mp4"
}

// resultJSON returns the provider's resultJson string for one URL.
func resultJSON(url string) string {
	b, _ := json.Marshal(struct {
		ResultURLs []string `json:"resultUrls"`
	}{[]string{url}})
	return string(b)
}

// echo is the message of the echo markers: it repeats what a client must
// never store or show.
func echo(r *http.Request, callbackURL string) string {
	return "cannot process request with Authorization " + r.Header.Get("Authorization") + " for callback_url " + callbackURL
}

// tooMany writes a 429 answer whose Retry-After covers wait seconds.
func tooMany(w http.ResponseWriter, msg string, wait float64) {
	secs := 1
	if wait > 1 && !math.IsInf(wait, 0) && !math.IsNaN(wait) {
		secs = int(math.Ceil(min(wait, 24*3600)))
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, envelope{Code: 429, Message: msg})
}

// writeJSON writes v as a JSON answer with HTTP status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// dropConnection closes the client connection without writing an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2 or no hijacking: abort the response
}

package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/seedbatch/seedbatch/internal/redisconn"
	"github.com/seedbatch/seedbatch/worker"
)

// mustLoad loads opts, with an empty environment unless opts gives one.
func mustLoad(t *testing.T, opts Options) Config {
	t.Helper()
	if opts.Env == nil {
		opts.Env = envOf(nil)
	}
	cfg, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yml := "limits:\n  max_in_flight: 300\n  burst: 40\nworker:\n  poll_interval: 8s\nprovider:\n  base_url: http://file.example\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{
		File: file,
		Env: envOf(map[string]string{
			"SEEDBATCH_LIMITS_MAX_IN_FLIGHT":       "200",
			"SEEDANCE_BASE_URL":                    "http://env.example",
			"REDIS_URL":                            "redis://127.0.0.1:1/0",
			"SEEDBATCH_PROVIDER_NOT_CREATED_CODES": "[500, 1001]",
		}),
		Set: []string{"limits.max_in_flight=100"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"flag beats env and file", cfg.Limits.MaxInFlight, 100},
		{"file beats default", cfg.Limits.Burst, 40},
		{"duration from file", cfg.Worker.PollInterval, 8 * time.Second},
		{"env alias beats file", cfg.Provider.BaseURL, "http://env.example"},
		{"REDIS_URL", cfg.Redis.URL, "redis://127.0.0.1:1/0"},
		{"default kept", cfg.Limits.RequestsPerMinute, 9500},
		{"list from env", fmt.Sprint(cfg.Provider.NotCreatedCodes), "[500 1001]"},
		{"worker's own default", cfg.Worker.MaxUnreadable, worker.MaxUnreadableDefault},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("limits:\n  max_in_fligth: 3\n"), 0o600)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"negative limit", Options{Set: []string{"limits.max_in_flight=-1"}}, "limits.max_in_flight"},
		{"reserve above burst", Options{Set: []string{"limits.create_reserve=60"}}, "limits.create_reserve"},
		{"bad redis url", Options{Env: envOf(map[string]string{"REDIS_URL": "localhost:6379"})}, "redis.url"},
		{"sentinel without master", Options{Env: envOf(map[string]string{"REDIS_SENTINEL_ADDRS": "127.0.0.1:26379"})}, "redis.master_name"},
		{"master without sentinels", Options{Env: envOf(map[string]string{"REDIS_MASTER_NAME": "seedbatch"})}, "redis.sentinel_addrs"},
		{"sentinel and cluster", Options{Env: envOf(map[string]string{"REDIS_MASTER_NAME": "m", "REDIS_SENTINEL_ADDRS": "a:1",
			"REDIS_CLUSTER_ADDRS": "b:2"})}, "redis.cluster_addrs"},
		{"url and cluster", Options{Env: envOf(map[string]string{"REDIS_URL": "redis://a:1", "REDIS_CLUSTER_ADDRS": "b:2"})}, "redis.url"},
		{"cluster address without port", Options{Set: []string{"redis.cluster_addrs=10.0.0.1"}}, "redis.cluster_addrs"},
		{"password with a url", Options{Env: envOf(map[string]string{"REDIS_URL": "redis://a:1", "REDIS_PASSWORD": "pw"})}, "redis.password"},
		{"sentinel password without sentinels", Options{Env: envOf(map[string]string{"REDIS_CLUSTER_ADDRS": "b:2",
			"REDIS_SENTINEL_PASSWORD": "pw"})}, "redis.sentinel_password"},
		{"bad env value", Options{Env: envOf(map[string]string{"SEEDBATCH_WORKER_POLL_INTERVAL": "soon"})}, "SEEDBATCH_WORKER_POLL_INTERVAL"},
		{"unknown setting", Options{Set: []string{"limits.nope=1"}}, "limits.nope"},
		{"setting without value", Options{Set: []string{"limits.burst"}}, "section.field=value"},
		{"unknown yaml field", Options{File: bad}, "max_in_fligth"},
		{"missing explicit file", Options{File: filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"bad default duration", Options{Set: []string{"defaults.duration=5"}}, "defaults"},
		{"bad log format", Options{Set: []string{"log.format=xml"}}, "log.format"},
		{"allowed host with a scheme", Options{Set: []string{"dashboard.allowed_hosts=https://dash.example.com"}}, "dashboard.allowed_hosts"},
		{"allowed host with a wildcard", Options{Env: envOf(map[string]string{"SEEDBATCH_CALLBACK_ALLOWED_HOSTS": "ok.example,*.example"})}, "callback.allowed_hosts"},
		{"negative import settle", Options{Set: []string{"schedule.import_settle=-1s"}}, "schedule.import_settle"},
		{"not created code that is no error", Options{Set: []string{"provider.not_created_codes=[500, 200]"}}, "provider.not_created_codes"},
		{"no unreadable answer allowed", Options{Set: []string{"worker.max_unreadable=0"}}, "worker.max_unreadable"},
		{"negative simulator burst", Options{Set: []string{"sim.burst=-1"}}, "sim.burst"},
		{"no simulator address", Options{Set: []string{"sim.listen="}}, "sim.listen"},
		{"worker listen without a port", Options{Set: []string{"worker.listen=127.0.0.1"}}, "worker.listen"},
		{"worker listen with a named port", Options{Env: envOf(map[string]string{"SEEDBATCH_WORKER_LISTEN": "127.0.0.1:http"})}, "worker.listen"},
		{"worker allowed host with a path", Options{Set: []string{"worker.allowed_hosts=prom.example/metrics"}}, "worker.allowed_hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Env == nil {
				tt.opts.Env = envOf(nil)
			}
			_, err := Load(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
	var fe *SettingError
	_, err := Load(Options{Env: envOf(nil), Set: []string{"limits.burst=0"}})
	if !errors.As(err, &fe) || fe.Field != "limits.burst" {
		t.Fatalf("want a *SettingError for limits.burst, got %v", err)
	}
}

func TestAllowedHostsLists(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("callback:\n  allowed_hosts: [hooks.example.com, \"[2001:db8::1]\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		dash []string
		cb   []string
	}{
		{"default", Options{}, nil, nil},
		{"file", Options{File: file}, nil, []string{"hooks.example.com", "[2001:db8::1]"}},
		{"env, comma-separated", Options{Env: envOf(map[string]string{"SEEDBATCH_DASHBOARD_ALLOWED_HOSTS": "dash.example.com, 192.0.2.7:8080,"})},
			[]string{"dash.example.com", "192.0.2.7:8080"}, nil},
		{"set, YAML list", Options{Set: []string{"dashboard.allowed_hosts=[a.example, b.example]"}}, []string{"a.example", "b.example"}, nil},
		{"set, one name", Options{Set: []string{"dashboard.allowed_hosts=a.example"}}, []string{"a.example"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.opts)
			if fmt.Sprint(cfg.Dashboard.AllowedHosts) != fmt.Sprint(tt.dash) || fmt.Sprint(cfg.Callback.AllowedHosts) != fmt.Sprint(tt.cb) {
				t.Errorf("dashboard %q, callback %q; want %q and %q", cfg.Dashboard.AllowedHosts, cfg.Callback.AllowedHosts, tt.dash, tt.cb)
			}
		})
	}
}

func TestImportSettle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  []string
		want time.Duration
	}{
		{"default", nil, 10 * time.Second},
		{"longer", []string{"schedule.import_settle=2m"}, 2 * time.Minute},
		{"off", []string{"schedule.import_settle=0s"}, 0},
	}
	for _, tt := range tests {
		cfg, err := Load(Options{Env: envOf(nil), Set: tt.set})
		if err != nil || cfg.Schedule.ImportSettle != tt.want {
			t.Errorf("%s: import_settle = %v, %v; want %v", tt.name, cfg.Schedule.ImportSettle, err, tt.want)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const canary = "sk-canary-4242"
	cfg, err := Load(Options{Env: envOf(map[string]string{"SEEDANCE_API_KEY": canary, "SEEDBATCH_CALLBACK_SECRET": canary + "-cb"})})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider.APIKey.Reveal() != canary || cfg.Callback.Secret.Reveal() != canary+"-cb" {
		t.Fatal("secrets not loaded")
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "key", cfg.Provider.APIKey, "provider", cfg.Provider)
	js, _ := json.Marshal(cfg)
	outputs := map[string]string{
		"dump": cfg.Dump(), "%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg),
		"%#v": fmt.Sprintf("%#v", cfg), "json": string(js), "slog": logs.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, canary) {
			t.Errorf("%s shows the key: %s", name, out)
		}
	}
	if !strings.Contains(cfg.Dump(), Redacted) {
		t.Errorf("dump does not say the key is set:\n%s", cfg.Dump())
	}
}

func TestPathsCoverEveryField(t *testing.T) {
	paths := Paths()
	for _, want := range []string{"redis.url", "provider.api_key", "limits.lease_ttl", "worker.time_scale", "defaults.duration", "out_dir", "log.format"} {
		found := false
		for _, p := range paths {
			found = found || p == want
		}
		if !found {
			t.Errorf("Paths() lacks %s", want)
		}
	}
}

func TestDumpHidesRedisPassword(t *testing.T) {
	cfg, err := Load(Options{Env: envOf(map[string]string{"REDIS_URL": "redis://:hunter2@db.internal:6379/0"})})
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Dump(); strings.Contains(d, "hunter2") || !strings.Contains(d, "redis://***@db.internal:6379/0") {
		t.Errorf("dump:\n%s", d)
	}
}

func TestRedisModes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		mode string
		hide []string
	}{
		{"none", nil, "", nil},
		{"single", map[string]string{"REDIS_URL": "redis://:pw1@h:6379/0"}, redisconn.ModeSingle, []string{"pw1"}},
		{"sentinel", map[string]string{"REDIS_MASTER_NAME": "seedbatch", "REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379",
			"REDIS_SENTINEL_PASSWORD": "spw2", "REDIS_USERNAME": "app", "REDIS_PASSWORD": "rpw3"}, redisconn.ModeSentinel, []string{"spw2", "rpw3"}},
		{"cluster", map[string]string{"REDIS_CLUSTER_ADDRS": "c1:7000,c2:7000", "REDIS_PASSWORD": "rpw4"}, redisconn.ModeCluster, []string{"rpw4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(Options{Env: envOf(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			if m := cfg.Redis.Conn().Mode(); m != tc.mode || cfg.Redis.Configured() != (tc.mode != "") {
				t.Fatalf("mode %q (configured %v), want %q", m, cfg.Redis.Configured(), tc.mode)
			}
			if tc.mode == redisconn.ModeSentinel && (len(cfg.Redis.SentinelAddrs) != 2 || cfg.Redis.SentinelAddrs[1] != "s2:26379") {
				t.Errorf("sentinel addresses %q", cfg.Redis.SentinelAddrs)
			}
			shown := cfg.Dump() + cfg.Redis.Describe()
			for _, pw := range tc.hide {
				if strings.Contains(shown, pw) {
					t.Errorf("%s shown:\n%s", pw, shown)
				}
				if !slices.Contains(cfg.Secrets(), pw) {
					t.Errorf("Secrets() lacks %s", pw)
				}
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.Provider.APIKey = "sk-live-abcdef"
	cfg.Callback.Secret = "cb-secret-123"
	cfg.Dashboard.Token = "dash-token-9"
	cfg.Redis.URL = "redis://:redis-pass-7@host:6379/0"
	got := strings.Join(cfg.Secrets(), ",")
	for _, want := range []string{"sk-live-abcdef", "cb-secret-123", "dash-token-9", "redis-pass-7"} {
		if !strings.Contains(got, want) {
			t.Errorf("Secrets() = %q misses %q", got, want)
		}
	}
	if n := len(Default().Secrets()); n != 0 {
		t.Errorf("the defaults have %d secrets", n)
	}
}

func TestDownloadHosts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yml := "download:\n  allow_private_hosts: true\n  allowed_hosts: [\"*.cdn.example.com\", videos.example.org]\n"
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		opts         Options
		allowPrivate bool
		hosts        []string
	}{
		{"defaults", Options{}, false, nil},
		{"file", Options{File: file}, true, []string{"*.cdn.example.com", "videos.example.org"}},
		{"env, comma-separated", Options{Env: envOf(map[string]string{
			"SEEDBATCH_DOWNLOAD_ALLOWED_HOSTS":       " *.cdn.example.com, videos.example.org ,",
			"SEEDBATCH_DOWNLOAD_ALLOW_PRIVATE_HOSTS": "true",
		})}, true, []string{"*.cdn.example.com", "videos.example.org"}},
		{"set, YAML list", Options{Set: []string{`download.allowed_hosts=["*.a.example", b.example]`}}, false, []string{"*.a.example", "b.example"}},
		{"set, empty", Options{File: file, Set: []string{"download.allowed_hosts="}}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.opts)
			if cfg.Download.AllowPrivateHosts != tt.allowPrivate {
				t.Errorf("allow_private_hosts = %v, want %v", cfg.Download.AllowPrivateHosts, tt.allowPrivate)
			}
			if fmt.Sprint(cfg.Download.AllowedHosts) != fmt.Sprint(tt.hosts) {
				t.Errorf("allowed_hosts = %q, want %q", cfg.Download.AllowedHosts, tt.hosts)
			}
		})
	}
}

func TestDownloadHostsValidated(t *testing.T) {
	for _, bad := range []string{"https://cdn.example.com", "cdn.example.com:443", "*", "cdn.*.example.com", "cdn.example.com/videos"} {
		t.Run(bad, func(t *testing.T) {
			_, err := Load(Options{Env: envOf(nil), Set: []string{"download.allowed_hosts=ok.example.com," + bad}})
			var fe *SettingError
			if !errors.As(err, &fe) || fe.Field != "download.allowed_hosts[1]" {
				t.Errorf("Load error %v, want a *SettingError for download.allowed_hosts[1]", err)
			}
		})
	}
}

// fieldYAML is the value Set takes to give the field at path the value it
// has in c: the text itself for strings, YAML for the rest.
func fieldYAML(t *testing.T, c *Config, path string) string {
	t.Helper()
	var field reflect.Value
	walk(reflect.TypeOf(*c), "", func(p string, idx []int) {
		if p == path {
			field = reflect.ValueOf(c).Elem().FieldByIndex(idx)
		}
	})
	if field.Kind() == reflect.String {
		return field.String()
	}
	b, err := yaml.Marshal(field.Interface())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// FuzzConfigSet checks that Set either fails and changes nothing, or leaves
// a config that dumps; and that setting a field to the YAML of its value
// changes nothing.
func FuzzConfigSet(f *testing.F) {
	f.Add("limits.max_in_flight", "200", uint8(0))
	f.Add("worker.poll_interval", "8s", uint8(1))
	f.Add("worker.time_scale", ".nan", uint8(2))
	f.Add("prices", "{480p: 0.02, 720p: 0.05}", uint8(3))
	f.Add("schedule.entries", `[{cron: "@every 1m", task: import}]`, uint8(4))
	f.Add("schedule.entries", "&a [*a]", uint8(5))
	f.Add("callback.confirm", "yes", uint8(6))
	f.Add("redis.url", "redis://:secret@host:6379/0", uint8(7))
	f.Add("limits", "{burst: 1}", uint8(8))
	f.Add("limits.burst", "", uint8(9))
	f.Add("defaults.duration", "1e100", uint8(10))
	paths := Paths()
	secret := reflect.TypeOf(Secret(""))
	f.Fuzz(func(t *testing.T, path, value string, pick uint8) {
		c := Default()
		if err := c.Set(path, value); err != nil {
			if !reflect.DeepEqual(c, Default()) {
				t.Fatalf("Set(%q, %q) failed (%v) yet changed the config", path, value, err)
			}
		}
		dump := c.Dump()
		if strings.HasPrefix(dump, "# ") {
			t.Fatalf("after Set(%q, %q): Dump: %s", path, value, dump)
		}
		for _, p := range []string{path, paths[int(pick)%len(paths)]} {
			var index []int
			walk(reflect.TypeOf(c), "", func(q string, idx []int) {
				if q == p {
					index = idx
				}
			})
			if index == nil || reflect.TypeOf(c).FieldByIndex(index).Type == secret {
				continue // unknown, or a secret, which YAML never shows
			}
			again := c // Set replaces a map or slice field whole
			v := fieldYAML(t, &c, p)
			if err := again.Set(p, v); err != nil {
				t.Fatalf("after Set(%q, %q): Set(%q, its own value %q): %v", path, value, p, v, err)
			}
			if got := again.Dump(); got != dump {
				t.Fatalf("after Set(%q, %q): Set(%q, its own value %q) changed the config:\n%s\nwant:\n%s", path, value, p, v, got, dump)
			}
		}
	})
}

func TestWorkerListen(t *testing.T) {
	t.Parallel()
	if cfg := mustLoad(t, Options{}); cfg.Worker.Listen != "" {
		t.Errorf("worker.listen defaults to %q, want empty (off)", cfg.Worker.Listen)
	}
	cfg := mustLoad(t, Options{Env: envOf(map[string]string{"SEEDBATCH_WORKER_LISTEN": ":9090",
		"SEEDBATCH_WORKER_ALLOWED_HOSTS": "worker-1.internal,10.0.0.7"})})
	if cfg.Worker.Listen != ":9090" || fmt.Sprint(cfg.Worker.AllowedHosts) != "[worker-1.internal 10.0.0.7]" {
		t.Errorf("worker.listen %q, allowed_hosts %v", cfg.Worker.Listen, cfg.Worker.AllowedHosts)
	}
}

// TestPrices sets prices the ways the README and the validator name them.
func TestPrices(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want map[string]float64
		err  string
	}{
		{"--set one price", Options{Set: []string{"prices.720p=0.05"}}, map[string]float64{"720p": 0.05}, ""},
		{"environment, one price", Options{Env: envOf(map[string]string{"SEEDBATCH_PRICES_720P": "0.05"})}, map[string]float64{"720p": 0.05}, ""},
		{"environment, both", Options{Env: envOf(map[string]string{"SEEDBATCH_PRICES_480P": "0.02", "SEEDBATCH_PRICES_720P": "0.05"})},
			map[string]float64{"480p": 0.02, "720p": 0.05}, ""},
		{"one price over the map", Options{Env: envOf(map[string]string{"SEEDBATCH_PRICES": "{480p: 0.02, 720p: 0.05}"}),
			Set: []string{"prices.720p=0.07"}}, map[string]float64{"480p": 0.02, "720p": 0.07}, ""},
		{"upper case", Options{Set: []string{"prices.720P=0.05"}}, map[string]float64{"720p": 0.05}, ""},
		{"unknown resolution", Options{Set: []string{"prices.1080p=0.1"}}, nil, "prices.1080p: want a resolution (480p or 720p)"},
		{"negative", Options{Env: envOf(map[string]string{"SEEDBATCH_PRICES_480P": "-1"})}, nil, "prices.480p"},
		{"not a number", Options{Set: []string{"prices.480p=cheap"}}, nil, "prices.480p: cannot use \"cheap\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(tt.opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(cfg.Prices, tt.want) {
				t.Errorf("prices %v (err %v), want %v", cfg.Prices, err, tt.want)
			}
		})
	}
	// A copy keeps its own prices.
	a := Default()
	if err := a.Set("prices.480p", "0.02"); err != nil {
		t.Fatal(err)
	}
	b := a
	if err := b.Set("prices.480p", "0.03"); err != nil || a.Prices["480p"] != 0.02 {
		t.Errorf("setting a copy's price changed the original's: %v", a.Prices)
	}
}

// TestUnknownVariables checks that a SEEDBATCH_ variable that sets nothing
// is reported, and none that does.
func TestUnknownVariables(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SEEDBATCH_PRICES_1080P":         "0.1",
		"SEEDBATCH_LIMITS_MAX_INFLIGHT":  "5",
		"SEEDBATCH_PRICES_720P":          "0.05",
		"SEEDBATCH_LIMITS_MAX_IN_FLIGHT": "7",
		"SEEDBATCH_DASHBOARD_TOKEN_FILE": "",
		"SEEDBATCH_TIME_SCALE":           "20",
		"SEEDBATCH_OUT_DIR":              "x",
		"REDIS_URL":                      "",
		"HOME":                           "/home/x",
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var unknown []string
	cfg, err := Load(Options{Env: envOf(env), Environ: func() []string { return environ },
		Unknown: func(name string) { unknown = append(unknown, name) }})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SEEDBATCH_LIMITS_MAX_INFLIGHT", "SEEDBATCH_PRICES_1080P"}; !reflect.DeepEqual(unknown, want) {
		t.Errorf("unknown %v, want %v", unknown, want)
	}
	if cfg.Limits.MaxInFlight != 7 || cfg.Prices["720p"] != 0.05 {
		t.Errorf("known variables not applied: %d, %v", cfg.Limits.MaxInFlight, cfg.Prices)
	}
	// Every variable that names a setting, or its secret file, is known.
	var all []string
	for _, p := range Paths() {
		all = append(all, EnvName(p)+"=1")
	}
	for _, n := range FileVariables() {
		all = append(all, n+"=/x")
	}
	if got := UnknownVariables(all); len(got) != 0 {
		t.Errorf("known variables reported unknown: %v", got)
	}
}

// TestOutDirBucket: out_dir takes a bucket URL of a known form, and run's
// local directory is then state_dir.
func TestOutDirBucket(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, outDir, stateDir string
		field                  string // the field an error names; "" for none
		runDir                 string
	}{
		{"a directory", "videos", "", "", "videos"},
		{"a directory ignores state_dir", "videos", "state", "", "videos"},
		{"s3", "s3://bucket/prefix?region=eu-west-1", "", "", OutDirDefault},
		{"s3 with a state_dir", "s3://bucket", "/var/lib/seedbatch", "", "/var/lib/seedbatch"},
		{"gs", "gs://bucket/p", "", "", OutDirDefault},
		{"azblob", "azblob://container", "", "", OutDirDefault},
		{"file", "file:///srv/videos", "", "", OutDirDefault},
		{"unknown scheme", "ftp://host/videos", "", "out_dir", ""},
		{"no bucket", "s3:///prefix", "", "out_dir", ""},
		{"file without a directory", "file://", "", "out_dir", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set := []string{"out_dir=" + tt.outDir}
			if tt.stateDir != "" {
				set = append(set, "state_dir="+tt.stateDir)
			}
			cfg, err := Load(Options{Env: envOf(nil), Set: set})
			if tt.field != "" {
				var fe *SettingError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("Load error %v, want a *SettingError for %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.RunDir(); got != tt.runDir {
				t.Errorf("RunDir() = %q, want %q", got, tt.runDir)
			}
		})
	}
}

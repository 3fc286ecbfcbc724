package main

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/seedbatch/seedbatch/config"
)

func TestPrivateProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		baseURL string
		want    bool
	}{
		{"http://127.0.0.1:8090", true},
		{"http://localhost:8090", true},
		{"http://[::1]:8090", true},
		{"http://10.0.0.5", true},
		{"http://192.168.1.20:8090/api", true},
		{"https://8.8.8.8", false},
		{"https://[2001:4860:4860::8888]", false},
		{"not a url", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.baseURL, func(t *testing.T) {
			t.Parallel()
			if _, _, got := privateProvider(t.Context(), tt.baseURL); got != tt.want {
				t.Errorf("privateProvider(%q) = %v, want %v", tt.baseURL, got, tt.want)
			}
		})
	}
}

func TestDownloadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		baseURL      string
		builtinSim   bool
		setting      bool // download.allow_private_hosts
		allowPrivate bool
		logged       bool
	}{
		{"public provider", "https://8.8.8.8", false, false, false, false},
		{"public provider, private hosts allowed", "https://8.8.8.8", false, true, true, false},
		{"run's simulator", "http://127.0.0.1:9", true, false, true, false},
		{"provider on loopback", "http://127.0.0.1:8090", false, false, true, true},
		{"provider on a private network", "http://172.20.0.3:8090", false, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Provider.BaseURL = tt.baseURL
			cfg.Download.AllowPrivateHosts = tt.setting
			cfg.Download.AllowedHosts = []string{"*.cdn.example.com"}
			var logs strings.Builder
			s := &stack{cfg: cfg, log: slog.New(slog.NewTextHandler(&logs, nil))}
			got := downloadConfig(t.Context(), s, tt.builtinSim)
			if got.AllowPrivate != tt.allowPrivate {
				t.Errorf("AllowPrivate = %v, want %v", got.AllowPrivate, tt.allowPrivate)
			}
			if got.Dir != cfg.OutDir || got.MaxBytes != cfg.Download.MaxBytes || got.Timeout != cfg.Download.Timeout {
				t.Errorf("fetch.Config = %+v, does not carry download.* and out_dir", got)
			}
			wantHosts := "[*.cdn.example.com]"
			if tt.builtinSim {
				wantHosts = "[*.cdn.example.com 127.0.0.1]"
			}
			if h := fmt.Sprint(got.AllowedHosts); h != wantHosts {
				t.Errorf("AllowedHosts = %s, want %s", h, wantHosts)
			}
			if logged := strings.Contains(logs.String(), "downloads_from_private_addresses_allowed"); logged != tt.logged {
				t.Errorf("logged = %v, want %v; logs:\n%s", logged, tt.logged, logs.String())
			}
		})
	}
}

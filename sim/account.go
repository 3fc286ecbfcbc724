package sim

import (
	"cmp"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/time/rate"
)

// DefaultAccount names, in Stats.Accounts, the account of Config.APIKey.
const DefaultAccount = "default"

// Account is a further API key the simulator accepts, with limits of its
// own, as the provider keeps its limits per account: each account has its
// own request bucket and its own tasks in flight. The zero value of a
// limit means Config's default for it (not Config's own value).
type Account struct {
	// Name names the account in Stats.Accounts. Required, unique, not
	// DefaultAccount.
	Name string
	// APIKey is the bearer key of the account. Required, unique.
	APIKey string
	// RequestsPerMinute, Burst and MaxInFlight are the account's limits,
	// as Config's fields of the same names are Config.APIKey's.
	RequestsPerMinute int
	Burst             int
	MaxInFlight       int
}

// withDefaults returns a with its zero limits set to their defaults.
func (a Account) withDefaults() Account {
	a.RequestsPerMinute = cmp.Or(a.RequestsPerMinute, RequestsPerMinuteDefault)
	a.Burst = cmp.Or(a.Burst, max(1, a.RequestsPerMinute/60))
	a.MaxInFlight = cmp.Or(a.MaxInFlight, MaxInFlightDefault)
	return a
}

// validateAccounts checks the further accounts of a Config.
func (c Config) validateAccounts() error {
	names := map[string]bool{DefaultAccount: true}
	keys := map[string]bool{c.APIKey: true}
	for i, a := range c.Accounts {
		switch {
		case a.Name == "" || names[a.Name]:
			return fmt.Errorf("sim: Accounts[%d].Name: must be set, unique and not %q", i, DefaultAccount)
		case a.APIKey == "" || keys[a.APIKey]:
			return fmt.Errorf("sim: Accounts[%d].APIKey: must be set and unique", i)
		case a.RequestsPerMinute < 0 || a.Burst < 0 || a.MaxInFlight < 0:
			return fmt.Errorf("sim: Accounts[%d]: limits must be positive", i)
		}
		names[a.Name], keys[a.APIKey] = true, true
	}
	return nil
}

// account is one API key's state: its request bucket and tasks in flight.
type account struct {
	name        string
	key         string // "" for the default account, whose key is Sim.key
	limiter     *rate.Limiter
	maxInFlight int
	stats       AccountStats // guarded by Sim.mu
}

func newAccount(name, key string, rpm, burst, maxInFlight int, timeScale float64) *account {
	perSecond := float64(rpm) * timeScale / 60
	return &account{name: name, key: key, limiter: rate.NewLimiter(rate.Limit(perSecond), burst), maxInFlight: maxInFlight}
}

// AccountStats counts what one account (one API key) did.
type AccountStats struct {
	// Created counts the account's tasks created.
	Created int `json:"created"`
	// InFlight is the account's tasks created and not yet ended.
	InFlight int `json:"in_flight"`
	// PeakInFlight is the highest InFlight of the account.
	PeakInFlight int `json:"peak_in_flight"`
	// RateLimited counts the account's 429 answers (request and in-flight
	// limits; not the storms of Faults.RateLimited).
	RateLimited int `json:"rate_limited"`
}

// accountOf returns the account whose bearer key r carries, or nil.
func (s *Sim) accountOf(r *http.Request) *account {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return nil
	}
	for _, a := range s.accounts {
		key := a.key
		if a.name == DefaultAccount {
			key = *s.key.Load()
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(key)) == 1 {
			return a
		}
	}
	return nil
}

// startedLocked counts a task of a started. s.mu is held.
func (a *account) startedLocked() {
	a.stats.InFlight++
	a.stats.PeakInFlight = max(a.stats.PeakInFlight, a.stats.InFlight)
}

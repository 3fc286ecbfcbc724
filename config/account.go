package config

import (
	"cmp"
	"fmt"
	"regexp"

	"github.com/seedbatch/seedbatch/batch"
	"github.com/seedbatch/seedbatch/ratelimit"
)

// Account is a provider account (an API key) of the accounts list, besides
// the one of provider.api_key. Each has its own key, base URL, limits and
// budget; a batch names the account it runs on (run and enqueue
// --account), and the workers create and read its tasks with that key,
// under that account's limits.
type Account struct {
	// Name names the account in --account, status, the dashboard and the
	// metrics (label account): lower-case letters, digits, '-' and '_'.
	// "default" is provider.api_key's.
	Name string `yaml:"name"`
	// APIKeyEnv is the environment variable that holds the key; its _FILE
	// form names a file holding it instead, as SEEDANCE_API_KEY_FILE does.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKeyFile is a file holding the key (trailing line breaks trimmed).
	// Exactly one of APIKeyEnv and APIKeyFile is set.
	APIKeyFile string `yaml:"api_key_file"`
	// BaseURL of the API (default provider.base_url).
	BaseURL string `yaml:"base_url"`
	// MaxInFlight and RequestsPerMinute are the account's limits (default
	// limits.max_in_flight and limits.requests_per_minute); the rest of
	// the limits section (burst, create_reserve, lease_ttl) applies to
	// every account.
	MaxInFlight       int `yaml:"max_in_flight"`
	RequestsPerMinute int `yaml:"requests_per_minute"`
	// BudgetSeconds caps the video seconds created by every batch of the
	// account together (default 0: no cap beyond budget.total_seconds).
	BudgetSeconds int `yaml:"budget_seconds"`
	// APIKey is the key Load read from APIKeyEnv or APIKeyFile.
	APIKey Secret `yaml:"-"`
}

// accountsPath is the path of the accounts list.
const accountsPath = "accounts"

// accountName is the form of an account's name.
var accountName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// AccountSettings is an account as the workers use it: defaults filled in.
type AccountSettings struct {
	// Name is the account's name (batch.AccountDefault for provider.api_key's).
	Name string
	// APIKey authenticates the account's requests.
	APIKey Secret
	// BaseURL of the API.
	BaseURL string
	// Limits are the account's limits as the shared limiter holds them.
	Limits ratelimit.Config
	// BudgetSeconds caps the video seconds of the account's batches (0: none).
	BudgetSeconds int
}

// AccountList returns the accounts a batch may name, the default first:
// provider.api_key's, named batch.AccountDefault, when that key is set or
// no account is listed; then every entry of accounts, in order.
func (c Config) AccountList() []AccountSettings {
	var out []AccountSettings
	if c.Provider.APIKey != "" || len(c.Accounts) == 0 {
		out = append(out, AccountSettings{Name: batch.AccountDefault, APIKey: c.Provider.APIKey, BaseURL: c.Provider.BaseURL,
			Limits: c.limitsOf(c.Provider.APIKey, c.Limits.RequestsPerMinute, c.Limits.MaxInFlight)})
	}
	for _, a := range c.Accounts {
		out = append(out, AccountSettings{Name: a.Name, APIKey: a.APIKey, BaseURL: cmp.Or(a.BaseURL, c.Provider.BaseURL),
			Limits:        c.limitsOf(a.APIKey, cmp.Or(a.RequestsPerMinute, c.Limits.RequestsPerMinute), cmp.Or(a.MaxInFlight, c.Limits.MaxInFlight)),
			BudgetSeconds: a.BudgetSeconds})
	}
	return out
}

// AccountNamed returns the account called name; "" names the first of
// AccountList. The error lists the accounts there are.
func (c Config) AccountNamed(name string) (AccountSettings, error) {
	list := c.AccountList()
	if name == "" {
		return list[0], nil
	}
	var names []string
	for _, a := range list {
		if a.Name == name {
			return a, nil
		}
		names = append(names, a.Name)
	}
	return AccountSettings{}, fmt.Errorf("no account %q in the configuration (accounts: %v)", name, names)
}

// limitsOf are the limits of the account of apiKey, as the shared limiter
// holds them: keyed by the key (never the key itself), whatever the
// namespace, so every seedbatch on one Redis that uses the key shares them;
// with the request rate multiplied by worker.time_scale, since a simulator
// in compressed time serves that many more requests a second.
func (c Config) limitsOf(apiKey Secret, rpm, maxInFlight int) ratelimit.Config {
	return ratelimit.Config{
		Prefix:            ratelimit.AccountPrefix,
		Scope:             ratelimit.AccountScope(apiKey.Reveal()),
		RequestsPerMinute: int(float64(rpm) * c.Worker.TimeScale),
		Burst:             c.Limits.Burst,
		CreateReserve:     c.Limits.CreateReserve,
		MaxInFlight:       maxInFlight,
		LeaseTTL:          c.Limits.LeaseTTL,
	}
}

// validateAccounts checks the accounts list; the error names the entry and
// its field.
func (c Config) validateAccounts() error {
	seen := map[string]int{}
	for i, a := range c.Accounts {
		field := func(f string) string { return fmt.Sprintf("%s[%d].%s", accountsPath, i, f) }
		bad := func(f, why string) error { return &SettingError{Field: field(f), Reason: why} }
		if j, dup := seen[a.Name]; dup {
			return bad("name", fmt.Sprintf("%q is also the name of %s[%d]", a.Name, accountsPath, j))
		}
		seen[a.Name] = i
		switch {
		case !accountName.MatchString(a.Name):
			return bad("name", "must be 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or digit")
		case a.Name == batch.AccountDefault:
			return bad("name", fmt.Sprintf("%q is provider.api_key's account; choose another name", batch.AccountDefault))
		case (a.APIKeyEnv == "") == (a.APIKeyFile == ""):
			return bad("api_key_env", "set exactly one of api_key_env (a variable holding the key) and api_key_file")
		case a.BaseURL != "" && !hasScheme(a.BaseURL, "http://", "https://"):
			return bad("base_url", "must be an http(s) URL (empty: provider.base_url)")
		case a.MaxInFlight < 0:
			return bad("max_in_flight", "must not be negative (0: limits.max_in_flight)")
		case a.RequestsPerMinute < 0:
			return bad("requests_per_minute", "must not be negative (0: limits.requests_per_minute)")
		case a.BudgetSeconds < 0:
			return bad("budget_seconds", "must not be negative (0: no cap)")
		}
	}
	return nil
}

// loadAccountKeys reads each account's key from its variable (or the
// variable's _FILE form) or its file. A key that is missing, or that
// another account (or provider.api_key) already has, is an error naming
// the setting: two accounts with one key would share its limits.
func loadAccountKeys(c *Config, env func(string) (string, bool)) error {
	if err := c.validateAccounts(); err != nil {
		return err
	}
	owner := map[string]string{}
	if c.Provider.APIKey != "" {
		owner[c.Provider.APIKey.Reveal()] = "provider.api_key"
	}
	accounts := append([]Account(nil), c.Accounts...)
	for i := range accounts {
		a := &accounts[i]
		field := fmt.Sprintf("%s[%d].api_key_env", accountsPath, i)
		var key string
		if a.APIKeyEnv != "" {
			v, ok, err := lookupEnv(env, a.APIKeyEnv, true)
			if err != nil {
				return &SettingError{Field: field, Reason: err.Error()}
			}
			if !ok || v == "" {
				return &SettingError{Field: field, Reason: fmt.Sprintf("%s is not set (nor %s%s)", a.APIKeyEnv, a.APIKeyEnv, FileSuffix)}
			}
			key = v
		} else {
			field = fmt.Sprintf("%s[%d].api_key_file", accountsPath, i)
			v, err := readSecretFile(a.APIKeyFile)
			if err != nil {
				return &SettingError{Field: field, Reason: err.Error()}
			}
			if v == "" {
				return &SettingError{Field: field, Reason: a.APIKeyFile + " is empty"}
			}
			key = v
		}
		if other, dup := owner[key]; dup {
			return &SettingError{Field: field, Reason: "the same API key as " + other + ": one key is one account, with one set of limits"}
		}
		owner[key] = fmt.Sprintf("%s[%d]", accountsPath, i)
		a.APIKey = Secret(key)
	}
	c.Accounts = accounts
	return nil
}

// Package redisconn turns the description of a Redis deployment (one
// server by URL, a Sentinel-managed master, or a Cluster) into the two
// handles seedbatch needs: a go-redis UniversalClient for its own commands
// and an asynq.RedisConnOpt for the asynq tools that open their own
// connections (the dashboard's monitor). Every Redis client of the program
// is made here, so the three modes behave the same everywhere.
//
// It also knows Redis Cluster's key slots (Slot, the CRC16 hash-tag rule),
// so that tests can check that every multi-key command and script stays
// within one slot (see SlotHook).
package redisconn

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Modes of a Redis deployment.
const (
	// ModeSingle is one server named by URL.
	ModeSingle = "single"
	// ModeSentinel is a master found through Redis Sentinel.
	ModeSentinel = "sentinel"
	// ModeCluster is a Redis Cluster.
	ModeCluster = "cluster"
)

// Settings describe a Redis deployment. Exactly one mode applies: Sentinel
// when SentinelAddrs is set, Cluster when ClusterAddrs is set, the single
// server of URL otherwise.
type Settings struct {
	// URL of a single server: redis://, rediss:// or unix://.
	URL string
	// MasterName is the Sentinel-monitored master's name.
	MasterName string
	// SentinelAddrs are host:port addresses of the sentinels.
	SentinelAddrs []string
	// SentinelUsername and SentinelPassword authenticate to the sentinels.
	SentinelUsername, SentinelPassword string
	// ClusterAddrs are host:port addresses of some of the cluster's nodes.
	ClusterAddrs []string
	// Username and Password authenticate to the Redis servers of Sentinel
	// and Cluster modes (a single server's are in its URL).
	Username, Password string
	// DB is the database of Sentinel mode (Cluster has only 0; a single
	// server's is in its URL).
	DB int
	// PoolSize is the connections per server; 0 keeps go-redis's default,
	// and a single server's URL may set its own (pool_size), which wins.
	PoolSize int
	// Timeout, when positive, bounds dialing and each read and write, and
	// turns retries off (for health checks).
	Timeout time.Duration
}

// Mode says which deployment s describes, or "" when none (no URL and no
// addresses).
func (s Settings) Mode() string {
	switch {
	case len(s.SentinelAddrs) > 0:
		return ModeSentinel
	case len(s.ClusterAddrs) > 0:
		return ModeCluster
	case s.URL != "":
		return ModeSingle
	}
	return ""
}

// Describe names the deployment for messages, without any password.
func (s Settings) Describe() string {
	switch s.Mode() {
	case ModeSentinel:
		return fmt.Sprintf("Sentinel master %s via %s", s.MasterName, strings.Join(s.SentinelAddrs, ","))
	case ModeCluster:
		return "Cluster " + strings.Join(s.ClusterAddrs, ",")
	case ModeSingle:
		return RedactURL(s.URL)
	}
	return "no Redis"
}

// Check reports what in s cannot work; the error names the setting by the
// Settings field's name.
func (s Settings) Check() error {
	if len(s.SentinelAddrs) > 0 && len(s.ClusterAddrs) > 0 {
		return errors.New("SentinelAddrs and ClusterAddrs: set one of them, not both")
	}
	if len(s.SentinelAddrs) > 0 && s.MasterName == "" {
		return errors.New("MasterName: must be set with SentinelAddrs")
	}
	if s.MasterName != "" && len(s.SentinelAddrs) == 0 {
		return errors.New("SentinelAddrs: must be set with MasterName")
	}
	for _, list := range []struct {
		name  string
		addrs []string
	}{{"SentinelAddrs", s.SentinelAddrs}, {"ClusterAddrs", s.ClusterAddrs}} {
		for _, a := range list.addrs {
			if !hostPort(a) {
				return fmt.Errorf("%s: %q: want host:port", list.name, a)
			}
		}
	}
	if s.Mode() == ModeSingle {
		if _, err := redis.ParseURL(s.URL); err != nil {
			// The parse error repeats the URL, password included.
			return fmt.Errorf("URL %s: not a valid Redis URL", RedactURL(s.URL))
		}
	}
	return nil
}

// options returns the go-redis options of s.
func (s Settings) options() (*redis.UniversalOptions, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	var o redis.UniversalOptions
	switch s.Mode() {
	case "":
		return nil, errors.New("no Redis configured")
	case ModeSingle:
		opt, _ := redis.ParseURL(s.URL) // checked
		o = redis.UniversalOptions{
			Addrs: []string{opt.Addr}, Username: opt.Username, Password: opt.Password,
			DB: opt.DB, TLSConfig: opt.TLSConfig, PoolSize: opt.PoolSize,
			DialTimeout: opt.DialTimeout, ReadTimeout: opt.ReadTimeout, WriteTimeout: opt.WriteTimeout,
			MaxRetries: opt.MaxRetries, ClientName: opt.ClientName, Protocol: opt.Protocol,
		}
	case ModeSentinel:
		o = redis.UniversalOptions{MasterName: s.MasterName, Addrs: s.SentinelAddrs,
			SentinelUsername: s.SentinelUsername, SentinelPassword: s.SentinelPassword,
			Username: s.Username, Password: s.Password, DB: s.DB}
	case ModeCluster:
		o = redis.UniversalOptions{Addrs: s.ClusterAddrs, Username: s.Username, Password: s.Password, IsClusterMode: true}
	}
	if s.PoolSize > 0 {
		o.PoolSize = s.PoolSize
	}
	if s.Timeout > 0 {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = s.Timeout, s.Timeout, s.Timeout, -1
	}
	return &o, nil
}

// Client returns a client of the deployment: a plain client for a single
// server, a failover client for Sentinel, a cluster client for Cluster.
// It does not connect; the caller closes it.
func (s Settings) Client() (redis.UniversalClient, error) {
	o, err := s.options()
	if err != nil {
		return nil, err
	}
	switch s.Mode() {
	case ModeSentinel:
		return redis.NewFailoverClient(o.Failover()), nil
	case ModeCluster:
		return redis.NewClusterClient(o.Cluster()), nil
	}
	// Every option of the URL, not only those UniversalOptions carries.
	opt, _ := redis.ParseURL(s.URL)          // checked
	if s.PoolSize > 0 && opt.PoolSize == 0 { // the URL's pool_size wins
		opt.PoolSize = s.PoolSize
	}
	if s.Timeout > 0 {
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.MaxRetries = s.Timeout, s.Timeout, s.Timeout, -1
	}
	return redis.NewClient(opt), nil
}

// ConnOpt returns the asynq connection options of the deployment.
func (s Settings) ConnOpt() (asynq.RedisConnOpt, error) {
	o, err := s.options()
	if err != nil {
		return nil, err
	}
	switch s.Mode() {
	case ModeSentinel:
		return asynq.RedisFailoverClientOpt{MasterName: o.MasterName, SentinelAddrs: o.Addrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB, PoolSize: o.PoolSize,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout}, nil
	case ModeCluster:
		return asynq.RedisClusterClientOpt{Addrs: o.Addrs, Username: o.Username, Password: o.Password,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout}, nil
	}
	opt, _ := redis.ParseURL(s.URL) // checked
	return asynq.RedisClientOpt{Network: opt.Network, Addr: o.Addrs[0], Username: o.Username, Password: o.Password,
		DB: o.DB, PoolSize: o.PoolSize, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout}, nil
}

// RedactURL hides the password of a URL such as redis://:secret@host:6379.
func RedactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.LastIndex(u, "@"); at > i {
			return u[:i+3] + "***@" + u[at+1:]
		}
	}
	return u
}

// hostPort reports whether s is host:port with a host and a numeric port.
func hostPort(s string) bool {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return false
	}
	return strings.Trim(s[i+1:], "0123456789") == ""
}

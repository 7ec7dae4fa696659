package relay

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"outpost/store"
)

// Config configures a relay. Exactly one of Store (the management host) or
// Manager (a relay on another host) is set.
type Config struct {
	DataDir string
	Version string

	// Management host: the store is local.
	Store *store.DB
	// Collector, when set, is the built-in management-centre ingest mounted
	// on the same listeners (wire.PathIngest, wire.PathCollStats).
	Collector http.Handler

	// Joined relay: the management host's URL and, on first start, a join
	// token; ManagerCA pins the management host's CA (hex SHA-256). Both
	// are saved at join (DATA/relay.json): later starts may leave them
	// empty, and a value given overrides the saved one.
	Manager   string
	ManagerCA string
	JoinToken string
	// Hostname and IP reported at join (default: this host).
	Hostname string
	IP       string

	// PublicURLs are the URLs agents use to reach this relay; they are
	// handed to agents at bind time and to the store at join.
	PublicURLs []string

	// AllowPlain permits authenticated agent calls over plain HTTP (the
	// seed's port 80/8080 use); otherwise they need TLS.
	AllowPlain bool

	// Upstream is where a forward-mode sink sends data when the policy
	// names none ("" = the management host's built-in collector).
	Upstream string
	// UpstreamToken, when set, is sent as "Authorization: Bearer" to an
	// upstream that is not this process's own collector (outpost center
	// needs its ingest token).
	UpstreamToken string
	// StatsToken lets a caller read the built-in collector's /v1/stats
	// (which lists agent ids); "" = DATA/stats.token, created when missing.
	StatsToken string
	// MetricsToken, when set, is required (Bearer) on /metrics.
	MetricsToken string

	// Binary is the executable an upgrade replaces (a joined relay run by
	// the command line, which honours Server.RestartRequested); "" refuses
	// upgrades. Argv is what the new binary runs with (default os.Args),
	// Unit the systemd unit to restart ("" = re-exec in place), and
	// UpgradeGrace how long a new version has to report healthy before
	// the watcher rolls it back (default selfupdate.DefaultGrace).
	Binary       string
	Argv         []string
	Unit         string
	UpgradeGrace time.Duration

	PollTimeout       time.Duration // longest a check-in is held (also capped by the store setting)
	HeartbeatInterval time.Duration // joined relay -> management host
	CommandPoll       time.Duration // how often queued commands are looked for
	CheckinFlush      time.Duration // check-in batch interval
	AuthTTL           time.Duration // how long a verified credential is cached
	SpoolMax          int64         // forward-mode spool cap (bytes)
	SpoolSync         time.Duration // spool group-commit interval
	ForwardLag        int64         // forward mode: spool backlog beyond which intake waits for forwarding (0: never)
	RetryAfter        time.Duration // advice sent with 429

	Log *slog.Logger // nil: no logs; a joined relay adds relay=ID cluster=NAME
}

// DefaultConfig returns the defaults; callers set DataDir and a mode.
func DefaultConfig() Config {
	return Config{
		Version:           "dev",
		PollTimeout:       30 * time.Second,
		HeartbeatInterval: 10 * time.Second,
		CommandPoll:       200 * time.Millisecond,
		CheckinFlush:      500 * time.Millisecond,
		AuthTTL:           time.Minute,
		SpoolMax:          1 << 30,
		SpoolSync:         5 * time.Millisecond, // at most 200 spool fsyncs/s, each covering every append before it
		ForwardLag:        64 << 20,
		RetryAfter:        2 * time.Second,
	}
}

// Validate names the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return fmt.Errorf("data: a data directory is required")
	case c.Store == nil && c.Manager == "" && !Joined(c.DataDir):
		return fmt.Errorf("manager: either a local store or --manager URL is required")
	case c.Store != nil && c.Manager != "":
		return fmt.Errorf("manager: a relay with a local store does not join another manager")
	case c.PollTimeout <= 0:
		return fmt.Errorf("poll-timeout: must be positive")
	case c.HeartbeatInterval <= 0:
		return fmt.Errorf("heartbeat: must be positive")
	case c.CommandPoll <= 0 || c.CheckinFlush <= 0 || c.AuthTTL <= 0 || c.RetryAfter <= 0:
		return fmt.Errorf("intervals: must be positive")
	case c.SpoolMax < 1<<20:
		return fmt.Errorf("spool-max: at least 1 MiB")
	case c.ForwardLag != 0 && c.ForwardLag < 1<<20:
		return fmt.Errorf("forward-lag: 0 (off) or at least 1 MiB")
	}
	if c.Manager != "" {
		u, err := url.Parse(c.Manager)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("manager: %q is not an http(s) URL", c.Manager)
		}
	}
	if c.Upstream != "" {
		u, err := url.Parse(c.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("upstream: %q is not an http(s) URL", c.Upstream)
		}
	}
	return nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"outpost/relay/wire"
)

// Error codes. The CLI maps every code to exit status 1 (refused or failed)
// and the HTTP layer maps each to its own status.
const (
	ENotFound     = "not_found"
	EConflict     = "conflict"
	EInvalid      = "invalid"
	EForbidden    = "forbidden"
	ELimit        = "limit"
	EUnauthorized = "unauthorized"
	EInternal     = "internal"
)

// Error is a refusal the operator can act on; Message is one line.
type Error struct {
	Code    string
	Message string
	// RetryAfter is set on ELimit refusals that clear with time.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EInternal for foreign errors and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the operator-facing text of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// Clock is injectable so tests can move time past thresholds.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Rule constants from the reference documents.
const (
	BindBatchMax       = 500                // hosts per bind batch (seed 000)
	MaxCacheBytes      = wire.MaxCacheBytes // 10 GB cache cap (seed 000)
	HostsPerProxy      = 6000               // one 8-core 16 GB proxy (seed 000)
	ReservedBpsPerHost = 10 * 1000          // 10 Kbit/s per host (seed 000)
	LinkShareWarn      = 0.60               // limits above 60 % of the link (seed 000)
	MinCacheBytes      = 64 << 10           // smallest cache cap (ours)
)

// Settings are the timing rules; stored in the database so that the relay,
// the dashboard and the CLI agree. The simulator shortens them to seconds.
type Settings struct {
	OfflineAfter      time.Duration `json:"offline_after"`       // 12h (seed 002)
	InventoryInterval time.Duration `json:"inventory_interval"`  // 5h (seed 002)
	UninstallGrace    time.Duration `json:"uninstall_grace"`     // 6h (seed 002)
	ProxyOfflineAfter time.Duration `json:"proxy_offline_after"` // ours: 3 missed 10 s heartbeats
	BindBatchGap      time.Duration `json:"bind_batch_gap"`      // 1m (seed 000)
	PollTimeout       time.Duration `json:"poll_timeout"`        // ours: long-poll hold
}

// ConnectedMargin is added to PollTimeout to decide "connected now"; it
// covers the check-in batcher, one reconnect and some clock skew.
const ConnectedMargin = 15 * time.Second

// ConnectedWindow is how recent an agent's last check-in must be for it to
// count as connected now. An agent holds a long-poll check-in open for up to
// PollTimeout and checks in again at once when it returns, so a live agent's
// last check-in is never older than PollTimeout (plus the margin). Online
// (OfflineAfter, 12 h) is the seed's much longer rule and is kept beside it.
func (s Settings) ConnectedWindow() time.Duration { return s.PollTimeout + ConnectedMargin }

// DefaultSettings returns the documented defaults.
func DefaultSettings() Settings {
	return Settings{
		OfflineAfter:      12 * time.Hour,
		InventoryInterval: 5 * time.Hour,
		UninstallGrace:    6 * time.Hour,
		ProxyOfflineAfter: 30 * time.Second,
		BindBatchGap:      time.Minute,
		PollTimeout:       30 * time.Second,
	}
}

// Validate names the first bad field.
func (s Settings) Validate() error {
	for _, f := range settingFields {
		if v := *f.Of(&s); v <= 0 {
			return Errorf(EInvalid, "setting %s must be positive, got %s", f.Key, v)
		}
	}
	if s.InventoryInterval >= s.OfflineAfter {
		return Errorf(EInvalid, "setting inventory_interval (%s) must be shorter than offline_after (%s)", s.InventoryInterval, s.OfflineAfter)
	}
	return nil
}

type actorKey struct{}

// WithActor names who makes the changes done with ctx, for the audit log.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

func actorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}

// Account owns clusters, install commands and agents; an agent of one account
// can never use another account's cluster.
type Account struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	KeyCreatedAt time.Time `json:"key_created_at"` // when the verification key was made (rotate-key)
}

// Policy is a cluster's transmission policy (seed 000, step 4).
type Policy struct {
	Mode         wire.Mode `json:"mode"`          // forward | cache
	BandwidthBps int64     `json:"bandwidth_bps"` // bytes/s upstream, 0 = unlimited
	FrequencyRPS int64     `json:"frequency_rps"` // upstream requests/s, 0 = unlimited
	CacheDir     string    `json:"cache_dir,omitempty"`
	CacheMax     int64     `json:"cache_max,omitempty"` // bytes, at most 10 GB
	LinkBps      int64     `json:"link_bps,omitempty"`  // proxy host link, bits/s, 0 = unknown
	Upstream     string    `json:"upstream,omitempty"`  // forward target, "" = built-in collector
}

// DefaultCacheDir is used when a cache policy names no directory; relative
// paths are resolved by the relay under its data directory.
const DefaultCacheDir = wire.DefaultCacheDir

// Cluster groups proxy servers behind one address.
type Cluster struct {
	ID          int64       `json:"id"`
	AccountID   int64       `json:"account_id"`
	Account     string      `json:"account"`
	Name        string      `json:"name"`
	Address     string      `json:"address"`
	AddressKind AddressKind `json:"address_kind"` // ip | domain
	Region      string      `json:"region,omitempty"`
	Remark      string      `json:"remark,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	Policy      Policy      `json:"policy"`

	// Derived at read time.
	Status          Status    `json:"status"` // online | offline (no proxy server online)
	Proxies         int       `json:"proxies"`
	ProxiesOnline   int       `json:"proxies_online"`
	Agents          int       `json:"agents"`           // bound to the cluster
	AgentsOnline    int       `json:"agents_online"`    // online (seed rule, OfflineAfter)
	AgentsConnected int       `json:"agents_connected"` // connected now (ConnectedWindow), through any relay
	Warnings        []Warning `json:"warnings,omitempty"`
}

// Status is whether an agent, a proxy server or a cluster is online;
// derived at read time, never stored.
type Status string

// Status values.
const (
	StatusOnline  Status = "online"
	StatusOffline Status = "offline"
	// StatusUninstalled is an agent whose uninstall is done: it acknowledged
	// the command, or the grace passed without an acknowledgement.
	StatusUninstalled Status = "uninstalled"
)

// Statuses lists the values of an agent's Status (a cluster or a proxy is
// never uninstalled).
var Statuses = []Status{StatusOnline, StatusOffline, StatusUninstalled}

// ParseStatus reads an agent status filter as an operator types it. The
// EInvalid error names the value and lists the allowed ones (`status "x":
// want online, offline or uninstalled`).
func ParseStatus(s string) (Status, error) {
	if st := Status(s); slices.Contains(Statuses, st) {
		return st, nil
	}
	return "", Errorf(EInvalid, "status %q: want online, offline or uninstalled", s)
}

// ViaDirect is Agent.Via for an agent that reached the management host
// itself rather than a proxy server.
const ViaDirect = "direct"

// Proxy is one proxy server (relay) of a cluster.
type Proxy struct {
	ID        int64      `json:"id"`
	ClusterID int64      `json:"cluster_id"`
	Cluster   string     `json:"cluster"`
	Hostname  string     `json:"hostname"`
	IP        string     `json:"ip"`
	Version   string     `json:"version"`
	Deploy    DeployKind `json:"deploy"` // quick | manual
	AssetID   string     `json:"asset_id,omitempty"`
	URLs      []string   `json:"urls,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastSeen  time.Time  `json:"last_seen"`
	Agents    int        `json:"agents"`
	Load      float64    `json:"load"`

	Status Status `json:"status"` // online | offline
	// Protected: the host's own agent (quick deployment) is Protected now;
	// false for a manual deployment (proxy only) and once that agent is
	// offline or uninstalled.
	Protected bool `json:"protected"`
	// AssetStatus is the status of that agent (online, offline,
	// uninstalled); "" for a manual deployment.
	AssetStatus Status `json:"asset_status,omitempty"`
	Upgrade     bool   `json:"upgradable"`
	// Commands are the latest command of each type, newest first;
	// LastError describes the latest of them that failed.
	Commands  []Command `json:"commands,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// UpgradeState is the latest upgrade command's UpgradeText ("to
	// 1.2.0: downloading", "to 1.2.0: rolled back: REASON"), "" if none.
	UpgradeState string `json:"upgrade_state,omitempty"`
}

// Security is an agent's security status (seed 002): Protected while the
// agent runs and is online.
type Security string

// Security status values, shown as they are.
const (
	Protected   Security = "Protected"
	Unprotected Security = "Unprotected"
)

// Agent is an enrolled agent and the asset it protects: the columns of the
// asset table in seed 002 plus what the proxy features need.
type Agent struct {
	ID            string    `json:"id"`
	AccountID     int64     `json:"account_id"`
	Hostname      string    `json:"hostname"`
	IPs           []string  `json:"ips,omitempty"`
	OS            wire.OS   `json:"os"`
	OSName        string    `json:"os_name,omitempty"`
	Arch          string    `json:"arch"`
	Provider      string    `json:"provider,omitempty"`
	Region        string    `json:"region,omitempty"`
	Group         string    `json:"group,omitempty"`
	Tags          []string  `json:"tags,omitempty"`
	Version       string    `json:"version"`
	ClusterID     int64     `json:"cluster_id,omitempty"` // 0 = direct
	Cluster       string    `json:"cluster,omitempty"`
	ViaProxyID    int64     `json:"via_proxy_id,omitempty"`
	Fingerprint   string    `json:"fingerprint"`
	EnrolledAt    time.Time `json:"enrolled_at"`
	LastCheckin   time.Time `json:"last_checkin"`
	LastInventory time.Time `json:"last_inventory"`
	Inventory
	CPU         float64   `json:"cpu"`
	Mem         float64   `json:"mem"`
	UninstallAt time.Time `json:"uninstall_at,omitempty"` // uninstall requested
	// UninstalledAt is when the agent acknowledged the uninstall command;
	// UninstallState is that command's state (queued, delivered, running,
	// done, failed: reason).
	UninstalledAt  time.Time `json:"uninstalled_at,omitempty"`
	UninstallState string    `json:"uninstall_state,omitempty"`
	// Upgrade is the latest upgrade command (agent upgrade), with its
	// state; set by GetAgent, FindAgent and DiagnoseAgent, not in
	// listings.
	Upgrade *Command `json:"upgrade,omitempty"`

	// Derived at read time; the definitions are in doc.go and the README.
	Status         Status   `json:"status"`          // online | offline | uninstalled
	Online         bool     `json:"online"`          // last check-in within OfflineAfter, not uninstalled
	Connected      bool     `json:"connected"`       // last check-in within ConnectedWindow, not uninstalled
	Via            string   `json:"via"`             // relay of the last check-in: proxy host name, or "direct"
	Uninstalled    bool     `json:"uninstalled"`     // acknowledged, or grace passed without acknowledgement
	SecurityStatus Security `json:"security_status"` // Protected | Unprotected
	RiskStatus     Risk     `json:"risk_status"`     // At risk | Safe
	Duplicate      bool     `json:"duplicate_identity"`
	DuplicateFix   string   `json:"duplicate_fix,omitempty"`
}

// Inventory is the "online data" counters of seed 002's asset table.
type Inventory struct {
	Processes     int `json:"processes"`
	Ports         int `json:"ports"`
	RootAccounts  int `json:"root_accounts"`
	Accounts      int `json:"accounts"`
	Vulns         int `json:"vulnerabilities"`
	BaselineRisks int `json:"baseline_risks"`
	Alerts        int `json:"alerts"`
}

// DuplicateFix is shown with a duplicated identity (seed 002, chapter 1).
const DuplicateFix = wire.DuplicateFix

// InstallCommand is a key that enrols agents into an account, optionally
// straight into a cluster.
type InstallCommand struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"account_id"`
	ClusterID int64     `json:"cluster_id,omitempty"`
	Cluster   string    `json:"cluster,omitempty"`
	KeyPrefix string    `json:"key_prefix"`
	Key       string    `json:"key,omitempty"` // only when just created
	ExpiresAt time.Time `json:"expires_at"`
	Provider  string    `json:"provider,omitempty"`
	Group     string    `json:"group,omitempty"`
	OS        wire.OS   `json:"os"`
	ImageMode bool      `json:"image_mode"`
	Uses      int       `json:"uses"`
	Revoked   bool      `json:"revoked"`
	CreatedAt time.Time `json:"created_at"`
	Expired   bool      `json:"expired"`
}

// JoinToken lets a relay on another host register as a proxy server once.
type JoinToken struct {
	ID        int64      `json:"id"`
	ClusterID int64      `json:"cluster_id"`
	Cluster   string     `json:"cluster"`
	Token     string     `json:"token,omitempty"` // only when just created
	Deploy    DeployKind `json:"deploy"`
	AssetID   string     `json:"asset_id,omitempty"`
	ExpiresAt time.Time  `json:"expires_at"`
	CommandID int64      `json:"command_id,omitempty"` // quick deployment: the deploy-proxy command
}

// Command is pending work for an agent or proxy.
type Command struct {
	ID          int64            `json:"id"`
	TargetKind  TargetKind       `json:"target_kind"` // agent | proxy
	TargetID    string           `json:"target_id"`
	Type        wire.CommandType `json:"type"`
	Payload     string           `json:"payload"`
	CreatedAt   time.Time        `json:"created_at"`
	DeliveredAt time.Time        `json:"delivered_at,omitempty"`
	// State is queued, delivered, running, done, failed or rolled_back
	// (Error says why); Attempts counts deliveries; UpdatedAt is the last
	// change. Stage is where a running upgrade stands (downloading,
	// verifying, restarting), "" otherwise.
	State     wire.State `json:"state"`
	Stage     wire.Stage `json:"stage,omitempty"`
	Attempts  int        `json:"attempts"`
	Error     string     `json:"error,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
	EndedAt   time.Time  `json:"ended_at,omitempty"`
}

// CommandReport is what a target says about one of its commands:
// wire.StateRunning (with the Stage of an upgrade), StateDone, or
// StateFailed or StateRolledBack with the reason.
type CommandReport struct {
	ID    int64
	State wire.State
	Stage wire.Stage
	Error string
}

// Release is a proxy/agent version the operator can upgrade to.
type Release struct {
	Version     string    `json:"version"`
	SHA256      string    `json:"sha256,omitempty"`
	Signature   string    `json:"signature,omitempty"` // hex ed25519 over ReleaseMessage
	Notes       string    `json:"notes,omitempty"`
	PublishedAt time.Time `json:"published_at"`
}

// AuditEntry records one operator change.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

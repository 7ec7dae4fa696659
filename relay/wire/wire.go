// Package wire holds the JSON shapes of the agent-facing, relay-facing and
// collector protocols. It is a leaf package so that agents (agentsim) can
// speak the protocol without importing the relay server. Because it is the
// one project package agentsim may import (DESIGN.md), it also holds what
// both sides need and would otherwise copy: the seed's fixed values and
// units (seed.go) and file writes, atomic or appended whole (fsx.go). The protocol's words are
// defined here once and both sides use them: the Authorization forms
// (auth.go), the error codes (codes.go), the duration encoding
// (duration.go) and the closed sets of words (enums.go): Mode (a cluster's
// transmission mode), OS (linux, windows), CommandType, State (a command's
// state) and Stage (a running upgrade's stage), named string types that the store's domain types use
// too, so a word of one set cannot stand for another. They encode as the
// plain strings they always were.
package wire

import (
	"encoding/json"
	"time"
)

// Paths served by every relay listener.
const (
	PathEnrol     = "/v1/enrol"
	PathCheckin   = "/v1/checkin"
	PathEvents    = "/v1/events"
	PathManifest  = "/v1/update/manifest"
	PathPackage   = "/v1/update/package/" // + version
	PathHealth    = "/healthz"
	PathMetrics   = "/metrics"
	PathJoin      = "/v1/relay/join"
	PathHeartbeat = "/v1/relay/heartbeat"
	PathIngest    = "/v1/ingest" // collector
	PathCollStats = "/v1/stats"  // collector per-agent counts
	PathAuth      = "/v1/relay/auth"
	// The management host serves its install script and its own binary
	// (PathDist + "outpost-OS-ARCH", and PathDist + "SHA256SUMS") so the
	// printed one-line install works on a bare host.
	PathInstallScript = "/v1/install.sh"
	PathDist          = "/v1/dist/"
)

// HeaderRelay carries a joined relay's own credentials ("id:secret") when it
// forwards an agent call; the agent's Authorization header is kept as is.
const HeaderRelay = "X-Outpost-Relay"

// HeaderAgentAddr is set by a joined relay on a forwarded check-in: the
// agent's address as the relay sees it, so the management host tells two
// live copies of one identity from one agent that reconnected.
const HeaderAgentAddr = "X-Outpost-Agent-Addr"

// Host describes a machine as the agent sees it; it is sent at enrolment and
// with every inventory.
type Host struct {
	Hostname    string   `json:"hostname"`
	IPs         []string `json:"ips,omitempty"`
	OS          OS       `json:"os"`                // linux, windows
	OSName      string   `json:"os_name,omitempty"` // PRETTY_NAME from os-release
	Arch        string   `json:"arch"`
	Provider    string   `json:"provider,omitempty"`
	Region      string   `json:"region,omitempty"`
	Fingerprint string   `json:"fingerprint"` // machine identity (machine-id, boot id...)
	Version     string   `json:"version"`     // agent version
}

// Inventory is the "online data" an agent sends on its inventory interval.
type Inventory struct {
	Processes       int      `json:"processes"`
	ListeningPorts  []int    `json:"listening_ports,omitempty"`
	Ports           int      `json:"ports"`
	RootAccounts    int      `json:"root_accounts"`
	Accounts        int      `json:"accounts"`
	Vulnerabilities int      `json:"vulnerabilities"`
	BaselineRisks   int      `json:"baseline_risks"`
	Alerts          int      `json:"alerts"`
	Tags            []string `json:"tags,omitempty"`
	Group           string   `json:"group,omitempty"`
}

// EnrolRequest exchanges an install key for agent credentials.
type EnrolRequest struct {
	Key       string     `json:"key"`
	Host      Host       `json:"host"`
	Inventory *Inventory `json:"inventory,omitempty"`
}

// Settings are pushed to agents at enrolment and on every check-in so that
// the operator can change timing centrally.
type Settings struct {
	InventoryInterval time.Duration `json:"inventory_interval"`
	OfflineAfter      time.Duration `json:"offline_after"`
	PollTimeout       time.Duration `json:"poll_timeout"`
	MaxBatch          int           `json:"max_batch"` // records per events request
}

// EnrolResponse carries the agent's identity; the secret is shown only once.
type EnrolResponse struct {
	AgentID  string   `json:"agent_id"`
	Secret   string   `json:"secret"`
	Account  string   `json:"account"`
	Cluster  string   `json:"cluster,omitempty"`
	Proxies  []string `json:"proxies,omitempty"`
	Settings Settings `json:"settings"`
	// ReleaseKeys is the release key chain (see ReleaseKeyLink); the agent
	// keeps the newest key it can reach from the one it trusts.
	ReleaseKeys []ReleaseKeyLink `json:"release_keys,omitempty"`
}

// CheckinRequest is held open by the relay until a command is queued for the
// agent or Wait elapses.
type CheckinRequest struct {
	Fingerprint string     `json:"fingerprint"` // machine identity, every time: clones are caught
	Host        *Host      `json:"host,omitempty"`
	Inventory   *Inventory `json:"inventory,omitempty"`
	Acked       []int64    `json:"acked,omitempty"` // command ids carried out
	// Results report commands that are running or failed (done ones may
	// also come here instead of in Acked).
	Results []CommandResult `json:"results,omitempty"`
	Wait    Duration        `json:"wait,omitempty"`
	CPU     float64         `json:"cpu,omitempty"`
	Mem     float64         `json:"mem,omitempty"`
}

// CommandResult is what a target reports about a command it was handed:
// StateRunning (with Stage for an upgrade), StateDone, StateFailed or
// StateRolledBack (Error says why).
type CommandResult struct {
	ID    int64  `json:"id"`
	State State  `json:"state"`
	Stage Stage  `json:"stage,omitempty"`
	Error string `json:"error,omitempty"`
}

// UpgradeArgs are the Args of a CmdUpgrade, for a relay or an agent.
type UpgradeArgs struct {
	Version string `json:"version"`
	Force   bool   `json:"force,omitempty"` // a downgrade the operator asked for
}

// ReleaseKeyLink is one release public key (hex ed25519) in the chain the
// management host hands out, oldest first. Signature is the hex signature
// of store.KeyLinkMessage(Key) by the link before it ("" on the first): a
// relay or agent that trusts one key accepts the next only through it.
type ReleaseKeyLink struct {
	Key       string `json:"key"`
	Signature string `json:"signature,omitempty"`
}

// Command is one instruction for an agent or relay.
type Command struct {
	ID      int64           `json:"id"`
	Type    CommandType     `json:"type"`
	Cluster string          `json:"cluster,omitempty"`
	Proxies []string        `json:"proxies,omitempty"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// CheckinResponse answers a check-in.
type CheckinResponse struct {
	Commands    []Command `json:"commands,omitempty"`
	Settings    Settings  `json:"settings"`
	DuplicateID bool      `json:"duplicate_identity,omitempty"`
	// Clone tells the caller that it is the copy of a duplicated identity
	// (its fingerprint is not the enrolled one, or another live connection
	// holds the id): it must back off and be re-enrolled.
	Clone         bool      `json:"clone,omitempty"`
	ServerTimeUTC time.Time `json:"server_time"`
	// ReleaseKeys as in EnrolResponse, sent with an upgrade command only
	// (for an agent enrolled before a key was made or rotated).
	ReleaseKeys []ReleaseKeyLink `json:"release_keys,omitempty"`
}

// Record is one event with the agent's own, strictly increasing sequence
// number; (agent, seq) identifies it end to end so duplicates can be counted.
type Record struct {
	Agent string          `json:"agent,omitempty"` // set by the relay, never trusted from the agent
	Seq   uint64          `json:"seq"`
	Time  time.Time       `json:"time"`
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// EventBatch is sent by an agent to /v1/events.
type EventBatch struct {
	Records []Record `json:"records"`
}

// EventAck lists the sequence numbers made durable; the agent drops only
// those and retries the rest.
type EventAck struct {
	Acked []uint64 `json:"acked"`
}

// IngestBatch is what a relay sends upstream to a collector.
type IngestBatch struct {
	Relay   string   `json:"relay,omitempty"`
	Records []Record `json:"records"`
}

// IngestAck is the collector's answer once the batch is durable.
type IngestAck struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// CollectorStats is the collector's per-agent view for loss checks.
type CollectorStats struct {
	Received   map[string]uint64 `json:"received"` // distinct records per agent
	Duplicates uint64            `json:"duplicates"`
	Total      uint64            `json:"total"`
}

// Manifest lists the releases a relay serves to agents.
type Manifest struct {
	Latest   string    `json:"latest"`
	Releases []Release `json:"releases"`
}

// Release is one downloadable version.
type Release struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	URL     string `json:"url"`
	// Signature is the hex ed25519 signature of store.ReleaseMessage
	// (version, SHA-256) by the release signing key; "" when unsigned,
	// which a relay refuses to stage.
	Signature string `json:"signature,omitempty"`
}

// JoinRequest is sent once by a relay on another host.
type JoinRequest struct {
	Token    string   `json:"token"`
	Hostname string   `json:"hostname"`
	IP       string   `json:"ip"`
	Version  string   `json:"version"`
	Listen   []string `json:"listen,omitempty"`
}

// JoinResponse gives the relay its own credentials and a server
// certificate signed by the management host's CA, so agents that pin the CA
// fingerprint trust every relay of the fleet.
type JoinResponse struct {
	ProxyID int64    `json:"proxy_id"`
	Secret  string   `json:"secret"`
	Cluster string   `json:"cluster"`
	Policy  Policy   `json:"policy"`
	CACert  string   `json:"ca_cert"` // PEM
	Cert    string   `json:"cert"`    // PEM, leaf then CA
	Key     string   `json:"key"`     // PEM
	Direct  []string `json:"direct"`  // management host URLs (unbind target)
	// ReleaseKey is the release public key (hex ed25519), "" while none
	// is set; the relay verifies release signatures with it.
	ReleaseKey string `json:"release_key,omitempty"`
}

// AuthRequest lets a joined relay check an agent's credentials with the
// management host (which alone holds the hashes); it caches the answer.
type AuthRequest struct {
	Agent  string `json:"agent"`
	Secret string `json:"secret"`
}

// AuthResponse tells a joined relay who the agent is.
type AuthResponse struct {
	Agent     string `json:"agent"`
	Account   int64  `json:"account"`
	Cluster   int64  `json:"cluster"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// Policy is the cluster's transmission policy as a relay applies it.
type Policy struct {
	Mode         Mode   `json:"mode"`                // forward | cache
	BandwidthBps int64  `json:"bandwidth_bps"`       // 0 = unlimited
	FrequencyRPS int64  `json:"frequency_rps"`       // 0 = unlimited
	CacheDir     string `json:"cache_dir,omitempty"` // cache mode
	CacheMax     int64  `json:"cache_max,omitempty"` // bytes
	Upstream     string `json:"upstream,omitempty"`  // forward mode target
}

// HeartbeatRequest is a relay's periodic report.
type HeartbeatRequest struct {
	Version   string          `json:"version"`
	Load      float64         `json:"load"`
	Agents    int             `json:"agents"`
	SpoolSize int64           `json:"spool_bytes"`
	Acked     []int64         `json:"acked,omitempty"`
	Results   []CommandResult `json:"results,omitempty"`
	// URLs are what the relay advertises to agents now (--public, else its
	// usable listeners), so a restart with other flags updates the list
	// the management host hands out.
	URLs []string `json:"urls,omitempty"`
}

// HeartbeatResponse carries commands for the relay and its current policy.
type HeartbeatResponse struct {
	Commands []Command `json:"commands,omitempty"`
	Policy   Policy    `json:"policy"`
	// ReleaseKey as in JoinResponse, for a relay that joined before the
	// key was made.
	ReleaseKey string `json:"release_key,omitempty"`
	// ReleaseKeys is the whole chain, for a relay that trusts an older key.
	ReleaseKeys []ReleaseKeyLink `json:"release_keys,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

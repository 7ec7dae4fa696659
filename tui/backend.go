package tui

import (
	"context"
	"time"

	"outpost/store"
)

// Backend is the part of the store the dashboard uses. *store.DB satisfies
// it; tests may wrap it to inject failures. Every call runs inside a
// tea.Cmd (see Common.Call), never in Update.
type Backend interface {
	// Accounts and settings
	ListAccounts(ctx context.Context) ([]store.Account, error)
	FindAccount(ctx context.Context, name string) (store.Account, error)
	Settings() store.Settings
	ReloadSettings(ctx context.Context) (changed bool, err error)
	SetSettings(ctx context.Context, s store.Settings) error
	ListAudit(ctx context.Context, limit int) ([]store.AuditEntry, error)
	ListAuditPage(ctx context.Context, offset, limit int) (store.AuditPage, error)

	// Clusters
	ListClusters(ctx context.Context, accountID int64) ([]store.Cluster, error)
	GetCluster(ctx context.Context, id int64) (store.Cluster, error)
	CreateCluster(ctx context.Context, in store.ClusterInput) (store.Cluster, error)
	SetPolicy(ctx context.Context, id int64, p store.Policy) (store.Cluster, error)
	DeleteCluster(ctx context.Context, id int64) error

	// Proxy servers
	ListProxies(ctx context.Context, clusterID int64) ([]store.Proxy, error)
	GetProxy(ctx context.Context, id int64) (store.Proxy, error)
	CreateJoinToken(ctx context.Context, clusterID int64, deploy store.DeployKind, assetID string, ttl time.Duration) (store.JoinToken, error)
	UpgradeProxy(ctx context.Context, id int64) (string, error)
	DeleteProxy(ctx context.Context, id int64) error
	ProxyURLs(ctx context.Context, clusterID int64) ([]string, error)
	LatestRelease(ctx context.Context) (string, error)

	// Agents
	CountAgents(ctx context.Context, accountID int64) (store.AgentCounts, error)
	ListAgents(ctx context.Context, f store.AgentFilter) (store.AgentPage, error)
	GetAgent(ctx context.Context, id string) (store.Agent, error)
	DiagnoseAgent(ctx context.Context, id string) (store.AgentDiagnosis, error)
	ListCommands(ctx context.Context, kind store.TargetKind, target string, limit int) ([]store.Command, error)
	FindAgent(ctx context.Context, accountID int64, host string) (store.Agent, error)
	Bind(ctx context.Context, clusterID int64, hosts []string) (store.BindResult, error)
	Unbind(ctx context.Context, clusterID int64, hosts []string, all bool) ([]string, error)
	Uninstall(ctx context.Context, accountID int64, hosts []string) ([]string, error)

	// Install commands
	CreateInstallCommand(ctx context.Context, in store.InstallInput) (store.InstallCommand, error)
	ListInstallCommands(ctx context.Context, accountID int64) ([]store.InstallCommand, error)
	RevokeInstallCommand(ctx context.Context, accountID, id int64) error
}

var _ Backend = (*store.DB)(nil)

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"time"

	"outpost/relay/wire"
)

// DeployKind is how a proxy server was deployed (seed 000, step 2).
type DeployKind string

// Proxy deployment kinds.
const (
	DeployQuick  DeployKind = "quick"  // onto an online Linux asset that runs the agent
	DeployManual DeployKind = "manual" // the operator runs a generated command
)

// DefaultJoinTTL is how long a deploy command stays valid.
const DefaultJoinTTL = time.Hour

// CreateJoinToken starts a proxy deployment. Manual deployment returns a
// one-time token for the generated command; quick deployment also queues a
// deploy-proxy command for the chosen asset (an online Linux agent of the
// cluster's account). An IP-address cluster that already has its one proxy
// server is refused here so the operator learns early.
func (db *DB) CreateJoinToken(ctx context.Context, clusterID int64, deploy DeployKind, assetID string, ttl time.Duration) (JoinToken, error) {
	return db.createJoinToken(ctx, clusterID, deploy, assetID, ttl, RelayOptions{})
}

// RelayOptions are the --listen and --public values a quick deployment
// hands to the relay the agent starts (empty: the relay's defaults).
type RelayOptions struct {
	Listen []string `json:"listen,omitempty"`
	Public []string `json:"public,omitempty"`
}

func (o RelayOptions) validate() error {
	for _, l := range o.Listen {
		hp := strings.TrimPrefix(strings.TrimPrefix(l, "https://"), "http://")
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return Errorf(EInvalid, "--listen %q: want https://HOST:PORT or http://HOST:PORT", l)
		}
	}
	for _, u := range o.Public {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return Errorf(EInvalid, "--public %q: want a URL such as https://relay.example.com:8443", u)
		}
	}
	return nil
}

// CreateQuickDeploy is CreateJoinToken for a quick deployment onto an
// asset, with the listeners and public URLs of the relay to start.
func (db *DB) CreateQuickDeploy(ctx context.Context, clusterID int64, assetID string, ttl time.Duration, o RelayOptions) (JoinToken, error) {
	if err := o.validate(); err != nil {
		return JoinToken{}, err
	}
	return db.createJoinToken(ctx, clusterID, DeployQuick, assetID, ttl, o)
}

func (db *DB) createJoinToken(ctx context.Context, clusterID int64, deploy DeployKind, assetID string, ttl time.Duration, o RelayOptions) (JoinToken, error) {
	if ttl <= 0 {
		ttl = DefaultJoinTTL
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return JoinToken{}, err
	}
	defer tx.Rollback()
	c, err := getCluster(tx, clusterID)
	if err != nil {
		return JoinToken{}, err
	}
	if c.AddressKind == AddressIP && c.Proxies > 0 {
		return JoinToken{}, Errorf(ELimit, "cluster %q uses an IP address and already has its one proxy server; use a domain-name cluster for several", c.Name)
	}
	var asset any
	switch deploy {
	case DeployManual:
		if assetID != "" {
			return JoinToken{}, Errorf(EInvalid, "manual deployment takes no asset")
		}
	case DeployQuick:
		a, err := getAgent(tx, assetID)
		if err != nil {
			return JoinToken{}, err
		}
		if a.AccountID != c.AccountID {
			return JoinToken{}, Errorf(EForbidden, "asset %s belongs to another account than cluster %q", a.Hostname, c.Name)
		}
		if !a.Online {
			return JoinToken{}, Errorf(EConflict, "asset %s is offline: quick deployment needs an online agent (use --manual otherwise)", a.Hostname)
		}
		if a.OS != wire.OSLinux {
			return JoinToken{}, Errorf(EInvalid, "asset %s runs %s: quick deployment needs a Linux server", a.Hostname, a.OS)
		}
		asset = a.ID
	default:
		return JoinToken{}, Errorf(EInvalid, "deploy mode %q: want quick or manual", deploy)
	}
	token := NewSecret("jt_")
	res, err := tx.exec(`INSERT INTO join_tokens (cluster_id, token_hash, deploy, asset_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		clusterID, HashSecret(token), deploy, asset, ms(tx.now.Add(ttl)), ms(tx.now))
	if err != nil {
		return JoinToken{}, err
	}
	id, _ := res.LastInsertId()
	jt := JoinToken{ID: id, ClusterID: clusterID, Cluster: c.Name, Token: token, Deploy: deploy, AssetID: assetID, ExpiresAt: tx.now.Add(ttl)}
	if deploy == DeployQuick {
		// The command names the token, never holds it: the relay issues a
		// fresh secret when it delivers the command (IssueJoinToken), so no
		// plain token is ever stored.
		payload, _ := json.Marshal(map[string]any{"join_token": id, "cluster": c.Name, "listen": o.Listen, "public": o.Public})
		if jt.CommandID, err = enqueueID(tx, TargetAgent, assetID, wire.CmdDeployProxy, string(payload)); err != nil {
			return JoinToken{}, err
		}
		jt.Token = ""
	}
	if err := tx.audit("proxy.deploy", clusterTarget(c), "mode=%s asset=%s expires=%s", deploy, assetID, jt.ExpiresAt.Format(time.RFC3339)); err != nil {
		return JoinToken{}, err
	}
	return jt, tx.Commit()
}

// IssueJoinToken gives a quick-deployment join token a new secret and
// returns it, at the moment its deploy-proxy command is delivered to the
// asset; a redelivery replaces the previous secret.
func (db *DB) IssueJoinToken(ctx context.Context, id int64) (string, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	token := NewSecret("jt_")
	res, err := tx.exec(`UPDATE join_tokens SET token_hash = ? WHERE id = ? AND used_at = 0 AND expires_at > ?`, HashSecret(token), id, ms(tx.now))
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", Errorf(EConflict, "join token %d was used or has expired: deploy again", id)
	}
	return token, tx.Commit()
}

// JoinInput is what a relay reports when it joins.
type JoinInput struct {
	Token    string
	Hostname string
	IP       string
	Version  string
	URLs     []string
}

// JoinProxy redeems a one-time join token and registers the relay as a
// proxy server; it returns the relay's own secret (shown once).
func (db *DB) JoinProxy(ctx context.Context, in JoinInput) (Proxy, string, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Proxy{}, "", err
	}
	defer tx.Rollback()
	var id, clusterID, expires, used int64
	var deploy DeployKind
	var asset sql.NullString
	err = tx.queryRow(`SELECT id, cluster_id, deploy, asset_id, expires_at, used_at FROM join_tokens WHERE token_hash = ?`, HashSecret(in.Token)).
		Scan(&id, &clusterID, &deploy, &asset, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return Proxy{}, "", Errorf(EUnauthorized, "join token not recognised")
	} else if err != nil {
		return Proxy{}, "", err
	}
	if used != 0 {
		return Proxy{}, "", Errorf(EUnauthorized, "join token was already used")
	}
	if ms(tx.now) >= expires {
		return Proxy{}, "", Errorf(EUnauthorized, "join token expired at %s", fromMS(expires).Format(time.RFC3339))
	}
	if strings.TrimSpace(in.Hostname) == "" {
		return Proxy{}, "", Errorf(EInvalid, "hostname is required")
	}
	if err := checkRelayURLs(in.URLs); err != nil {
		return Proxy{}, "", err
	}
	c, err := getCluster(tx, clusterID)
	if err != nil {
		return Proxy{}, "", err
	}
	if c.AddressKind == AddressIP && c.Proxies > 0 {
		return Proxy{}, "", Errorf(ELimit, "cluster %q uses an IP address and already has its one proxy server", c.Name)
	}
	secret := NewSecret("rs_")
	res, err := tx.exec(`INSERT INTO proxies (cluster_id, hostname, ip, version, deploy, asset_id, secret_hash, urls, created_at, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, clusterID, in.Hostname, in.IP, in.Version, deploy, asset, HashSecret(secret),
		strings.Join(in.URLs, ","), ms(tx.now), ms(tx.now))
	if err != nil {
		return Proxy{}, "", err
	}
	pid, _ := res.LastInsertId()
	if _, err := tx.exec(`UPDATE join_tokens SET used_at = ?, proxy_id = ? WHERE id = ?`, ms(tx.now), pid, id); err != nil {
		return Proxy{}, "", err
	}
	target, err := proxyTarget(tx, clusterID, pid)
	if err != nil {
		return Proxy{}, "", err
	}
	if err := tx.audit("proxy.join", target, "proxy=%d cluster=%s host=%s ip=%s version=%s", pid, c.Name, in.Hostname, in.IP, in.Version); err != nil {
		return Proxy{}, "", err
	}
	p, err := getProxy(tx, pid)
	if err != nil {
		return Proxy{}, "", err
	}
	return p, secret, tx.Commit()
}

package store

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Proxy deployment modes (seed 000, step 2).
const (
	DeployQuick  = "quick"  // onto an online Linux asset that runs the agent
	DeployManual = "manual" // the operator runs a generated command
)

// DefaultJoinTTL is how long a deploy command stays valid.
const DefaultJoinTTL = time.Hour

// CreateJoinToken starts a proxy deployment. Manual deployment returns a
// one-time token for the generated command; quick deployment also queues a
// deploy-proxy command for the chosen asset (an online Linux agent of the
// cluster's account). An IP-address cluster that already has its one proxy
// server is refused here so the operator learns early.
func (db *DB) CreateJoinToken(ctx context.Context, clusterID int64, deploy, assetID string, ttl time.Duration) (JoinToken, error) {
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

func (db *DB) createJoinToken(ctx context.Context, clusterID int64, deploy, assetID string, ttl time.Duration, o RelayOptions) (JoinToken, error) {
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
	if c.AddressKind == "ip" && c.Proxies > 0 {
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
		if a.OS != "linux" {
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
		if jt.CommandID, err = enqueueID(tx, TargetAgent, assetID, "deploy-proxy", string(payload)); err != nil {
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
	var deploy string
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
	if c.AddressKind == "ip" && c.Proxies > 0 {
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

const proxyCols = `p.id, p.cluster_id, c.name, p.hostname, p.ip, p.version, p.deploy, COALESCE(p.asset_id, ''), p.urls,
	p.created_at, p.last_seen, p.agents, p.load`

func scanProxy(tx *Tx, sc interface{ Scan(...any) error }, latest string) (Proxy, error) {
	var p Proxy
	var created, seen int64
	var urls string
	if err := sc.Scan(&p.ID, &p.ClusterID, &p.Cluster, &p.Hostname, &p.IP, &p.Version, &p.Deploy, &p.AssetID, &urls,
		&created, &seen, &p.Agents, &p.Load); err != nil {
		return p, err
	}
	if urls != "" {
		p.URLs = strings.Split(urls, ",")
	}
	p.CreatedAt, p.LastSeen = fromMS(created), fromMS(seen)
	p.Status = StatusOffline
	if !p.LastSeen.IsZero() && tx.now.Sub(p.LastSeen) <= tx.db.Settings().ProxyOfflineAfter {
		p.Status = StatusOnline
	}
	if p.AssetID != "" {
		// A quick-deployed proxy is Protected exactly while its host's
		// agent is: not once that agent is offline or uninstalled.
		a, err := getAgent(tx, p.AssetID)
		if err != nil && ErrorCode(err) != ENotFound {
			return p, err
		}
		p.Protected = err == nil && a.SecurityStatus == Protected
		p.AssetStatus = a.Status
	}
	p.Upgrade = p.Status == StatusOnline && latest != "" && CompareVersions(p.Version, latest) < 0
	return p, nil
}

func getProxy(tx *Tx, id int64) (Proxy, error) {
	latest, err := latestVersion(tx)
	if err != nil {
		return Proxy{}, err
	}
	p, err := scanProxy(tx, tx.queryRow(`SELECT `+proxyCols+` FROM proxies p JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?`, id), latest)
	if errors.Is(err, sql.ErrNoRows) {
		return p, Errorf(ENotFound, "proxy server %d not found", id)
	}
	return p, err
}

// GetProxy returns one proxy server.
func (db *DB) GetProxy(ctx context.Context, id int64) (Proxy, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Proxy{}, err
	}
	defer tx.Rollback()
	p, err := getProxy(tx, id)
	if err != nil {
		return p, err
	}
	ps := []Proxy{p}
	err = fillProxyCommands(tx, ps)
	return ps[0], err
}

// ListProxies lists proxy servers; clusterID 0 lists all.
func (db *DB) ListProxies(ctx context.Context, clusterID int64) ([]Proxy, error) {
	return db.FindProxies(ctx, ProxyFilter{ClusterID: clusterID})
}

// ProxyFilter selects proxy servers. Zero values mean "any".
type ProxyFilter struct {
	ClusterID int64
	AccountID int64 // the proxies of this account's clusters
}

// FindProxies lists the proxy servers f selects, by cluster name then id.
func (db *DB) FindProxies(ctx context.Context, f ProxyFilter) ([]Proxy, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	latest, err := latestVersion(tx)
	if err != nil {
		return nil, err
	}
	rows, err := tx.query(`SELECT `+proxyCols+` FROM proxies p JOIN clusters c ON c.id = p.cluster_id
		WHERE (? = 0 OR p.cluster_id = ?) AND (? = 0 OR c.account_id = ?) ORDER BY c.name, p.id`,
		f.ClusterID, f.ClusterID, f.AccountID, f.AccountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Proxy
	for rows.Next() {
		p, err := scanProxy(tx, rows, latest)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, fillProxyCommands(tx, out)
}

// AuthProxy checks a relay's credentials in constant time.
func (db *DB) AuthProxy(ctx context.Context, id int64, secret string) (Proxy, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Proxy{}, err
	}
	defer tx.Rollback()
	var hash string
	err = tx.queryRow(`SELECT secret_hash FROM proxies WHERE id = ?`, id).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !SecretMatches(secret, hash)) {
		return Proxy{}, Errorf(EUnauthorized, "relay credentials not recognised")
	} else if err != nil {
		return Proxy{}, err
	}
	return getProxy(tx, id)
}

// Heartbeat records that a relay is alive, with its version and load.
func (db *DB) Heartbeat(ctx context.Context, id int64, version string, load float64, agents int) error {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(`UPDATE proxies SET last_seen = ?, version = ?, load = ?, agents = ? WHERE id = ?`, ms(tx.now), version, load, agents, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Errorf(ENotFound, "proxy server %d not found", id)
	}
	return tx.Commit()
}

// DeleteProxy removes a proxy server. Only an offline proxy can be deleted
// (seed 000): the operator stops the relay process first.
func (db *DB) DeleteProxy(ctx context.Context, id int64) error {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	p, err := getProxy(tx, id)
	if err != nil {
		return err
	}
	if p.Status == StatusOnline {
		// Say how long: right after a stop the proxy still counts as online
		// until ProxyOfflineAfter has passed since its last heartbeat.
		after := tx.db.Settings().ProxyOfflineAfter
		ago := tx.now.Sub(p.LastSeen).Truncate(time.Second)
		left := max((p.LastSeen.Add(after).Sub(tx.now) + time.Second - 1).Truncate(time.Second), time.Second) // rounded up
		return &Error{Code: EConflict, RetryAfter: left, Message: fmt.Sprintf("proxy server %d (%s) is still online (last heartbeat %s ago); "+
			"it counts as offline %s after its last heartbeat, in %s; stop its relay first (kill the outpost relay PID), then delete it",
			p.ID, p.Hostname, ago, after, left)}
	}
	sid := strconv.FormatInt(id, 10)
	if _, err := tx.exec(`DELETE FROM commands WHERE target_kind = 'proxy' AND target_id = ?`, sid); err != nil {
		return err
	}
	if _, err := tx.exec(`DELETE FROM proxies WHERE id = ?`, id); err != nil {
		return sqlErr(err, "proxy server "+sid)
	}
	target, err := proxyTarget(tx, p.ClusterID, id)
	if err != nil {
		return err
	}
	if err := tx.audit("proxy.delete", target, "cluster=%s host=%s", p.Cluster, p.Hostname); err != nil {
		return err
	}
	return tx.Commit()
}

// UpgradeProxy queues an upgrade to the latest release. Possible only when
// the proxy is online and older than the latest release (seed 000).
func (db *DB) UpgradeProxy(ctx context.Context, id int64) (string, error) {
	return db.upgradeProxy(ctx, id, false)
}

// ForceUpgradeProxy queues an upgrade to the latest release even when the
// proxy already runs it or a newer version (a downgrade, such as back from
// a bad release after deleting it). The command says so, for the relay,
// which otherwise refuses a version not newer than its own; the audit entry
// is proxy.upgrade.force.
func (db *DB) ForceUpgradeProxy(ctx context.Context, id int64) (string, error) {
	return db.upgradeProxy(ctx, id, true)
}

func (db *DB) upgradeProxy(ctx context.Context, id int64, force bool) (string, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	p, err := getProxy(tx, id)
	if err != nil {
		return "", err
	}
	latest, err := latestVersion(tx)
	if err != nil {
		return "", err
	}
	switch {
	case p.Status != StatusOnline:
		return "", Errorf(EConflict, "proxy server %d (%s) is offline: bring it online before upgrading", p.ID, p.Hostname)
	case latest == "":
		return "", Errorf(EConflict, "no release is published")
	case force:
	case CompareVersions(p.Version, latest) == 0:
		return "", Errorf(EConflict, "proxy server %d (%s) already runs %s, the latest release", p.ID, p.Hostname, p.Version)
	case CompareVersions(p.Version, latest) > 0:
		return "", Errorf(EConflict, "proxy server %d (%s) runs %s, newer than the latest release %s: nothing to upgrade to", p.ID, p.Hostname, p.Version, latest)
	}
	if c, ok, err := openCommand(tx, TargetProxy, strconv.FormatInt(id, 10), "upgrade"); err != nil {
		return "", err
	} else if ok {
		return "", Errorf(EConflict, "proxy server %d (%s) has an upgrade under way (command %d, %s): wait for it to end", p.ID, p.Hostname, c.ID, c.Describe())
	}
	args := map[string]any{"version": latest}
	action := "proxy.upgrade"
	if force {
		args["force"] = true
		action = "proxy.upgrade.force"
	}
	payload, _ := json.Marshal(args)
	if err := enqueue(tx, "proxy", strconv.FormatInt(id, 10), "upgrade", string(payload)); err != nil {
		return "", err
	}
	target, err := proxyTarget(tx, p.ClusterID, id)
	if err != nil {
		return "", err
	}
	if err := tx.audit(action, target, "from=%s to=%s", p.Version, latest); err != nil {
		return "", err
	}
	return latest, tx.Commit()
}

// ReleaseDir is where release packages live: DATA/releases/VERSION beside
// the database, served by every relay at /v1/update/package/VERSION.
func (db *DB) ReleaseDir() string { return filepath.Join(filepath.Dir(db.Path), "releases") }

// AddRelease records a release whose package is already in ReleaseDir
// under its version, with that package's SHA-256 (64 hex digits). The
// version must be a semantic version; a leading "v" is dropped. Most
// callers want PublishRelease, which puts the package there.
func (db *DB) AddRelease(ctx context.Context, r Release) error {
	v, err := ParseVersion(r.Version)
	if err != nil {
		return err
	}
	r.Version = v.String()
	if !sha256RE.MatchString(r.SHA256) {
		return Errorf(EInvalid, "release %s needs the SHA-256 of its package (64 hex digits): publish it with 'outpost release add VERSION --file PATH'", r.Version)
	}
	r.SHA256 = strings.ToLower(r.SHA256)
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := addRelease(tx, r); err != nil {
		return err
	}
	return tx.Commit()
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func addRelease(tx *Tx, r Release) error {
	if r.PublishedAt.IsZero() {
		r.PublishedAt = tx.now
	}
	if _, err := tx.exec(`INSERT INTO releases (version, sha256, signature, notes, published_at) VALUES (?, ?, ?, ?, ?)`,
		r.Version, r.SHA256, r.Signature, r.Notes, ms(r.PublishedAt)); err != nil {
		return sqlErr(err, "release "+r.Version+" already exists")
	}
	if r.Signature != "" {
		return tx.audit("release.add", "release/"+r.Version, "sha256=%s signed", r.SHA256)
	}
	return tx.audit("release.add", "release/"+r.Version, "sha256=%s", r.SHA256)
}

// PublishRelease publishes a release with its package: the file at pkg is
// copied to ReleaseDir()/VERSION and its SHA-256 recorded. The version is
// normalised as in AddRelease (r.Version of the result). On any refusal
// or error neither the row nor the file is left behind.
func (db *DB) PublishRelease(ctx context.Context, r Release, pkg string) (Release, error) {
	return db.publishRelease(ctx, r, pkg, nil)
}

// publishRelease is PublishRelease; with a signing key (see
// PublishSignedRelease) it checks the key against the stored public key in
// the same transaction and signs the version and the SHA-256 it computed.
func (db *DB) publishRelease(ctx context.Context, r Release, pkg string, priv ed25519.PrivateKey) (Release, error) {
	v, err := ParseVersion(r.Version)
	if err != nil {
		return r, err
	}
	r.Version = v.String()
	src, err := os.Open(pkg)
	if err != nil {
		return r, Errorf(EInvalid, "release %s: package: %v", r.Version, err)
	}
	defer src.Close()
	if st, err := src.Stat(); err != nil || !st.Mode().IsRegular() {
		return r, Errorf(EInvalid, "release %s: package %s is not a regular file", r.Version, pkg)
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return r, err
	}
	defer tx.Rollback()
	if priv != nil {
		if err := checkSigningKey(tx, priv); err != nil {
			return r, err
		}
	}
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM releases WHERE version = ?`, r.Version).Scan(&n); err != nil {
		return r, err
	} else if n > 0 {
		return r, Errorf(EConflict, "release %s already exists", r.Version)
	}
	dir := db.ReleaseDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	dst := filepath.Join(dir, r.Version)
	if dt, err := os.Lstat(dst); err == nil {
		st, _ := src.Stat()
		if !os.SameFile(st, dt) {
			return r, Errorf(EConflict, "release %s: %s already exists but no release names it: move it away first", r.Version, dst)
		}
		// The package is already in place (put there by hand): record it.
		h := sha256.New()
		if _, err := io.Copy(h, src); err != nil {
			return r, fmt.Errorf("release %s: read the package: %w", r.Version, err)
		}
		r.SHA256 = hex.EncodeToString(h.Sum(nil))
		r.Signature = signRelease(priv, r.Version, r.SHA256)
		if err := addRelease(tx, r); err != nil {
			return r, err
		}
		if r.PublishedAt.IsZero() {
			r.PublishedAt = tx.now
		}
		return r, tx.Commit()
	}
	tmp, err := os.CreateTemp(dir, "."+r.Version+".*")
	if err != nil {
		return r, err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; the leftover on failure
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), src); err != nil {
		tmp.Close()
		return r, fmt.Errorf("release %s: copy the package: %w", r.Version, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return r, err
	}
	if err := tmp.Close(); err != nil {
		return r, err
	}
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	r.Signature = signRelease(priv, r.Version, r.SHA256)
	if err := addRelease(tx, r); err != nil {
		return r, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return r, err
	}
	if err := tx.Commit(); err != nil {
		os.Remove(dst)
		return r, err
	}
	if r.PublishedAt.IsZero() {
		r.PublishedAt = tx.now
	}
	return r, nil
}

// DeleteRelease removes a release and its package. A release that a
// proxy server or an agent is upgrading to (an upgrade command naming it
// is queued, delivered or running) is refused.
func (db *DB) DeleteRelease(ctx context.Context, version string) error {
	name := version
	if v, err := ParseVersion(version); err == nil {
		name = v.String()
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM releases WHERE version = ?`, name).Scan(&n); err != nil {
		return err
	} else if n == 0 {
		return Errorf(ENotFound, "release %s not found", version)
	}
	cmds, err := scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE type = 'upgrade' AND acked_at = 0 AND json_extract(payload, '$.version') = ? ORDER BY id`, name))
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c = derive(c, tx.now); c.State != CommandFailed {
			who := "proxy server " + c.TargetID
			if c.TargetKind == TargetAgent {
				who = "agent " + c.TargetID
			}
			return Errorf(EConflict, "release %s: %s is upgrading to it (command %d, %s): wait until that upgrade ends",
				name, who, c.ID, c.Describe())
		}
	}
	if _, err := tx.exec(`DELETE FROM releases WHERE version = ?`, name); err != nil {
		return err
	}
	if err := tx.audit("release.delete", "release/"+name, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	path := filepath.Join(db.ReleaseDir(), name)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s deleted, but its package stays: %w", name, err)
	}
	return nil
}

// ListReleases returns the published releases, newest version first.
func (db *DB) ListReleases(ctx context.Context) ([]Release, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT version, sha256, signature, notes, published_at FROM releases`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var at int64
		if err := rows.Scan(&r.Version, &r.SHA256, &r.Signature, &r.Notes, &at); err != nil {
			return nil, err
		}
		r.PublishedAt = fromMS(at)
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return CompareVersions(out[i].Version, out[j].Version) > 0 })
	return out, rows.Err()
}

// LatestRelease returns the newest published version, "" when none.
func (db *DB) LatestRelease(ctx context.Context) (string, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	return latestVersion(tx)
}

func latestVersion(tx *Tx) (string, error) {
	rows, err := tx.query(`SELECT version FROM releases`)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	latest := ""
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", err
		}
		if latest == "" || CompareVersions(v, latest) > 0 {
			latest = v
		}
	}
	return latest, rows.Err()
}

// SecurityText is a proxy server's security for listings: "Protected"
// while its host's agent is, otherwise "proxy only", with why for a quick
// deployment ("proxy only (agent uninstalled)").
func (p Proxy) SecurityText() string {
	switch {
	case p.Protected:
		return Protected
	case p.AssetID == "" || p.AssetStatus == "":
		return "proxy only"
	}
	return "proxy only (agent " + p.AssetStatus + ")"
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"outpost/relay/wire"
)

// ClusterInput is what the operator gives at creation.
type ClusterInput struct {
	AccountID int64
	Name      string
	Address   string
	Region    string
	Remark    string
}

// CreateCluster creates a cluster with the default forward policy.
func (db *DB) CreateCluster(ctx context.Context, in ClusterInput) (Cluster, error) {
	in.Name = strings.TrimSpace(in.Name)
	if err := validName("cluster", in.Name); err != nil {
		return Cluster{}, err
	}
	kind, err := ClassifyAddress(in.Address)
	if err != nil {
		return Cluster{}, err
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Cluster{}, err
	}
	defer tx.Rollback()
	res, err := tx.exec(`INSERT INTO clusters (account_id, name, address, address_kind, region, remark, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, in.AccountID, in.Name, in.Address, kind, in.Region, in.Remark, ms(tx.now))
	if err != nil {
		if ErrorCode(sqlErr(err, "")) == EConflict && strings.Contains(err.Error(), "FOREIGN") {
			return Cluster{}, Errorf(ENotFound, "account %d not found", in.AccountID)
		}
		return Cluster{}, sqlErr(err, "cluster "+quote(in.Name)+" already exists in this account")
	}
	id, _ := res.LastInsertId()
	c, err := getCluster(tx, id)
	if err != nil {
		return Cluster{}, err
	}
	if err := tx.audit("cluster.create", clusterTarget(c), "id=%d address=%s region=%s", id, in.Address, in.Region); err != nil {
		return Cluster{}, err
	}
	return c, tx.Commit()
}

const clusterCols = `c.id, c.account_id, a.name, c.name, c.address, c.address_kind, c.region, c.remark, c.created_at,
	c.mode, c.bandwidth_bps, c.frequency_rps, c.cache_dir, c.cache_max, c.link_bps, c.upstream,
	(SELECT COUNT(*) FROM proxies p WHERE p.cluster_id = c.id),
	(SELECT COUNT(*) FROM proxies p WHERE p.cluster_id = c.id AND p.last_seen >= ?),
	(SELECT COUNT(*) FROM agents g WHERE g.cluster_id = c.id),
	(SELECT COUNT(*) FROM agents g WHERE g.cluster_id = c.id AND ` + liveSQL + `),
	(SELECT COUNT(*) FROM agents g WHERE g.cluster_id = c.id AND ` + liveSQL + `)`

func scanCluster(tx *Tx, sc interface{ Scan(...any) error }) (Cluster, error) {
	var c Cluster
	var at int64
	p := &c.Policy
	err := sc.Scan(&c.ID, &c.AccountID, &c.Account, &c.Name, &c.Address, &c.AddressKind, &c.Region, &c.Remark, &at,
		&p.Mode, &p.BandwidthBps, &p.FrequencyRPS, &p.CacheDir, &p.CacheMax, &p.LinkBps, &p.Upstream,
		&c.Proxies, &c.ProxiesOnline, &c.Agents, &c.AgentsOnline, &c.AgentsConnected)
	if err != nil {
		return c, err
	}
	c.CreatedAt = fromMS(at)
	c.Status = StatusOffline
	if c.ProxiesOnline > 0 {
		c.Status = StatusOnline
	}
	c.Warnings = Warnings(c.Policy, c.Agents, c.Proxies, c.ProxiesOnline)
	return c, nil
}

func (tx *Tx) clusterArgs() []any {
	s := tx.db.Settings()
	cut := tx.agentCutoffs()
	return []any{ms(tx.now.Add(-s.ProxyOfflineAfter)), cut.online, cut.grace, cut.connected, cut.grace}
}

func getCluster(tx *Tx, id int64) (Cluster, error) {
	row := tx.queryRow(`SELECT `+clusterCols+` FROM clusters c JOIN accounts a ON a.id = c.account_id WHERE c.id = ?`,
		append(tx.clusterArgs(), id)...)
	c, err := scanCluster(tx, row)
	if errors.Is(err, sql.ErrNoRows) {
		return c, Errorf(ENotFound, "cluster %d not found", id)
	}
	return c, err
}

// GetCluster returns one cluster with its derived status and counts.
func (db *DB) GetCluster(ctx context.Context, id int64) (Cluster, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Cluster{}, err
	}
	defer tx.Rollback()
	return getCluster(tx, id)
}

// FindCluster resolves a cluster by account and name. accountID 0 searches
// every account and refuses an ambiguous name.
func (db *DB) FindCluster(ctx context.Context, accountID int64, name string) (Cluster, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Cluster{}, err
	}
	defer tx.Rollback()
	return findCluster(tx, accountID, name)
}

func findCluster(tx *Tx, accountID int64, name string) (Cluster, error) {
	rows, err := tx.query(`SELECT id FROM clusters WHERE name = ? AND (? = 0 OR account_id = ?) LIMIT 2`, name, accountID, accountID)
	if err != nil {
		return Cluster{}, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return Cluster{}, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	switch len(ids) {
	case 0:
		return Cluster{}, Errorf(ENotFound, "cluster %q not found", name)
	case 1:
		return getCluster(tx, ids[0])
	}
	return Cluster{}, Errorf(EInvalid, "cluster name %q exists in several accounts: name one with --account", name)
}

// ListClusters returns clusters by name; accountID 0 lists every account.
func (db *DB) ListClusters(ctx context.Context, accountID int64) ([]Cluster, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT `+clusterCols+` FROM clusters c JOIN accounts a ON a.id = c.account_id
		WHERE (? = 0 OR c.account_id = ?) ORDER BY a.name, c.name`, append(tx.clusterArgs(), accountID, accountID)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		c, err := scanCluster(tx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteCluster deletes an empty cluster. The deletion order of seed 000 is
// enforced here: bound agents first, then proxy servers, then the cluster;
// the refusal names what is left and what to do.
func (db *DB) DeleteCluster(ctx context.Context, id int64) error {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	c, err := getCluster(tx, id)
	if err != nil {
		return err
	}
	var left []string
	if c.Agents > 0 {
		left = append(left, fmt.Sprintf("%d bound agent(s) (unbind them: outpost agent unbind --cluster %s --all)", c.Agents, c.Name))
	}
	if c.Proxies > 0 {
		left = append(left, fmt.Sprintf("%d proxy server(s) (stop each relay, then: outpost proxy delete ID)", c.Proxies))
	}
	if len(left) > 0 {
		return Errorf(EConflict, "cluster %q still has %s", c.Name, strings.Join(left, " and "))
	}
	if _, err := tx.exec(`DELETE FROM commands WHERE target_kind = 'proxy' AND target_id IN (SELECT CAST(id AS TEXT) FROM proxies WHERE cluster_id = ?)`, id); err != nil {
		return err
	}
	if _, err := tx.exec(`DELETE FROM clusters WHERE id = ?`, id); err != nil {
		return sqlErr(err, "cluster "+quote(c.Name))
	}
	if err := tx.audit("cluster.delete", clusterTarget(c), "id=%d", c.ID); err != nil {
		return err
	}
	return tx.Commit()
}

// NormalizePolicy fills defaults and validates a policy; it refuses a cache
// cap above 10 GB rather than silently clamping it.
func NormalizePolicy(p Policy, clusterName string) (Policy, error) {
	if p.Mode == "" {
		p.Mode = wire.ModeForward
	}
	if p.BandwidthBps < 0 || p.FrequencyRPS < 0 || p.LinkBps < 0 || p.CacheMax < 0 {
		return p, Errorf(EInvalid, "policy limits must not be negative")
	}
	switch p.Mode {
	case wire.ModeForward:
		p.CacheDir, p.CacheMax = "", 0
		if p.Upstream != "" {
			u, err := url.Parse(p.Upstream)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return p, Errorf(EInvalid, "upstream %q: want an http:// or https:// URL", p.Upstream)
			}
		}
	case wire.ModeCache:
		if p.CacheMax == 0 {
			p.CacheMax = MaxCacheBytes
		}
		if p.CacheMax > MaxCacheBytes {
			return p, Errorf(ELimit, "cache-max %s exceeds the maximum of 10 GB", FormatBytes(p.CacheMax))
		}
		if p.CacheMax < MinCacheBytes {
			// Say it in bytes: "64KB" (decimal, 64,000) is below 64 KiB.
			return p, Errorf(EInvalid, "cache-max %s (%d bytes) is below the minimum of 64 KiB (%d bytes)",
				FormatBytes(p.CacheMax), p.CacheMax, MinCacheBytes)
		}
		if p.CacheDir == "" {
			p.CacheDir = filepath.Join(DefaultCacheDir, clusterName)
		}
		if strings.ContainsRune(p.CacheDir, 0) || slices.Contains(strings.Split(filepath.ToSlash(p.CacheDir), "/"), "..") {
			return p, Errorf(EInvalid, "cache-dir %q must not contain '..'", p.CacheDir)
		}
		p.CacheDir = filepath.Clean(p.CacheDir)
		p.BandwidthBps, p.FrequencyRPS, p.Upstream = 0, 0, ""
	default:
		_, err := wire.ParseMode(string(p.Mode))
		return p, Errorf(EInvalid, "policy %s", err)
	}
	return p, nil
}

// SetPolicy validates and applies a cluster policy; the cluster's relays
// receive it through their heartbeat and apply it without a restart.
func (db *DB) SetPolicy(ctx context.Context, id int64, p Policy) (Cluster, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Cluster{}, err
	}
	defer tx.Rollback()
	c, err := getCluster(tx, id)
	if err != nil {
		return Cluster{}, err
	}
	if p, err = NormalizePolicy(p, c.Name); err != nil {
		return Cluster{}, err
	}
	if _, err := tx.exec(`UPDATE clusters SET mode = ?, bandwidth_bps = ?, frequency_rps = ?, cache_dir = ?, cache_max = ?, link_bps = ?, upstream = ? WHERE id = ?`,
		p.Mode, p.BandwidthBps, p.FrequencyRPS, p.CacheDir, p.CacheMax, p.LinkBps, p.Upstream, id); err != nil {
		return Cluster{}, sqlErr(err, "policy")
	}
	payload, _ := json.Marshal(p)
	rows, err := tx.query(`SELECT id FROM proxies WHERE cluster_id = ?`, id)
	if err != nil {
		return Cluster{}, err
	}
	var proxies []int64
	for rows.Next() {
		var pid int64
		if err := rows.Scan(&pid); err != nil {
			rows.Close()
			return Cluster{}, err
		}
		proxies = append(proxies, pid)
	}
	rows.Close()
	for _, pid := range proxies {
		if err := enqueue(tx, TargetProxy, fmt.Sprint(pid), wire.CmdPolicy, string(payload)); err != nil {
			return Cluster{}, err
		}
	}
	if err := tx.audit("cluster.policy", clusterTarget(c), "mode=%s bandwidth=%s frequency=%d cache_dir=%s cache_max=%d link=%d upstream=%s",
		p.Mode, FormatBandwidth(p.BandwidthBps), p.FrequencyRPS, p.CacheDir, p.CacheMax, p.LinkBps, p.Upstream); err != nil {
		return Cluster{}, err
	}
	if c, err = getCluster(tx, id); err != nil {
		return Cluster{}, err
	}
	return c, tx.Commit()
}

// AgentsText is a cluster's agent counts for listings:
// "60/60 online, 0 connected now".
func (c Cluster) AgentsText() string {
	return fmt.Sprintf("%d/%d online, %d connected now", c.AgentsOnline, c.Agents, c.AgentsConnected)
}

// Audit targets name the account: cluster names, and so the objects inside
// clusters, are only unique within one account.
func clusterTarget(c Cluster) string { return "cluster/" + c.Account + "/" + c.Name }

// proxyTarget is "proxy/ACCOUNT/ID" for a proxy server of a cluster.
func proxyTarget(tx *Tx, clusterID, id int64) (string, error) {
	var acct string
	err := tx.queryRow(`SELECT a.name FROM clusters c JOIN accounts a ON a.id = c.account_id WHERE c.id = ?`, clusterID).Scan(&acct)
	return fmt.Sprintf("proxy/%s/%d", acct, id), err
}

// accountName names an account for audit targets.
func accountName(tx *Tx, id int64) (string, error) {
	var name string
	err := tx.queryRow(`SELECT name FROM accounts WHERE id = ?`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", Errorf(ENotFound, "account %d not found", id)
	}
	return name, err
}

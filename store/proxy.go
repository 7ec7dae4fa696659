package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

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

// SecurityText is a proxy server's security for listings: "Protected"
// while its host's agent is, otherwise "proxy only", with why for a quick
// deployment ("proxy only (agent uninstalled)").
func (p Proxy) SecurityText() string {
	switch {
	case p.Protected:
		return string(Protected)
	case p.AssetID == "" || p.AssetStatus == "":
		return "proxy only"
	}
	return "proxy only (agent " + string(p.AssetStatus) + ")"
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ProxyURLs returns the URLs a cluster's agents are handed (clusterURLs).
func (db *DB) ProxyURLs(ctx context.Context, clusterID int64) ([]string, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := getCluster(tx, clusterID); err != nil {
		return nil, err
	}
	return clusterURLs(tx, clusterID)
}

// clusterURLs is the relay list handed to a cluster's agents (enrolment,
// bind, install commands): the cluster's address first (seed 000: the
// proxy's IP, or a domain resolving to the proxies, a load balancer or a
// VIP) on the TLS port of the cluster's first relay (relays of a cluster
// normally share it; the first one joined keeps the choice stable), then
// each relay's own
// advertised URLs as fallbacks, most recently seen relay first, https
// before http. The store cannot know whether a relay accepts plain HTTP:
// it hands out what each relay advertised at join, and a relay advertises
// http:// URLs only when started with --allow-plain. Empty when no relay
// advertised anything.
func clusterURLs(tx *Tx, clusterID int64) ([]string, error) {
	var address string
	if err := tx.queryRow(`SELECT address FROM clusters WHERE id = ?`, clusterID).Scan(&address); err != nil {
		return nil, sqlErr(err, "cluster")
	}
	rows, err := tx.query(`SELECT id, urls FROM proxies WHERE cluster_id = ? AND urls != '' ORDER BY last_seen DESC, id`, clusterID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tls, plain []string
	var firstID int64
	var firstURL string // of the first relay joined: https if it has one
	for rows.Next() {
		var id int64
		var us string
		if err := rows.Scan(&id, &us); err != nil {
			return nil, err
		}
		for _, u := range strings.Split(us, ",") {
			u = strings.TrimRight(strings.TrimSpace(u), "/")
			if u == "" {
				continue
			}
			if firstURL == "" || id < firstID || (id == firstID && !strings.HasPrefix(firstURL, "https://") && strings.HasPrefix(u, "https://")) {
				firstID, firstURL = id, u
			}
			switch {
			case slices.Contains(tls, u) || slices.Contains(plain, u):
			case strings.HasPrefix(u, "https://"):
				tls = append(tls, u)
			default:
				plain = append(plain, u)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	relays := append(tls, plain...)
	if len(relays) == 0 {
		return nil, nil
	}
	first := clusterAddressURL(address, firstURL)
	if first == "" {
		return relays, nil
	}
	return append([]string{first}, slices.DeleteFunc(relays, func(u string) bool { return u == first })...), nil
}

// clusterAddressURL is the cluster's address with the scheme and port of a
// relay URL ("" when that URL does not parse).
func clusterAddressURL(address, relayURL string) string {
	u, err := url.Parse(relayURL)
	if err != nil || u.Host == "" || address == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.TrimSuffix(address, "."), port)
}

// SetProxyURLs records what a relay advertises now (sent with every
// heartbeat), so a relay restarted with another --public or --allow-plain
// changes the list agents are handed; a change is audited.
func (db *DB) SetProxyURLs(ctx context.Context, proxyID int64, urls []string) error {
	if err := checkRelayURLs(urls); err != nil {
		return err
	}
	joined := strings.Join(urls, ",")
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var old, cluster string
	var clusterID int64
	err = tx.queryRow(`SELECT p.urls, c.name, c.id FROM proxies p JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?`, proxyID).
		Scan(&old, &cluster, &clusterID)
	if errors.Is(err, sql.ErrNoRows) {
		return Errorf(ENotFound, "proxy server %d not found", proxyID)
	} else if err != nil {
		return err
	}
	if old == joined {
		return nil
	}
	if _, err := tx.exec(`UPDATE proxies SET urls = ? WHERE id = ?`, joined, proxyID); err != nil {
		return err
	}
	target, err := proxyTarget(tx, clusterID, proxyID)
	if err != nil {
		return err
	}
	if err := tx.audit("proxy.urls", target, "cluster=%s urls=%s (was %s)", cluster, joined, old); err != nil {
		return err
	}
	return tx.Commit()
}

// CheckRelayURL is the one rule for a URL a relay advertises (--public,
// join, heartbeat): http(s)://HOST:PORT with nothing else, http:// only
// when plain is allowed.
func CheckRelayURL(u string, plain bool) error {
	p, err := url.Parse(u)
	ok := err == nil && p.Hostname() != "" && p.Port() != "" && (p.Path == "" || p.Path == "/") && p.RawQuery == "" &&
		p.User == nil && p.Fragment == "" && !strings.Contains(u, ",") && len(u) <= 512 &&
		(p.Scheme == "https" || (p.Scheme == "http" && plain))
	if ok {
		if n, err := strconv.Atoi(p.Port()); err != nil || n < 1 || n > 65535 {
			ok = false
		}
	}
	if !ok {
		if err == nil && p.Scheme == "http" && !plain {
			return Errorf(EInvalid, "URL %q: agents need TLS (https://HOST:PORT)", u)
		}
		return Errorf(EInvalid, "URL %q: want https://HOST:PORT", u)
	}
	return nil
}

// checkRelayURLs checks what a relay reports (join, heartbeat). The store
// cannot know whether the relay runs with --allow-plain: the relay itself
// advertises http:// only then.
func checkRelayURLs(urls []string) error {
	if len(urls) > 16 {
		return Errorf(EInvalid, "a relay advertises at most 16 URLs")
	}
	for _, u := range urls {
		if err := CheckRelayURL(u, true); err != nil {
			return Errorf(EInvalid, "advertised %s", ErrorMessage(err))
		}
	}
	return nil
}

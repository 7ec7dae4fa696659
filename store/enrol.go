package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"outpost/relay/wire"
)

// HostFacts are what an agent reports about its machine.
type HostFacts struct {
	Hostname    string
	IPs         []string
	OS          wire.OS
	OSName      string
	Arch        string
	Provider    string
	Region      string
	Group       string
	Tags        []string
	Fingerprint string
	Version     string
}

// EnrolInput is an enrolment request as the relay received it.
type EnrolInput struct {
	Key        string
	Host       HostFacts
	Inventory  *Inventory
	ViaProxyID int64 // 0 = reached the management host directly
}

// Enrolment is the result: the new identity, shown once.
type Enrolment struct {
	Agent     Agent
	Secret    string
	ImageMode bool
	Proxies   []string // URLs of the cluster's proxies, when enrolled into one
}

// Enrol exchanges an install key (or an account verification key, for a
// direct agent) for an agent identity. Expired or revoked keys enrol
// nothing, and an agent can never enter a cluster of another account.
// Install-command enrolments into a cluster are admitted at most 500 per
// bind-batch gap (seed 000); the refusal carries a retry time.
func (db *DB) Enrol(ctx context.Context, in EnrolInput) (Enrolment, error) {
	h := in.Host
	if strings.TrimSpace(h.Hostname) == "" || strings.TrimSpace(h.Fingerprint) == "" {
		return Enrolment{}, Errorf(EInvalid, "host name and fingerprint are required")
	}
	if h.OS == "" {
		h.OS = wire.OSLinux
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Enrolment{}, err
	}
	defer tx.Rollback()

	k, err := lookupEnrolKey(tx, in.Key, h.OS)
	if err != nil {
		return Enrolment{}, err
	}
	if err := checkEnrolProxy(tx, in.ViaProxyID, k.accountID); err != nil {
		return Enrolment{}, err
	}
	if k.clusterID != 0 {
		if err := admitInstall(tx, k.clusterID); err != nil {
			return Enrolment{}, err
		}
	}
	if k.group != "" {
		h.Group = k.group
	}
	if k.provider != "" {
		h.Provider = k.provider
	}
	id := newAgentID()
	secret := NewSecret("as_")
	if err := insertAgent(tx, id, secret, h, k, in.ViaProxyID); err != nil {
		return Enrolment{}, err
	}
	if in.Inventory != nil {
		if err := writeInventory(tx, id, *in.Inventory, tx.now); err != nil {
			return Enrolment{}, err
		}
	}
	if k.icID != 0 {
		if _, err := tx.exec(`UPDATE install_commands SET uses = uses + 1 WHERE id = ?`, k.icID); err != nil {
			return Enrolment{}, err
		}
	}
	a, err := getAgent(tx, id)
	if err != nil {
		return Enrolment{}, err
	}
	e := Enrolment{Agent: a, Secret: secret, ImageMode: k.image}
	if k.clusterID != 0 {
		if e.Proxies, err = clusterURLs(tx, k.clusterID); err != nil {
			return Enrolment{}, err
		}
	}
	return e, tx.Commit()
}

// enrolKey is what an enrolment key grants: an install command's account,
// cluster and settings, or (icID 0) only an account, for a direct agent.
type enrolKey struct {
	accountID, icID, clusterID int64
	group, provider            string
	image                      bool
}

// lookupEnrolKey finds the install command (or account) of key and refuses
// a revoked or expired install command, or one made for another OS.
func lookupEnrolKey(tx *Tx, key string, hostOS wire.OS) (enrolKey, error) {
	var k enrolKey
	var expires, revoked int64
	var icOS wire.OS
	hash := HashSecret(key)
	err := tx.queryRow(`SELECT id, account_id, COALESCE(cluster_id, 0), expires_at, revoked_at, os, grp, provider, image_mode
		FROM install_commands WHERE key_hash = ?`, hash).Scan(&k.icID, &k.accountID, &k.clusterID, &expires, &revoked, &icOS, &k.group, &k.provider, &k.image)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := tx.queryRow(`SELECT id FROM accounts WHERE key_hash = ?`, hash).Scan(&k.accountID); errors.Is(err, sql.ErrNoRows) {
			return k, Errorf(EUnauthorized, "install key not recognised")
		} else if err != nil {
			return k, err
		}
	case err != nil:
		return k, err
	case revoked != 0:
		return k, Errorf(EForbidden, "install key was revoked: create a new install command")
	case ms(tx.now) >= expires:
		return k, Errorf(EForbidden, "install key expired at %s: create a new install command", fromMS(expires).Format(time.RFC3339))
	case icOS != hostOS:
		return k, Errorf(EInvalid, "install command is for %s, this host runs %s", icOS, hostOS)
	}
	return k, nil
}

// checkEnrolProxy refuses an enrolment through a proxy server that is not
// registered or belongs to another account; proxyID 0 is a direct one.
func checkEnrolProxy(tx *Tx, proxyID, accountID int64) error {
	if proxyID == 0 {
		return nil
	}
	var proxyAccount int64
	if err := tx.queryRow(`SELECT c.account_id FROM proxies p JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?`, proxyID).Scan(&proxyAccount); err != nil {
		return Errorf(EForbidden, "proxy server %d is not registered", proxyID)
	}
	if proxyAccount != accountID {
		return Errorf(EForbidden, "this proxy belongs to another account: an agent can only use its own account's clusters")
	}
	return nil
}

// insertAgent writes the new agent's row; zero ids are stored as NULL.
func insertAgent(tx *Tx, id, secret string, h HostFacts, k enrolKey, viaProxyID int64) error {
	var ic, cl, via any
	if k.icID != 0 {
		ic = k.icID
	}
	if k.clusterID != 0 {
		cl = k.clusterID
	}
	if viaProxyID != 0 {
		via = viaProxyID
	}
	_, err := tx.exec(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, hostname, ips, os, os_name, arch, provider, region, grp, tags,
		version, cluster_id, via_proxy_id, install_cmd_id, enrolled_at, last_checkin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, k.accountID, HashSecret(secret), h.Fingerprint, h.Hostname, strings.Join(h.IPs, ","), h.OS, h.OSName, h.Arch, h.Provider, h.Region,
		h.Group, strings.Join(h.Tags, ","), h.Version, cl, via, ic, ms(tx.now), ms(tx.now))
	return err
}

// admitInstall applies the 500-hosts-per-batch rule to install-command
// enrolments: at most BindBatchMax per BindBatchGap window per cluster.
func admitInstall(tx *Tx, clusterID int64) error {
	gap := tx.db.Settings().BindBatchGap
	var n, oldest int64
	if err := tx.queryRow(`SELECT COALESCE(SUM(hosts), 0), COALESCE(MIN(created_at), 0) FROM bind_batches
		WHERE cluster_id = ? AND source = 'install' AND created_at > ?`, clusterID, ms(tx.now.Add(-gap))).Scan(&n, &oldest); err != nil {
		return err
	}
	if n >= BindBatchMax {
		wait := fromMS(oldest).Add(gap).Sub(tx.now)
		return &Error{Code: ELimit, Message: fmt.Sprintf("cluster admits at most %d new hosts per %s: retry in %s", BindBatchMax, gap, wait.Round(time.Second)), RetryAfter: wait}
	}
	_, err := tx.exec(`INSERT INTO bind_batches (cluster_id, hosts, source, created_at) VALUES (?, 1, 'install', ?)`, clusterID, ms(tx.now))
	return err
}

func newAgentID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "ag_" + hex.EncodeToString(b)
}

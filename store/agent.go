package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"outpost/relay/wire"
)

// AgentAuth is what the relay needs to authorise an agent's call; the relay
// caches it so check-ins and events do not read the database.
type AgentAuth struct {
	ID          string
	AccountID   int64
	ClusterID   int64
	Fingerprint string
	SecretHash  string
	Duplicate   bool
}

// LookupAgentAuth returns an agent's credentials record. The caller compares
// the presented secret with SecretMatches.
func (db *DB) LookupAgentAuth(ctx context.Context, id string) (AgentAuth, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return AgentAuth{}, err
	}
	defer tx.Rollback()
	var a AgentAuth
	var dup string
	err = tx.queryRow(`SELECT id, account_id, COALESCE(cluster_id, 0), fingerprint, secret_hash, dup_fingerprint FROM agents WHERE id = ?`, id).
		Scan(&a.ID, &a.AccountID, &a.ClusterID, &a.Fingerprint, &a.SecretHash, &dup)
	if errors.Is(err, sql.ErrNoRows) {
		return a, Errorf(EUnauthorized, "agent credentials not recognised")
	}
	a.Duplicate = dup != ""
	return a, err
}

// AgentAccounts returns the account of each known agent among ids (an
// unknown id is absent), for checking a relay's ingest batch. An agent's
// account never changes, so callers may cache the answer.
func (db *DB) AgentAccounts(ctx context.Context, ids []string) (map[string]int64, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make(map[string]int64, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		if err := agentAccounts(tx, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func agentAccounts(tx *Tx, ids []string, out map[string]int64) error {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.query(`SELECT id, account_id FROM agents WHERE id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var acct int64
		if err := rows.Scan(&id, &acct); err != nil {
			return err
		}
		out[id] = acct
	}
	return rows.Err()
}

// ProxyAccount returns the account and cluster that a proxy server serves,
// so the relay can refuse agents of other accounts.
func (db *DB) ProxyAccount(ctx context.Context, proxyID int64) (accountID, clusterID int64, err error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	err = tx.queryRow(`SELECT c.account_id, c.id FROM proxies p JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?`, proxyID).Scan(&accountID, &clusterID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, Errorf(ENotFound, "proxy server %d not found", proxyID)
	}
	return accountID, clusterID, err
}

const agentCols = `g.id, g.account_id, g.hostname, g.ips, g.os, g.os_name, g.arch, g.provider, g.region, g.grp, g.tags, g.version,
	COALESCE(g.cluster_id, 0), COALESCE(c.name, ''), COALESCE(g.via_proxy_id, 0), g.fingerprint, g.dup_fingerprint, g.enrolled_at,
	g.last_checkin, g.last_inventory, g.processes, g.ports, g.root_users, g.users, g.vulns, g.baseline_risks, g.alerts, g.cpu, g.mem, g.uninstall_at,
	COALESCE((SELECT vp.hostname FROM proxies vp WHERE vp.id = g.via_proxy_id), '')`

// uninstalledSQL is the SQL form of Agent.Uninstalled for an agents row g;
// its one argument is the grace cut-off (agentCutoffs).
const uninstalledSQL = `(g.uninstall_at != 0 AND ((g.uninstall_at <= ? AND g.last_checkin <= g.uninstall_at) OR EXISTS (SELECT 1 FROM commands k
	WHERE k.target_kind = 'agent' AND k.target_id = g.id AND k.type = 'uninstall' AND k.state = 'done')))`

// liveSQL is the SQL form of Agent.Online (with the online cut-off) and of
// Agent.Connected (with the connected cut-off); arguments: (check-in
// cut-off, grace cut-off).
const liveSQL = `(g.last_checkin > ? AND NOT ` + uninstalledSQL + `)`

// agentCutoffs are the Unix-millisecond cut-offs the status rules compare
// with: online, connected now, uninstall grace.
type agentCutoffs struct{ online, connected, grace int64 }

func (tx *Tx) agentCutoffs() agentCutoffs {
	s := tx.db.Settings()
	return agentCutoffs{online: ms(tx.now.Add(-s.OfflineAfter)), connected: ms(tx.now.Add(-s.ConnectedWindow())),
		grace: ms(tx.now.Add(-s.UninstallGrace))}
}

func scanAgent(tx *Tx, sc interface{ Scan(...any) error }) (Agent, error) {
	var a Agent
	var ips, tags, dup, viaHost string
	var enrolled, seen, inv, uninst int64
	err := sc.Scan(&a.ID, &a.AccountID, &a.Hostname, &ips, &a.OS, &a.OSName, &a.Arch, &a.Provider, &a.Region, &a.Group, &tags, &a.Version,
		&a.ClusterID, &a.Cluster, &a.ViaProxyID, &a.Fingerprint, &dup, &enrolled, &seen, &inv,
		&a.Processes, &a.Ports, &a.RootAccounts, &a.Accounts, &a.Vulns, &a.BaselineRisks, &a.Alerts, &a.CPU, &a.Mem, &uninst,
		&viaHost)
	if err != nil {
		return a, err
	}
	if ips != "" {
		a.IPs = strings.Split(ips, ",")
	}
	if tags != "" {
		a.Tags = strings.Split(tags, ",")
	}
	a.EnrolledAt, a.LastCheckin, a.LastInventory, a.UninstallAt = fromMS(enrolled), fromMS(seen), fromMS(inv), fromMS(uninst)
	if uninst != 0 {
		// The latest uninstall command: done (acknowledged) or failed
		// (the agent said why, or never answered) is what the operator
		// needs to know; only agents with an uninstall requested pay this.
		cmds, err := scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
			WHERE target_kind = 'agent' AND target_id = ? AND type = 'uninstall' ORDER BY id DESC LIMIT 1`, a.ID))
		if err != nil {
			return a, err
		}
		if len(cmds) == 1 {
			c := derive(cmds[0], tx.now)
			a.UninstallState = c.Describe()
			if c.State == wire.StateDone {
				a.UninstalledAt = c.EndedAt
			}
		}
	}
	a.Via = ViaDirect
	if a.ViaProxyID != 0 {
		a.Via = viaHost
	}
	deriveAgentStatus(&a, tx.db.Settings(), tx.now)
	a.RiskStatus = RiskSafe
	if a.Vulns+a.BaselineRisks+a.Alerts > 0 {
		a.RiskStatus = RiskAtRisk
	}
	if dup != "" {
		a.Duplicate, a.DuplicateFix = true, DuplicateFix
	}
	return a, nil
}

// deriveAgentStatus applies the status rules (doc.go, README "What the
// statuses mean"); uninstalledSQL and liveSQL are the same
// rules for counts and filters and must be kept in step with it.
func deriveAgentStatus(a *Agent, s Settings, now time.Time) {
	// Uninstalled: the agent acknowledged the command, or it has not been
	// heard of since the request and the grace has passed. An agent that
	// still checks in without acknowledging runs, so it is not uninstalled.
	a.Uninstalled = !a.UninstallAt.IsZero() && (!a.UninstalledAt.IsZero() ||
		(!now.Before(a.UninstallAt.Add(s.UninstallGrace)) && !a.LastCheckin.After(a.UninstallAt)))
	age := now.Sub(a.LastCheckin)
	a.Online = !a.Uninstalled && !a.LastCheckin.IsZero() && age < s.OfflineAfter
	a.Connected = a.Online && age < s.ConnectedWindow()
	switch {
	case a.Uninstalled:
		a.Status = StatusUninstalled
	case a.Online:
		a.Status = StatusOnline
	default:
		a.Status = StatusOffline
	}
	a.SecurityStatus = Unprotected
	if a.Online {
		a.SecurityStatus = Protected
	}
}

// uninstallFailed reports whether the latest uninstall command failed; it
// may be sent again, any other is under way.
func (a Agent) uninstallFailed() bool {
	return strings.HasPrefix(a.UninstallState, string(wire.StateFailed))
}

func getAgent(tx *Tx, id string) (Agent, error) {
	a, err := scanAgent(tx, tx.queryRow(`SELECT `+agentCols+` FROM agents g LEFT JOIN clusters c ON c.id = g.cluster_id WHERE g.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, Errorf(ENotFound, "agent %s not found", id)
	}
	return a, err
}

// GetAgent returns one agent by id.
func (db *DB) GetAgent(ctx context.Context, id string) (Agent, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Agent{}, err
	}
	defer tx.Rollback()
	a, err := getAgent(tx, id)
	if err != nil {
		return a, err
	}
	return a, fillAgentUpgrade(tx, &a)
}

// FindAgent resolves a host reference (agent id, host name or IP) inside an
// account. A host of another account is refused, never silently skipped.
func (db *DB) FindAgent(ctx context.Context, accountID int64, host string) (Agent, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Agent{}, err
	}
	defer tx.Rollback()
	a, err := resolveHost(tx, accountID, host)
	if err != nil {
		return a, err
	}
	return a, fillAgentUpgrade(tx, &a)
}

func resolveHost(tx *Tx, accountID int64, host string) (Agent, error) {
	host = strings.TrimSpace(host)
	if host == "" {
		return Agent{}, Errorf(EInvalid, "empty host name")
	}
	rows, err := tx.query(`SELECT g.id, g.account_id FROM agents g WHERE g.id = ? OR g.hostname = ?
		UNION SELECT g.id, g.account_id FROM agents g WHERE (',' || g.ips || ',') LIKE ? AND ? LIKE '%.%' LIMIT 10`,
		host, host, "%,"+host+",%", host)
	if err != nil {
		return Agent{}, err
	}
	var mine []string
	foreign := 0
	for rows.Next() {
		var id string
		var acct int64
		if err := rows.Scan(&id, &acct); err != nil {
			rows.Close()
			return Agent{}, err
		}
		if accountID == 0 || acct == accountID {
			mine = append(mine, id)
		} else {
			foreign++
		}
	}
	rows.Close()
	switch {
	case len(mine) == 1:
		return getAgent(tx, mine[0])
	case len(mine) > 1:
		return Agent{}, Errorf(EInvalid, "host %q matches %d agents: use the agent id", host, len(mine))
	case foreign > 0:
		return Agent{}, Errorf(EForbidden, "host %q belongs to another account", host)
	}
	return Agent{}, Errorf(ENotFound, "host %q not found", host)
}

func writeInventory(tx *Tx, id string, inv Inventory, at time.Time) error {
	_, err := tx.exec(`UPDATE agents SET processes = ?, ports = ?, root_users = ?, users = ?, vulns = ?, baseline_risks = ?, alerts = ?,
		last_inventory = ? WHERE id = ?`, inv.Processes, inv.Ports, inv.RootAccounts, inv.Accounts, inv.Vulns, inv.BaselineRisks, inv.Alerts, ms(at), id)
	return err
}

// ConnectedText is the one-line "connected now" of an agent for listings:
// "yes via edge-2", "yes, direct" or "no".
func (a Agent) ConnectedText() string {
	switch {
	case !a.Connected:
		return "no"
	case a.ViaProxyID == 0:
		return "yes, direct"
	}
	return "yes via " + a.Via
}

// ClusterText is the agent's cluster, "(direct connection)" when it has
// none (agent show, the dashboard's agent view).
func (a Agent) ClusterText() string {
	if a.ClusterID == 0 {
		return "(direct connection)"
	}
	return a.Cluster
}

// ViaText is what the agent checked in through last: "edge-2 (proxy
// server 3)" or "direct (the management host)".
func (a Agent) ViaText() string {
	if a.ViaProxyID == 0 {
		return "direct (the management host)"
	}
	return fmt.Sprintf("%s (proxy server %d)", a.Via, a.ViaProxyID)
}

// SystemText is the OS, with its name when known, and the architecture:
// "linux (Ubuntu 24.04) amd64".
func (a Agent) SystemText() string {
	sys := string(a.OS)
	if a.OSName != "" {
		sys += " (" + a.OSName + ")"
	}
	return sys + " " + a.Arch
}

// UninstallText describes an uninstall request ("" when none was made);
// at formats the times the way the caller shows them.
func (a Agent) UninstallText(at func(time.Time) string) string {
	switch {
	case a.UninstallAt.IsZero():
		return ""
	case !a.UninstalledAt.IsZero():
		return "requested " + at(a.UninstallAt) + ", done: the agent acknowledged it at " + at(a.UninstalledAt)
	case a.Uninstalled:
		return "requested " + at(a.UninstallAt) + ", done: not acknowledged and no contact since, the grace has passed"
	case a.uninstallFailed():
		return "requested " + at(a.UninstallAt) + ", " + a.UninstallState + " (the agent still runs; outpost agent uninstall sends it again)"
	}
	return "requested " + at(a.UninstallAt) + ", pending (" + a.UninstallState + "): not acknowledged by the agent yet"
}

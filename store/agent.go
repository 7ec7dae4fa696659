package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// HostFacts are what an agent reports about its machine.
type HostFacts struct {
	Hostname    string
	IPs         []string
	OS          string
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
		h.OS = "linux"
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Enrolment{}, err
	}
	defer tx.Rollback()

	var accountID, icID, clusterID, expires, revoked int64
	var icOS, icGroup, icProvider string
	var image bool
	hash := HashSecret(in.Key)
	err = tx.queryRow(`SELECT id, account_id, COALESCE(cluster_id, 0), expires_at, revoked_at, os, grp, provider, image_mode
		FROM install_commands WHERE key_hash = ?`, hash).Scan(&icID, &accountID, &clusterID, &expires, &revoked, &icOS, &icGroup, &icProvider, &image)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := tx.queryRow(`SELECT id FROM accounts WHERE key_hash = ?`, hash).Scan(&accountID); errors.Is(err, sql.ErrNoRows) {
			return Enrolment{}, Errorf(EUnauthorized, "install key not recognised")
		} else if err != nil {
			return Enrolment{}, err
		}
	case err != nil:
		return Enrolment{}, err
	case revoked != 0:
		return Enrolment{}, Errorf(EForbidden, "install key was revoked: create a new install command")
	case ms(tx.now) >= expires:
		return Enrolment{}, Errorf(EForbidden, "install key expired at %s: create a new install command", fromMS(expires).Format(time.RFC3339))
	case icOS != h.OS:
		return Enrolment{}, Errorf(EInvalid, "install command is for %s, this host runs %s", icOS, h.OS)
	}
	if in.ViaProxyID != 0 {
		var proxyAccount int64
		if err := tx.queryRow(`SELECT c.account_id FROM proxies p JOIN clusters c ON c.id = p.cluster_id WHERE p.id = ?`, in.ViaProxyID).Scan(&proxyAccount); err != nil {
			return Enrolment{}, Errorf(EForbidden, "proxy server %d is not registered", in.ViaProxyID)
		}
		if proxyAccount != accountID {
			return Enrolment{}, Errorf(EForbidden, "this proxy belongs to another account: an agent can only use its own account's clusters")
		}
	}
	if clusterID != 0 {
		if err := admitInstall(tx, clusterID); err != nil {
			return Enrolment{}, err
		}
	}
	if icGroup != "" {
		h.Group = icGroup
	}
	if icProvider != "" {
		h.Provider = icProvider
	}
	id := newAgentID()
	secret := NewSecret("as_")
	var ic, cl, via any
	if icID != 0 {
		ic = icID
	}
	if clusterID != 0 {
		cl = clusterID
	}
	if in.ViaProxyID != 0 {
		via = in.ViaProxyID
	}
	if _, err := tx.exec(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, hostname, ips, os, os_name, arch, provider, region, grp, tags,
		version, cluster_id, via_proxy_id, install_cmd_id, enrolled_at, last_checkin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, accountID, HashSecret(secret), h.Fingerprint, h.Hostname, strings.Join(h.IPs, ","), h.OS, h.OSName, h.Arch, h.Provider, h.Region,
		h.Group, strings.Join(h.Tags, ","), h.Version, cl, via, ic, ms(tx.now), ms(tx.now)); err != nil {
		return Enrolment{}, err
	}
	if in.Inventory != nil {
		if err := writeInventory(tx, id, *in.Inventory, tx.now); err != nil {
			return Enrolment{}, err
		}
	}
	if icID != 0 {
		if _, err := tx.exec(`UPDATE install_commands SET uses = uses + 1 WHERE id = ?`, icID); err != nil {
			return Enrolment{}, err
		}
	}
	a, err := getAgent(tx, id)
	if err != nil {
		return Enrolment{}, err
	}
	e := Enrolment{Agent: a, Secret: secret, ImageMode: image}
	if clusterID != 0 {
		if e.Proxies, err = clusterURLs(tx, clusterID); err != nil {
			return Enrolment{}, err
		}
	}
	return e, tx.Commit()
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
			if c.State == CommandDone {
				a.UninstalledAt = c.EndedAt
			}
		}
	}
	a.Via = ViaDirect
	if a.ViaProxyID != 0 {
		a.Via = viaHost
	}
	deriveAgentStatus(&a, tx.db.Settings(), tx.now)
	a.RiskStatus = "Safe"
	if a.Vulns+a.BaselineRisks+a.Alerts > 0 {
		a.RiskStatus = "At risk"
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

// AgentFilter selects a page of agents. Zero values mean "any".
type AgentFilter struct {
	AccountID int64
	ClusterID int64 // -1 = direct (no cluster)
	ViaProxy  int64
	Status    string // online | offline | uninstalled
	Query     string // substring of host name or IP
	OS        string
	Group     string
	Duplicate bool
	AtRisk    bool
	Sort      string // hostname (default) | last_checkin | enrolled | risk | cluster | os
	Desc      bool
	Limit     int // default 50, at most 1000
	Offset    int
}

// AgentPage is one page of a listing with the total matching count.
type AgentPage struct {
	Agents []Agent `json:"agents"`
	Total  int     `json:"total"`
}

// ListAgents returns one filtered, sorted page without loading the fleet.
func (db *DB) ListAgents(ctx context.Context, f AgentFilter) (AgentPage, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	order, ok := map[string]string{"": "g.hostname", "hostname": "g.hostname", "last_checkin": "g.last_checkin", "enrolled": "g.enrolled_at",
		"risk": "(g.vulns + g.baseline_risks + g.alerts)", "cluster": "c.name", "os": "g.os"}[f.Sort]
	if !ok {
		return AgentPage{}, Errorf(EInvalid, "sort %q: want hostname, last_checkin, enrolled, risk, cluster or os", f.Sort)
	}
	if f.Status != "" && f.Status != StatusOnline && f.Status != StatusOffline && f.Status != StatusUninstalled {
		return AgentPage{}, Errorf(EInvalid, "status %q: want online, offline or uninstalled", f.Status)
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return AgentPage{}, err
	}
	defer tx.Rollback()
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	// A search of three or more characters that matches few agents should
	// drive the query: "+" keeps the planner from scanning the account's or
	// the cluster's index and probing the search per row (about 90 ms at
	// 100,000 agents for a rare host name). A broad one is faster the
	// planner's way (the listing index, stopped at the page).
	ix, phrase := "", ""
	if utf8.RuneCountInString(f.Query) >= 3 {
		phrase = `"` + strings.ReplaceAll(f.Query, `"`, `""`) + `"`
		var n int
		if err := tx.queryRow(`SELECT COUNT(*) FROM (SELECT 1 FROM agents_search WHERE agents_search MATCH ? LIMIT 2000)`, phrase).Scan(&n); err != nil {
			return AgentPage{}, err
		} else if n < 2000 {
			ix = "+"
		}
	}
	if f.AccountID != 0 {
		add(ix+"g.account_id = ?", f.AccountID)
	}
	switch {
	case f.ClusterID > 0:
		add(ix+"g.cluster_id = ?", f.ClusterID)
	case f.ClusterID < 0:
		add("g.cluster_id IS NULL")
	}
	if f.ViaProxy != 0 {
		add("g.via_proxy_id = ?", f.ViaProxy)
	}
	cut := tx.agentCutoffs()
	switch f.Status {
	case StatusOnline:
		add(liveSQL, cut.online, cut.grace)
	case StatusOffline: // uninstalled agents included: they are not online
		add("NOT "+liveSQL, cut.online, cut.grace)
	case StatusUninstalled:
		add(uninstalledSQL, cut.grace)
	}
	if f.Query != "" {
		if utf8.RuneCountInString(f.Query) >= 3 {
			// Trigram index: any substring of three or more characters.
			// One IN over both ("IN (...) OR id = ?" cannot drive the query).
			add(`g.rowid IN (SELECT rowid FROM agents_search WHERE agents_search MATCH ? UNION ALL SELECT rowid FROM agents WHERE id = ?)`, phrase, f.Query)
		} else {
			q := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Query) + "%"
			add(`(g.hostname LIKE ? ESCAPE '\' OR g.ips LIKE ? ESCAPE '\' OR g.id = ?)`, q, q, f.Query)
		}
	}
	if f.OS != "" {
		add("g.os = ?", f.OS)
	}
	if f.Group != "" {
		add("g.grp = ?", f.Group)
	}
	if f.Duplicate {
		add("g.dup_fingerprint != ''")
	}
	if f.AtRisk {
		add("(g.vulns + g.baseline_risks + g.alerts) > 0")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var page AgentPage
	if err := tx.queryRow(`SELECT COUNT(*) FROM agents g`+cond, args...).Scan(&page.Total); err != nil {
		return page, err
	}
	dir := " ASC"
	if f.Desc {
		dir = " DESC"
	}
	rows, err := tx.query(`SELECT `+agentCols+` FROM agents g LEFT JOIN clusters c ON c.id = g.cluster_id`+cond+
		` ORDER BY `+order+dir+`, g.id`+dir+` LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAgent(tx, rows)
		if err != nil {
			return page, err
		}
		page.Agents = append(page.Agents, a)
	}
	return page, rows.Err()
}

// AgentCounts summarises a fleet for the dashboard header.
type AgentCounts struct {
	Total      int `json:"total"`
	Online     int `json:"online"`
	Connected  int `json:"connected"` // connected now
	Direct     int `json:"direct"`
	Duplicates int `json:"duplicates"`
	AtRisk     int `json:"at_risk"`
}

// CountAgents counts an account's agents (0 = all accounts) in one scan.
func (db *DB) CountAgents(ctx context.Context, accountID int64) (AgentCounts, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return AgentCounts{}, err
	}
	defer tx.Rollback()
	var c AgentCounts
	cut := tx.agentCutoffs()
	err = tx.queryRow(`SELECT COUNT(*), COALESCE(SUM(`+liveSQL+`), 0), COALESCE(SUM(`+liveSQL+`), 0), COALESCE(SUM(g.cluster_id IS NULL), 0),
		COALESCE(SUM(g.dup_fingerprint != ''), 0), COALESCE(SUM(g.vulns + g.baseline_risks + g.alerts > 0), 0)
		FROM agents g WHERE (? = 0 OR g.account_id = ?)`, cut.online, cut.grace, cut.connected, cut.grace, accountID, accountID).
		Scan(&c.Total, &c.Online, &c.Connected, &c.Direct, &c.Duplicates, &c.AtRisk)
	return c, err
}

// BindResult reports a bind batch.
type BindResult struct {
	Bound   []string `json:"bound"`   // agent ids newly bound
	Already []string `json:"already"` // agent ids that were bound already
}

// Bind connects existing agents to a cluster (seed 000 "directly select
// servers"): at most 500 hosts per batch and at least the bind-batch gap
// (one minute) since the cluster's previous batch; only agents of the
// cluster's account. All or nothing: a refusal changes nothing.
func (db *DB) Bind(ctx context.Context, clusterID int64, hosts []string) (BindResult, error) {
	var res BindResult
	if len(hosts) == 0 {
		return res, Errorf(EInvalid, "no hosts given")
	}
	if len(hosts) > BindBatchMax {
		return res, Errorf(ELimit, "%d hosts in one batch: at most %d per batch, one minute apart (agent bind --file paces this)", len(hosts), BindBatchMax)
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	c, err := getCluster(tx, clusterID)
	if err != nil {
		return res, err
	}
	gap := db.Settings().BindBatchGap
	var last int64
	if err := tx.queryRow(`SELECT COALESCE(MAX(created_at), 0) FROM bind_batches WHERE cluster_id = ? AND source = 'bind'`, clusterID).Scan(&last); err != nil {
		return res, err
	}
	if last != 0 && tx.now.Sub(fromMS(last)) < gap {
		wait := fromMS(last).Add(gap).Sub(tx.now)
		return res, &Error{Code: ELimit, Message: fmt.Sprintf("cluster %q took a batch %s ago: wait %s between batches", c.Name,
			tx.now.Sub(fromMS(last)).Round(time.Second), wait.Round(time.Second)), RetryAfter: wait}
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		a, err := resolveHost(tx, c.AccountID, h)
		if err != nil {
			return BindResult{}, err
		}
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		if a.ClusterID == clusterID {
			res.Already = append(res.Already, a.ID)
			continue
		}
		res.Bound = append(res.Bound, a.ID)
	}
	urls, err := clusterURLs(tx, clusterID)
	if err != nil {
		return BindResult{}, err
	}
	payload, _ := json.Marshal(map[string]any{"cluster": c.Name, "proxies": urls})
	for _, id := range res.Bound {
		if _, err := tx.exec(`UPDATE agents SET cluster_id = ? WHERE id = ?`, clusterID, id); err != nil {
			return BindResult{}, err
		}
		if err := enqueue(tx, TargetAgent, id, "bind", string(payload)); err != nil {
			return BindResult{}, err
		}
	}
	if _, err := tx.exec(`INSERT INTO bind_batches (cluster_id, hosts, source, created_at) VALUES (?, ?, 'bind', ?)`, clusterID, len(res.Bound), ms(tx.now)); err != nil {
		return BindResult{}, err
	}
	if err := tx.audit("agent.bind", clusterTarget(c), "hosts=%d %s", len(res.Bound), summarise(res.Bound)); err != nil {
		return BindResult{}, err
	}
	return res, tx.Commit()
}

// Unbind returns agents to direct connection. It does not uninstall them
// (seed 000). all=true unbinds every agent of the cluster.
func (db *DB) Unbind(ctx context.Context, clusterID int64, hosts []string, all bool) ([]string, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	c, err := getCluster(tx, clusterID)
	if err != nil {
		return nil, err
	}
	var ids []string
	if all {
		rows, err := tx.query(`SELECT id FROM agents WHERE cluster_id = ?`, clusterID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		rows.Close()
	} else {
		if len(hosts) == 0 {
			return nil, Errorf(EInvalid, "no hosts given (or use --all)")
		}
		for _, h := range hosts {
			a, err := resolveHost(tx, c.AccountID, h)
			if err != nil {
				return nil, err
			}
			if a.ClusterID != clusterID {
				return nil, Errorf(EInvalid, "host %q is not bound to cluster %q", h, c.Name)
			}
			ids = append(ids, a.ID)
		}
	}
	for _, id := range ids {
		if _, err := tx.exec(`UPDATE agents SET cluster_id = NULL WHERE id = ?`, id); err != nil {
			return nil, err
		}
		if err := enqueue(tx, TargetAgent, id, "unbind", `{}`); err != nil {
			return nil, err
		}
	}
	if err := tx.audit("agent.unbind", clusterTarget(c), "hosts=%d %s", len(ids), summarise(ids)); err != nil {
		return nil, err
	}
	return ids, tx.Commit()
}

// Uninstall queues the uninstall command. Only an online agent can receive
// it (seed 002); the asset turns Unprotected when the agent acknowledges it,
// or after the grace period when the agent is not heard of again.
func (db *DB) Uninstall(ctx context.Context, accountID int64, hosts []string) ([]string, error) {
	if len(hosts) == 0 {
		return nil, Errorf(EInvalid, "no hosts given")
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var ids []string
	accounts := map[int64]bool{}
	for _, h := range hosts {
		a, err := resolveHost(tx, accountID, h)
		if err != nil {
			return nil, err
		}
		accounts[a.AccountID] = true
		switch {
		case !a.UninstalledAt.IsZero():
			return nil, Errorf(EConflict, "agent %s (%s) was uninstalled at %s (it acknowledged the command): nothing to do",
				a.ID, a.Hostname, a.UninstalledAt.Format(time.RFC3339))
		case a.Uninstalled:
			return nil, Errorf(EConflict, "agent %s (%s) is already uninstalled: requested at %s, not heard of since, and the %s grace has passed",
				a.ID, a.Hostname, a.UninstallAt.Format(time.RFC3339), tx.db.Settings().UninstallGrace)
		case !a.UninstallAt.IsZero() && !strings.HasPrefix(a.UninstallState, CommandFailed):
			// A failed uninstall may be sent again; any other is under way.
			return nil, Errorf(EConflict, "agent %s (%s) already has an uninstall pending since %s (%s), not yet acknowledged by the agent",
				a.ID, a.Hostname, a.UninstallAt.Format(time.RFC3339), a.UninstallState)
		case !a.Online:
			return nil, Errorf(EConflict, "host %q is offline: an offline agent cannot receive the uninstall command", h)
		}
		ids = append(ids, a.ID)
	}
	for _, id := range ids {
		if _, err := tx.exec(`UPDATE agents SET uninstall_at = ? WHERE id = ?`, ms(tx.now), id); err != nil {
			return nil, err
		}
		if err := enqueue(tx, TargetAgent, id, "uninstall", `{}`); err != nil {
			return nil, err
		}
	}
	target := "agents"
	for id := range accounts {
		if len(accounts) == 1 {
			name, err := accountName(tx, id)
			if err != nil {
				return nil, err
			}
			target += "/" + name
		}
	}
	if err := tx.audit("agent.uninstall", target, "hosts=%d %s", len(ids), summarise(ids)); err != nil {
		return nil, err
	}
	return ids, tx.Commit()
}

func summarise(ids []string) string {
	if len(ids) > 20 {
		return strings.Join(ids[:20], ",") + fmt.Sprintf(",... (+%d)", len(ids)-20)
	}
	return strings.Join(ids, ",")
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
	case strings.HasPrefix(a.UninstallState, CommandFailed):
		return "requested " + at(a.UninstallAt) + ", " + a.UninstallState + " (the agent still runs; outpost agent uninstall sends it again)"
	}
	return "requested " + at(a.UninstallAt) + ", pending (" + a.UninstallState + "): not acknowledged by the agent yet"
}

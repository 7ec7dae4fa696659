package store

import (
	"context"
	"strings"
	"unicode/utf8"

	"outpost/relay/wire"
)

// AgentFilter selects a page of agents. Zero values mean "any".
type AgentFilter struct {
	AccountID int64
	ClusterID int64 // -1 = direct (no cluster)
	ViaProxy  int64
	Status    Status // online | offline | uninstalled
	Query     string // substring of host name or IP
	OS        wire.OS
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
	order, err := checkAgentFilter(&f)
	if err != nil {
		return AgentPage{}, err
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return AgentPage{}, err
	}
	defer tx.Rollback()
	cond, args, err := agentWhere(tx, f)
	if err != nil {
		return AgentPage{}, err
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

// checkAgentFilter bounds f's page size and refuses an unknown sort or
// status; it returns the ORDER BY expression of the sort.
func checkAgentFilter(f *AgentFilter) (string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	order, ok := map[string]string{"": "g.hostname", "hostname": "g.hostname", "last_checkin": "g.last_checkin", "enrolled": "g.enrolled_at",
		"risk": "(g.vulns + g.baseline_risks + g.alerts)", "cluster": "c.name", "os": "g.os"}[f.Sort]
	if !ok {
		return "", Errorf(EInvalid, "sort %q: want hostname, last_checkin, enrolled, risk, cluster or os", f.Sort)
	}
	if f.Status != "" {
		if _, err := ParseStatus(string(f.Status)); err != nil {
			return "", err
		}
	}
	return order, nil
}

// agentWhere builds the WHERE clause ("" for none) and its arguments of f.
func agentWhere(tx *Tx, f AgentFilter) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	ix, phrase, err := agentSearch(tx, f.Query)
	if err != nil {
		return "", nil, err
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
	return cond, args, nil
}

// agentSearch returns the trigram phrase of a query of three or more
// characters, and ix "+" when that search should drive the query.
//
// A search of three or more characters that matches few agents should
// drive the query: "+" keeps the planner from scanning the account's or
// the cluster's index and probing the search per row (about 90 ms at
// 100,000 agents for a rare host name). A broad one is faster the
// planner's way (the listing index, stopped at the page).
func agentSearch(tx *Tx, query string) (ix, phrase string, err error) {
	if utf8.RuneCountInString(query) >= 3 {
		phrase = `"` + strings.ReplaceAll(query, `"`, `""`) + `"`
		var n int
		if err := tx.queryRow(`SELECT COUNT(*) FROM (SELECT 1 FROM agents_search WHERE agents_search MATCH ? LIMIT 2000)`, phrase).Scan(&n); err != nil {
			return "", "", err
		} else if n < 2000 {
			ix = "+"
		}
	}
	return ix, phrase, nil
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

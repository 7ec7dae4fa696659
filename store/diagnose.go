package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AgentDiagnosis is what the management side knows about why an agent is
// not online (or not connected now): the server half of the doctor, for
// `agent show` and the dashboard's agent view. The host half (DNS, TLS,
// the agent process) is `outpost doctor` on the host itself.
type AgentDiagnosis struct {
	Agent Agent `json:"agent"`
	// Reasons explain the status, most important first; empty when the
	// agent is online and connected now.
	Reasons []string `json:"reasons,omitempty"`
	// Next is the one thing to do first ("" when nothing is needed).
	Next string `json:"next,omitempty"`
}

// DiagnoseFacts are the facts around an agent that OfflineReasons reads.
type DiagnoseFacts struct {
	Cluster      *Cluster        // the agent's cluster, nil when direct
	Via          *Proxy          // the proxy server of its last check-in, nil when direct or deleted
	ViaDeleted   bool            // it came through a proxy server that no longer exists
	Install      *InstallCommand // the install command that enrolled it, nil when unknown or deleted
	Settings     Settings
	Now          time.Time
	PendingBinds int // bind/unbind commands not yet acknowledged
}

// highLoad is the seed's "CPU or memory at 95 % or higher" (seed 002,
// troubleshooting step 5).
const highLoad = 95

// OfflineReasons derives the server-side reasons from facts; it is pure so
// the CLI and the dashboard show the same sentences.
func OfflineReasons(a Agent, f DiagnoseFacts) (reasons []string, next string) {
	s := f.Settings
	add := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }
	age := f.Now.Sub(a.LastCheckin).Round(time.Second)
	switch {
	case a.Uninstalled:
		add("uninstalled: %s", a.UninstallText(func(t time.Time) string { return t.Format(time.RFC3339) }))
		next = "install the agent again on the host to protect it (a new install command if the old one is revoked or expired)"
	case !a.UninstallAt.IsZero():
		add("an uninstall is pending since %s: it counts as uninstalled once acknowledged, or after the %s grace without contact",
			a.UninstallAt.Format(time.RFC3339), s.UninstallGrace)
	}
	if a.Duplicate {
		add("duplicate identity: two machines check in with this agent's identity; %s", DuplicateFix)
		if next == "" {
			next = "on the copy: " + DuplicateFix
		}
	}
	if a.Uninstalled {
		return reasons, next
	}
	switch {
	case a.LastCheckin.IsZero():
		add("it never checked in since enrolment")
	case !a.Online:
		add("no check-in for %s, longer than offline_after (%s): the asset is Unprotected", age, s.OfflineAfter)
	case !a.Connected:
		add("online, but not connected now: last check-in %s ago, longer than the long-poll hold plus margin (%s)", age, s.ConnectedWindow())
	}
	if a.Online && a.Connected && len(reasons) == 0 {
		return nil, ""
	}
	if c := f.Cluster; c != nil {
		switch {
		case c.Proxies == 0:
			add("its cluster %s has no proxy server: deploy one (outpost proxy deploy --cluster %s) or unbind the agent", c.Name, c.Name)
		case c.ProxiesOnline == 0:
			add("its cluster %s has no proxy server online (%d deployed, all offline): agents bound to it cannot reach the management host", c.Name, c.Proxies)
		}
	}
	switch {
	case f.ViaDeleted:
		add("the proxy server of its last check-in (%d) was deleted: the agent must fail over to another URL of its cluster", a.ViaProxyID)
	case f.Via != nil && f.Via.Status != StatusOnline:
		add("the proxy server of its last check-in, %s (%d), is offline since %s", f.Via.Hostname, f.Via.ID, f.Via.LastSeen.Format(time.RFC3339))
	}
	if f.PendingBinds > 0 {
		add("%d bind/unbind command(s) not yet acknowledged: the agent may still dial its former relay", f.PendingBinds)
	}
	if a.CPU >= highLoad || a.Mem >= highLoad {
		add("its last report showed cpu %.0f%%, mem %.0f%%: a host this loaded may stop the agent from running properly", a.CPU, a.Mem)
	}
	if ic := f.Install; ic != nil && ic.State() != InstallActive {
		add("its install command %d is %s: it keeps working, but re-installing needs a new install command", ic.ID, ic.State())
	}
	if next == "" && !a.Online {
		next = "on the host: outpost doctor (checks the agent process, DNS, TLS and the route to its relays)"
	}
	return reasons, next
}

// DiagnoseAgent explains an agent's status from what the store knows.
func (db *DB) DiagnoseAgent(ctx context.Context, id string) (AgentDiagnosis, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return AgentDiagnosis{}, err
	}
	defer tx.Rollback()
	a, err := getAgent(tx, id)
	if err != nil {
		return AgentDiagnosis{}, err
	}
	if err := fillAgentUpgrade(tx, &a); err != nil { // the dashboard's agent view shows it
		return AgentDiagnosis{}, err
	}
	f, err := diagnoseFacts(tx, a)
	if err != nil {
		return AgentDiagnosis{}, err
	}
	d := AgentDiagnosis{Agent: a}
	d.Reasons, d.Next = OfflineReasons(a, f)
	return d, nil
}

func diagnoseFacts(tx *Tx, a Agent) (DiagnoseFacts, error) {
	f := DiagnoseFacts{Settings: tx.db.Settings(), Now: tx.now}
	if a.ClusterID != 0 {
		c, err := getCluster(tx, a.ClusterID)
		if err != nil {
			return f, err
		}
		f.Cluster = &c
	}
	if a.ViaProxyID != 0 {
		p, err := getProxy(tx, a.ViaProxyID)
		switch {
		case ErrorCode(err) == ENotFound:
			f.ViaDeleted = true
		case err != nil:
			return f, err
		default:
			f.Via = &p
		}
	}
	var icID sql.NullInt64
	if err := tx.queryRow(`SELECT install_cmd_id FROM agents WHERE id = ?`, a.ID).Scan(&icID); err != nil {
		return f, err
	}
	if icID.Valid {
		ic, err := getInstallCommand(tx, icID.Int64)
		switch {
		case ErrorCode(err) == ENotFound:
		case err != nil:
			return f, err
		default:
			f.Install = &ic
		}
	}
	err := tx.queryRow(`SELECT COUNT(*) FROM commands WHERE target_kind = 'agent' AND target_id = ? AND type IN ('bind', 'unbind') AND acked_at = 0`,
		a.ID).Scan(&f.PendingBinds) // COUNT(*) always returns a row
	return f, err
}

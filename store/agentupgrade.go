package store

import (
	"context"
	"encoding/json"
	"fmt"

	"outpost/relay/wire"
)

// Agent upgrades (outpost agent upgrade): an "upgrade" command with
// wire.UpgradeArgs for each agent, delivered through its relay at its next
// check-in like any other command; the agent downloads the release through
// that relay, verifies it against its release keys and restarts into it,
// reporting the stages on the way (see ReportCommands). UpgradeAgents takes
// one batch (at most BindBatchMax hosts); ops.PacedUpgrade cuts a fleet
// into batches a gap apart, as binds are.

// UpgradeAgentsInput selects the agents of one batch and the release.
type UpgradeAgentsInput struct {
	AccountID int64    // 0: hosts of any account
	Hosts     []string // agent ids, host names or IPs
	Version   string   // a published release; "" = the latest
	// Force queues the release even for an agent that runs it or a newer
	// one (a downgrade), saying so in the command; audited as
	// agent.upgrade.force.
	Force bool
	// Skip leaves out the agents that cannot be upgraded, with the reason,
	// instead of refusing the batch (for --cluster and --all, where some
	// agents are usually up to date already).
	Skip bool
}

// AgentUpgrade is one agent of a batch: queued (CommandID) or skipped
// (Reason).
type AgentUpgrade struct {
	AgentID   string `json:"agent_id"`
	Hostname  string `json:"hostname"`
	From      string `json:"from"`
	CommandID int64  `json:"command_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// AgentUpgradeResult is the outcome of one batch.
type AgentUpgradeResult struct {
	Version string         `json:"version"`
	Queued  []AgentUpgrade `json:"queued"`
	Skipped []AgentUpgrade `json:"skipped,omitempty"`
}

// UpgradeAgents queues upgrade commands for one batch of agents. Without
// Skip it is all or nothing: the first agent that cannot be upgraded
// (uninstalled or being uninstalled, already at or newer than the release
// unless Force, an upgrade under way) refuses the batch with its reason.
// Offline agents are queued: they get the command when they next check in.
func (db *DB) UpgradeAgents(ctx context.Context, in UpgradeAgentsInput) (AgentUpgradeResult, error) {
	res := AgentUpgradeResult{Queued: []AgentUpgrade{}}
	switch {
	case len(in.Hosts) == 0:
		return res, Errorf(EInvalid, "no hosts given")
	case len(in.Hosts) > BindBatchMax:
		return res, Errorf(ELimit, "%d hosts in one batch: at most %d per batch (agent upgrade paces this)", len(in.Hosts), BindBatchMax)
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	if res.Version, err = upgradeVersion(tx, in.Version); err != nil {
		return res, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, h := range in.Hosts {
		a, err := resolveHost(tx, in.AccountID, h)
		if err != nil {
			return AgentUpgradeResult{}, err
		}
		if seen[a.ID] {
			continue
		}
		seen[a.ID] = true
		u := AgentUpgrade{AgentID: a.ID, Hostname: a.Hostname, From: a.Version}
		if u.Reason, err = agentUpgradeRefusal(tx, a, res.Version, in.Force); err != nil {
			return AgentUpgradeResult{}, err
		}
		if u.Reason != "" {
			if !in.Skip {
				return AgentUpgradeResult{}, Errorf(EConflict, "%s", u.Reason)
			}
			res.Skipped = append(res.Skipped, u)
			continue
		}
		payload, _ := json.Marshal(wire.UpgradeArgs{Version: res.Version, Force: in.Force})
		if u.CommandID, err = enqueueID(tx, TargetAgent, a.ID, wire.CmdUpgrade, string(payload)); err != nil {
			return AgentUpgradeResult{}, err
		}
		res.Queued = append(res.Queued, u)
		ids = append(ids, a.ID)
	}
	if len(ids) == 0 {
		return res, nil // nothing changed: nothing to audit
	}
	action := "agent.upgrade"
	if in.Force {
		action = "agent.upgrade.force"
	}
	target, err := agentsTarget(tx, in.AccountID)
	if err != nil {
		return AgentUpgradeResult{}, err
	}
	if err := tx.audit(action, target, "to=%s hosts=%d %s", res.Version, len(ids), summarise(ids)); err != nil {
		return AgentUpgradeResult{}, err
	}
	return res, tx.Commit()
}

// upgradeVersion is the published release an upgrade goes to: want
// (normalised), or the latest.
func upgradeVersion(tx *Tx, want string) (string, error) {
	latest, err := latestVersion(tx)
	if err != nil {
		return "", err
	}
	if latest == "" {
		return "", Errorf(EConflict, "no release is published: publish one with 'outpost release add VERSION --file PATH --key FILE'")
	}
	if want == "" {
		return latest, nil
	}
	v, err := ParseVersion(want)
	if err != nil {
		return "", err
	}
	var n int
	if err := tx.queryRow(`SELECT COUNT(*) FROM releases WHERE version = ?`, v.String()).Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", Errorf(ENotFound, "release %s is not published (the latest is %s): see outpost release list", v, latest)
	}
	return v.String(), nil
}

// agentUpgradeRefusal says why an agent cannot be upgraded to version, ""
// when it can.
func agentUpgradeRefusal(tx *Tx, a Agent, version string, force bool) (string, error) {
	name := fmt.Sprintf("agent %s (%s)", a.ID, a.Hostname)
	switch {
	case a.Uninstalled:
		return name + " is uninstalled", nil
	case !a.UninstallAt.IsZero() && !a.uninstallFailed():
		return name + " is being uninstalled (" + a.UninstallState + ")", nil
	case force:
	case CompareVersions(a.Version, version) == 0:
		return fmt.Sprintf("%s already runs %s (--force installs it again)", name, version), nil
	case CompareVersions(a.Version, version) > 0:
		return fmt.Sprintf("%s runs %s, newer than %s (--force downgrades it)", name, a.Version, version), nil
	}
	c, ok, err := openCommand(tx, TargetAgent, a.ID, wire.CmdUpgrade)
	if err != nil || !ok {
		return "", err
	}
	return fmt.Sprintf("%s has an upgrade under way (command %d to %s, %s): wait for it to end", name, c.ID, c.UpgradeVersion(), c.Describe()), nil
}

// agentsTarget names a batch of agents in the audit log: agents/ACCOUNT
// within one account, agents for hosts of any account.
func agentsTarget(tx *Tx, accountID int64) (string, error) {
	if accountID == 0 {
		return "agents", nil
	}
	name, err := accountName(tx, accountID)
	return "agents/" + name, err
}

// UpgradeVersion is the version an upgrade command goes to ("" for
// another command).
func (c Command) UpgradeVersion() string {
	var a wire.UpgradeArgs
	json.Unmarshal([]byte(c.Payload), &a)
	return a.Version
}

// UpgradeCandidates returns the ids of the agents an "upgrade --cluster"
// or "--all" considers: those of the cluster (clusterID > 0) or of the
// account (0: every account), not uninstalled, by host name.
func (db *DB) UpgradeCandidates(ctx context.Context, accountID, clusterID int64) ([]string, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if clusterID > 0 {
		if _, err := getCluster(tx, clusterID); err != nil {
			return nil, err
		}
	}
	rows, err := tx.query(`SELECT g.id FROM agents g WHERE (? = 0 OR g.account_id = ?) AND (? = 0 OR g.cluster_id = ?)
		AND NOT `+uninstalledSQL+` ORDER BY g.hostname, g.id`, accountID, accountID, clusterID, clusterID, tx.agentCutoffs().grace)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// fillAgentUpgrade sets the agent's latest upgrade command (derived, so a
// stuck stage shows as the failure it will be).
func fillAgentUpgrade(tx *Tx, a *Agent) error {
	cmds, err := scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE target_kind = 'agent' AND target_id = ? AND type = 'upgrade' ORDER BY id DESC LIMIT 1`, a.ID))
	if err != nil || len(cmds) == 0 {
		return err
	}
	c := derive(cmds[0], tx.now)
	a.Upgrade = &c
	return nil
}

// UpgradeText is an upgrade command's state for listings: "to 1.2.0:
// downloading", "to 1.2.0: rolled back: REASON"; "-" when there is none.
func UpgradeText(c *Command) string {
	if c == nil {
		return "-"
	}
	v := c.UpgradeVersion()
	if v == "" {
		v = "-"
	}
	return "to " + v + ": " + c.Describe()
}

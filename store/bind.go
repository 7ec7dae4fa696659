package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"outpost/relay/wire"
)

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
		if err := enqueue(tx, TargetAgent, id, wire.CmdBind, string(payload)); err != nil {
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
		if err := enqueue(tx, TargetAgent, id, wire.CmdUnbind, `{}`); err != nil {
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
		case !a.UninstallAt.IsZero() && !a.uninstallFailed():
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
		if err := enqueue(tx, TargetAgent, id, wire.CmdUninstall, `{}`); err != nil {
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

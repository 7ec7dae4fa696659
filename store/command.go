package store

import (
	"context"
	"fmt"
	"time"

	"outpost/relay/wire"
)

// TargetKind is what a command is for (Command.TargetKind); TargetID is
// an agent id or a proxy server id.
type TargetKind string

// Command target kinds.
const (
	TargetAgent TargetKind = "agent"
	TargetProxy TargetKind = "proxy"
)

// Bounds on retries: a command handed over MaxDeliveries times without an
// answer, or left delivered or running without news for
// CommandAnswerTimeout, ends failed with the reason. A failure the target
// reports ends it at once: the operator decides whether to try again.
const (
	MaxDeliveries        = 3
	CommandAnswerTimeout = 10 * time.Minute
)

const commandCols = `id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at, state, attempts, error, updated_at, stage`

func enqueue(tx *Tx, kind TargetKind, target string, typ wire.CommandType, payload string) error {
	_, err := enqueueID(tx, kind, target, typ, payload)
	return err
}

func enqueueID(tx *Tx, kind TargetKind, target string, typ wire.CommandType, payload string) (int64, error) {
	if payload == "" {
		payload = "{}"
	}
	res, err := tx.exec(`INSERT INTO commands (target_kind, target_id, type, payload, created_at, state, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)`,
		kind, target, typ, payload, ms(tx.now), ms(tx.now))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// PendingCommands returns the commands of one target still to be handed
// over (queued, or delivered without an answer), oldest first. A command
// delivered to an agent that crashed before answering is delivered again,
// up to MaxDeliveries times.
func (db *DB) PendingCommands(ctx context.Context, kind TargetKind, target string) ([]Command, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return pendingCommands(tx, kind, target)
}

func pendingCommands(tx *Tx, kind TargetKind, target string) ([]Command, error) {
	return scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE target_kind = ? AND target_id = ? AND acked_at = 0 AND state IN ('queued', 'delivered') AND attempts < ?
		AND NOT (state = 'delivered' AND updated_at <= ?) ORDER BY id`,
		kind, target, MaxDeliveries, ms(tx.now.Add(-CommandAnswerTimeout))))
}

// DeliverCommands hands over a target's pending commands: it first ends
// those past their bounds (failed, with an audit entry), then returns the
// rest and records the delivery. Relays call it when they answer a
// check-in or a heartbeat.
func (db *DB) DeliverCommands(ctx context.Context, kind TargetKind, target string) ([]Command, error) {
	tx, err := db.BeginTx(WithActor(ctx, "system")) // bounds end commands, not a person
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	n, err := expireCommands(tx, kind, target)
	if err != nil {
		return nil, err
	}
	cmds, err := pendingCommands(tx, kind, target)
	if err != nil {
		return nil, err
	}
	if len(cmds) == 0 {
		if n > 0 {
			return nil, tx.Commit()
		}
		return nil, nil
	}
	ids := make([]int64, len(cmds))
	for i, c := range cmds {
		ids[i] = c.ID
	}
	if err := markDelivered(tx, ids); err != nil {
		return nil, err
	}
	for i := range cmds {
		cmds[i].State, cmds[i].Attempts, cmds[i].UpdatedAt = wire.StateDelivered, cmds[i].Attempts+1, tx.now
		if cmds[i].DeliveredAt.IsZero() {
			cmds[i].DeliveredAt = tx.now
		}
	}
	return cmds, tx.Commit()
}

// CommandsAfter returns open commands (not done or failed) with id > after;
// relays poll it to wake the long-poll of whichever agent a command is for,
// including commands queued by another process (the CLI). Ids are never
// reused (AUTOINCREMENT), so the cursor misses nothing.
func (db *DB) CommandsAfter(ctx context.Context, after int64, limit int) ([]Command, error) {
	if limit <= 0 {
		limit = 1000
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE id > ? AND acked_at = 0 ORDER BY id LIMIT ?`, after, limit))
}

// ListCommands returns a target's most recent commands, newest first.
func (db *DB) ListCommands(ctx context.Context, kind TargetKind, target string, limit int) ([]Command, error) {
	if limit <= 0 {
		limit = 20
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	cmds, err := scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE target_kind = ? AND target_id = ? ORDER BY id DESC LIMIT ?`, kind, target, limit))
	for i := range cmds {
		cmds[i] = derive(cmds[i], tx.now)
	}
	return cmds, err
}

// derive shows an open command past its answer timeout as the failure the
// next sweep (ExpireCommands) will record, so a listing read while no
// relay runs is true too.
func derive(c Command, now time.Time) Command {
	if !c.EndedAt.IsZero() {
		return c
	}
	if (c.State == wire.StateDelivered || c.State == wire.StateRunning) && now.Sub(c.UpdatedAt) >= CommandAnswerTimeout {
		c.Error = expiredReason(c, now)
		c.State = wire.StateFailed
	}
	return c
}

// Describe is the command's state for an operator: "queued", "running",
// the stage of a running upgrade ("downloading"), "failed: reason",
// "rolled back: reason".
func (c Command) Describe() string {
	switch {
	case c.State == wire.StateFailed:
		return "failed: " + c.Error
	case c.State == wire.StateRolledBack:
		return "rolled back: " + c.Error
	case c.State == wire.StateRunning && c.Stage != "":
		return string(c.Stage)
	}
	return string(c.State)
}

// Ended reports whether the command reached a final state.
func (c Command) Ended() bool {
	return c.State.Ended()
}

// fillProxyCommands sets each proxy's latest command of every type and
// its last error (the latest of those that failed).
func fillProxyCommands(tx *Tx, ps []Proxy) error {
	if len(ps) == 0 {
		return nil
	}
	q := `SELECT ` + commandCols + ` FROM commands WHERE id IN (SELECT MAX(id) FROM commands WHERE target_kind = 'proxy'`
	var args []any
	if len(ps) == 1 {
		q += ` AND target_id = ?`
		args = append(args, fmt.Sprint(ps[0].ID))
	}
	cmds, err := scanCommands(tx.query(q+` GROUP BY target_id, type) ORDER BY id DESC`, args...))
	if err != nil {
		return err
	}
	byID := map[string][]Command{}
	for _, c := range cmds {
		byID[c.TargetID] = append(byID[c.TargetID], derive(c, tx.now))
	}
	for i := range ps {
		ps[i].Commands = byID[fmt.Sprint(ps[i].ID)]
		if c, ok := ps[i].UpgradeCommand(); ok {
			ps[i].UpgradeState = UpgradeText(&c)
		}
		for _, c := range ps[i].Commands {
			if c.State == wire.StateFailed || c.State == wire.StateRolledBack {
				ps[i].LastError = fmt.Sprintf("%s (command %d, %s): %s", c.Type, c.ID, c.UpdatedAt.Format(time.RFC3339), errorText(c))
				break
			}
		}
	}
	return nil
}

// errorText is a failed command's reason, "rolled back: " first for an
// upgrade that was rolled back.
func errorText(c Command) string {
	if c.State == wire.StateRolledBack {
		return "rolled back: " + c.Error
	}
	return c.Error
}

// openCommand returns the target's latest command of a type that has not
// ended (bounds applied).
func openCommand(tx *Tx, kind TargetKind, target string, typ wire.CommandType) (Command, bool, error) {
	cmds, err := scanCommands(tx.query(`SELECT `+commandCols+` FROM commands
		WHERE target_kind = ? AND target_id = ? AND type = ? AND acked_at = 0 ORDER BY id DESC`, kind, target, typ))
	if err != nil {
		return Command{}, false, err
	}
	for _, c := range cmds {
		if c = derive(c, tx.now); c.State != wire.StateFailed {
			return c, true, nil
		}
	}
	return Command{}, false, nil
}

// UpgradeCommand returns the proxy's latest upgrade command, if any.
func (p Proxy) UpgradeCommand() (Command, bool) {
	for _, c := range p.Commands {
		if c.Type == wire.CmdUpgrade {
			return c, true
		}
	}
	return Command{}, false
}

// Deployment is a quick deployment of a proxy server onto an asset, with
// the state of its deploy-proxy command.
type Deployment struct {
	JoinTokenID int64      `json:"join_token_id"`
	ClusterID   int64      `json:"cluster_id"`
	Cluster     string     `json:"cluster"`
	AssetID     string     `json:"asset_id"`
	Hostname    string     `json:"hostname"`
	ProxyID     int64      `json:"proxy_id,omitempty"` // once the relay joined
	ExpiresAt   time.Time  `json:"expires_at"`
	Command     Command    `json:"command"`
	State       wire.State `json:"state"` // the command's state
	Error       string     `json:"error,omitempty"`
}

// ListDeployments returns quick deployments, newest first; clusterID 0
// lists all.
func (db *DB) ListDeployments(ctx context.Context, clusterID int64) ([]Deployment, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT j.id, j.cluster_id, cl.name, COALESCE(j.asset_id, ''), COALESCE(a.hostname, ''), COALESCE(j.proxy_id, 0), j.expires_at, j.used_at,
		c.id, c.target_kind, c.target_id, c.type, c.payload, c.created_at, c.delivered_at, c.acked_at, c.state, c.attempts, c.error, c.updated_at, c.stage
		FROM join_tokens j JOIN clusters cl ON cl.id = j.cluster_id
		JOIN commands c ON c.target_kind = 'agent' AND c.type = 'deploy-proxy' AND json_extract(c.payload, '$.join_token') = j.id
		LEFT JOIN agents a ON a.id = j.asset_id
		WHERE j.deploy = 'quick' AND (? = 0 OR j.cluster_id = ?) ORDER BY j.id DESC LIMIT 200`, clusterID, clusterID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Deployment
	for rows.Next() {
		var d Deployment
		var exp, used, created, delivered, acked, updated int64
		c := &d.Command
		if err := rows.Scan(&d.JoinTokenID, &d.ClusterID, &d.Cluster, &d.AssetID, &d.Hostname, &d.ProxyID, &exp, &used,
			&c.ID, &c.TargetKind, &c.TargetID, &c.Type, &c.Payload, &created, &delivered, &acked, &c.State, &c.Attempts, &c.Error, &updated, &c.Stage); err != nil {
			return nil, err
		}
		d.ExpiresAt = fromMS(exp)
		c.CreatedAt, c.DeliveredAt, c.EndedAt, c.UpdatedAt = fromMS(created), fromMS(delivered), fromMS(acked), fromMS(updated)
		d.Command = derive(d.Command, tx.now)
		if (c.State == wire.StateQueued || c.State == wire.StateDelivered) && used == 0 && !tx.now.Before(d.ExpiresAt) {
			c.State = wire.StateFailed
			c.Error = fmt.Sprintf("the join token expired at %s before the agent started the relay: deploy again", d.ExpiresAt.Format(time.RFC3339))
		}
		d.State, d.Error = d.Command.State, d.Command.Error
		out = append(out, d)
	}
	return out, rows.Err()
}

type rowScanner interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}

func scanCommands(rows rowScanner, err error) ([]Command, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Command
	for rows.Next() {
		var c Command
		var created, delivered, acked, updated int64
		if err := rows.Scan(&c.ID, &c.TargetKind, &c.TargetID, &c.Type, &c.Payload, &created, &delivered, &acked,
			&c.State, &c.Attempts, &c.Error, &updated, &c.Stage); err != nil {
			return nil, err
		}
		c.CreatedAt, c.DeliveredAt, c.EndedAt, c.UpdatedAt = fromMS(created), fromMS(delivered), fromMS(acked), fromMS(updated)
		out = append(out, c)
	}
	return out, rows.Err()
}

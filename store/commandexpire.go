package store

import (
	"context"
	"fmt"
	"time"

	"outpost/relay/wire"
)

// ExpireCommands ends every open command past its bounds (see
// MaxDeliveries, CommandAnswerTimeout) as failed, the actor being "system";
// the management host runs it periodically so a target that went away
// still leaves a true state. It returns how many it ended.
func (db *DB) ExpireCommands(ctx context.Context) (int, error) {
	tx, err := db.BeginTx(WithActor(ctx, "system"))
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n, err := expireCommands(tx, "", "")
	if err != nil || n == 0 {
		return n, err
	}
	return n, tx.Commit()
}

// expireCommands fails the open commands that heard nothing for
// CommandAnswerTimeout: those of every target when kind is "", else those
// of one target that is asking for its commands again, which also ends
// those it was handed MaxDeliveries times without answering.
func expireCommands(tx *Tx, kind TargetKind, target string) (int, error) {
	q := `SELECT ` + commandCols + ` FROM commands WHERE acked_at = 0 AND state IN ('delivered', 'running') AND updated_at <= ?`
	args := []any{ms(tx.now.Add(-CommandAnswerTimeout))}
	if kind != "" {
		q = `SELECT ` + commandCols + ` FROM commands WHERE target_kind = ? AND target_id = ? AND acked_at = 0 AND (
			(state = 'delivered' AND attempts >= ?) OR (state IN ('delivered', 'running') AND updated_at <= ?))`
		args = []any{kind, target, MaxDeliveries, ms(tx.now.Add(-CommandAnswerTimeout))}
	}
	cmds, err := scanCommands(tx.query(q, args...))
	if err != nil {
		return 0, err
	}
	for _, c := range cmds {
		if err := failCommand(tx, c.TargetKind, c.TargetID, c.ID, expiredReason(c, tx.now)); err != nil {
			return 0, err
		}
	}
	n, err := expireDeployments(tx, kind, target)
	return len(cmds) + n, err
}

// expireDeployments fails the quick deployments still to be handed over
// whose join token expired: the relay could never join with it.
func expireDeployments(tx *Tx, kind TargetKind, target string) (int, error) {
	if kind == TargetProxy {
		return 0, nil
	}
	q := `SELECT c.id, c.target_id, j.expires_at FROM commands c JOIN join_tokens j ON j.id = json_extract(c.payload, '$.join_token')
		WHERE c.target_kind = 'agent' AND c.type = 'deploy-proxy' AND c.acked_at = 0 AND c.state IN ('queued', 'delivered')
		AND j.used_at = 0 AND j.expires_at <= ?`
	args := []any{ms(tx.now)}
	if kind != "" {
		q += ` AND c.target_id = ?`
		args = append(args, target)
	}
	rows, err := tx.query(q, args...)
	if err != nil {
		return 0, err
	}
	type exp struct {
		id     int64
		target string
		at     int64
	}
	var es []exp
	for rows.Next() {
		var e exp
		if err := rows.Scan(&e.id, &e.target, &e.at); err != nil {
			rows.Close()
			return 0, err
		}
		es = append(es, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, e := range es {
		reason := fmt.Sprintf("the join token expired at %s before the agent started the relay: deploy again", fromMS(e.at).Format(time.RFC3339))
		if err := failCommand(tx, TargetAgent, e.target, e.id, reason); err != nil {
			return 0, err
		}
	}
	return len(es), nil
}

func expiredReason(c Command, now time.Time) string {
	who := "the agent"
	if c.TargetKind == TargetProxy {
		who = "the relay"
	}
	if c.State == wire.StateDelivered && c.Attempts >= MaxDeliveries && now.Sub(c.UpdatedAt) < CommandAnswerTimeout {
		return fmt.Sprintf("delivered %d times without an answer from %s", c.Attempts, who)
	}
	if c.State == wire.StateRunning && c.Stage != "" {
		return fmt.Sprintf("stuck %s: no answer from %s since %s", c.Stage, who, c.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("no answer from %s since %s", who, c.UpdatedAt.UTC().Format(time.RFC3339))
}

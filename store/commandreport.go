package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"unicode"

	"outpost/relay/wire"
)

// MarkDelivered records that commands were handed to their target (one
// more attempt each); DeliverCommands does this itself.
func (db *DB) MarkDelivered(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := markDelivered(tx, ids); err != nil {
		return err
	}
	return tx.Commit()
}

func markDelivered(tx *Tx, ids []int64) error {
	q := `UPDATE commands SET state = 'delivered', attempts = attempts + 1, updated_at = ?,
		delivered_at = CASE WHEN delivered_at = 0 THEN ? ELSE delivered_at END
		WHERE acked_at = 0 AND state IN ('queued', 'delivered') AND id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
	args := []any{ms(tx.now), ms(tx.now)}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := tx.exec(q, args...)
	return err
}

// AckCommands records that the target carried the commands out (done);
// only the target's own commands are touched, so a forged id does nothing.
func (db *DB) AckCommands(ctx context.Context, kind TargetKind, target string, ids []int64) error {
	rs := make([]CommandReport, len(ids))
	for i, id := range ids {
		rs[i] = CommandReport{ID: id, State: wire.StateDone}
	}
	return db.ReportCommands(ctx, kind, target, rs)
}

// ReportCommands records what a target says about its commands: running
// (with the stage of an upgrade), done, failed or rolled back with a
// reason (which also goes to the audit log, the target as actor). Only the
// target's own open commands are touched: a forged id, or a report about a
// command already ended, does nothing. Another state, or a stage other
// than downloading, verifying or restarting, is refused.
func (db *DB) ReportCommands(ctx context.Context, kind TargetKind, target string, rs []CommandReport) error {
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		if !r.State.Reported() {
			return Errorf(EInvalid, "command %d: state %q: want running, done, failed or rolled_back", r.ID, r.State)
		}
		if r.Stage != "" && !r.Stage.Valid() {
			return Errorf(EInvalid, "command %d: stage %q: want downloading, verifying or restarting", r.ID, cleanReason(string(r.Stage), 40))
		}
	}
	tx, err := db.BeginTx(WithActor(ctx, string(kind)+"/"+target))
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range rs {
		if err := reportCommand(tx, kind, target, r); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func reportCommand(tx *Tx, kind TargetKind, target string, r CommandReport) error {
	now := ms(tx.now)
	switch r.State {
	case wire.StateRunning:
		// A report without a stage keeps the one before: "running" says
		// nothing new about where an upgrade stands.
		_, err := tx.exec(`UPDATE commands SET state = 'running', updated_at = ?, stage = CASE WHEN ? != '' THEN ? ELSE stage END
			WHERE id = ? AND target_kind = ? AND target_id = ? AND acked_at = 0`, now, r.Stage, r.Stage, r.ID, kind, target)
		return err
	case wire.StateDone:
		_, err := tx.exec(`UPDATE commands SET state = 'done', error = '', stage = '', acked_at = ?, updated_at = ?
			WHERE id = ? AND target_kind = ? AND target_id = ? AND acked_at = 0`, now, now, r.ID, kind, target)
		return err
	case wire.StateRolledBack:
		// Longer than a failure's reason: it carries the new version's
		// last log lines.
		reason := cleanReason(r.Error, 1000)
		if reason == "" {
			reason = "the " + string(kind) + " gave no reason"
		}
		return endCommand(tx, kind, target, r.ID, wire.StateRolledBack, reason)
	}
	reason := cleanReason(r.Error, 300)
	if reason == "" {
		reason = "the " + string(kind) + " gave no reason"
	}
	return failCommand(tx, kind, target, r.ID, reason)
}

// failCommand ends an open command as failed and writes the audit entry.
func failCommand(tx *Tx, kind TargetKind, target string, id int64, reason string) error {
	return endCommand(tx, kind, target, id, wire.StateFailed, reason)
}

// endCommand ends an open command as failed or rolled back (state) and
// writes the audit entry, command.failed or command.rolled_back.
func endCommand(tx *Tx, kind TargetKind, target string, id int64, state wire.State, reason string) error {
	var typ string
	err := tx.queryRow(`UPDATE commands SET state = ?, error = ?, stage = '', acked_at = ?, updated_at = ?
		WHERE id = ? AND target_kind = ? AND target_id = ? AND acked_at = 0 RETURNING type`,
		state, reason, ms(tx.now), ms(tx.now), id, kind, target).Scan(&typ)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil // not this target's, or already ended
		}
		return err
	}
	return tx.audit("command."+string(state), commandTarget(tx, kind, target), "command=%d type=%s: %s", id, typ, reason)
}

// commandTarget names a command's target in the audit log as the other
// entries do: proxy/ACCOUNT/ID for a proxy server (ids are only shown
// within an account), agent/ID for an agent (agent ids are global).
func commandTarget(tx *Tx, kind TargetKind, target string) string {
	if kind == TargetProxy {
		var acct string
		if tx.queryRow(`SELECT a.name FROM proxies p JOIN clusters c ON c.id = p.cluster_id JOIN accounts a ON a.id = c.account_id
			WHERE p.id = ?`, target).Scan(&acct) == nil {
			return "proxy/" + acct + "/" + target
		}
	}
	return string(kind) + "/" + target
}

// cleanReason keeps a reported reason to one printable line of at most
// limit characters: it comes from another machine and ends up in tables.
func cleanReason(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return s
}

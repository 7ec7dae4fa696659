package store

import (
	"context"
	"strings"
)

// Command target kinds.
const (
	TargetAgent = "agent"
	TargetProxy = "proxy"
)

func enqueue(tx *Tx, kind, target, typ, payload string) error {
	if payload == "" {
		payload = "{}"
	}
	_, err := tx.exec(`INSERT INTO commands (target_kind, target_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		kind, target, typ, payload, ms(tx.now))
	return err
}

// PendingCommands returns the unacknowledged commands of one target, oldest
// first. They stay pending until AckCommands, so a command delivered to an
// agent that crashed before acting is delivered again.
func (db *DB) PendingCommands(ctx context.Context, kind, target string) ([]Command, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return scanCommands(tx.query(`SELECT id, target_kind, target_id, type, payload, created_at, delivered_at FROM commands
		WHERE target_kind = ? AND target_id = ? AND acked_at = 0 ORDER BY id`, kind, target))
}

// CommandsAfter returns pending commands with id > after; relays poll it to
// wake the long-poll of whichever agent a command is for, including commands
// queued by another process (the CLI).
func (db *DB) CommandsAfter(ctx context.Context, after int64, limit int) ([]Command, error) {
	if limit <= 0 {
		limit = 1000
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return scanCommands(tx.query(`SELECT id, target_kind, target_id, type, payload, created_at, delivered_at FROM commands
		WHERE id > ? AND acked_at = 0 ORDER BY id LIMIT ?`, after, limit))
}

func scanCommands(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}, err error) ([]Command, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Command
	for rows.Next() {
		var c Command
		var created, delivered int64
		if err := rows.Scan(&c.ID, &c.TargetKind, &c.TargetID, &c.Type, &c.Payload, &created, &delivered); err != nil {
			return nil, err
		}
		c.CreatedAt, c.DeliveredAt = fromMS(created), fromMS(delivered)
		out = append(out, c)
	}
	return out, rows.Err()
}

// MarkDelivered records that commands were handed to their target.
func (db *DB) MarkDelivered(ctx context.Context, ids []int64) error {
	return db.updateCommands(ctx, "delivered_at", "", "", ids)
}

// AckCommands records that the target carried the commands out; only the
// target's own commands are touched, so a forged id does nothing.
func (db *DB) AckCommands(ctx context.Context, kind, target string, ids []int64) error {
	return db.updateCommands(ctx, "acked_at", kind, target, ids)
}

func (db *DB) updateCommands(ctx context.Context, col, kind, target string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	q := `UPDATE commands SET ` + col + ` = ? WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `) AND ` + col + ` = 0`
	args := []any{ms(tx.now)}
	for _, id := range ids {
		args = append(args, id)
	}
	if kind != "" {
		q += ` AND target_kind = ? AND target_id = ?`
		args = append(args, kind, target)
	}
	if _, err := tx.exec(q, args...); err != nil {
		return err
	}
	return tx.Commit()
}

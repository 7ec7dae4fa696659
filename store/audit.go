package store

import "context"

// AuditPage is one page of the audit log, newest first, with the number
// of entries in all.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Total   int          `json:"total"`
}

// ListAuditPage returns limit entries (at most 1000) after skipping the
// offset newest ones, so a viewer pages the log without loading it.
func (db *DB) ListAuditPage(ctx context.Context, offset, limit int) (AuditPage, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return AuditPage{}, err
	}
	defer tx.Rollback()
	var p AuditPage
	if err := tx.queryRow(`SELECT COUNT(*) FROM audit`).Scan(&p.Total); err != nil {
		return p, err
	}
	rows, err := tx.query(`SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ? OFFSET ?`, limit, max(offset, 0))
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return p, err
		}
		e.At = fromMS(at)
		p.Entries = append(p.Entries, e)
	}
	return p, rows.Err()
}

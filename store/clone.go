package store

import "context"

// FlagDuplicate raises agent id's duplicate-identity flag because two live
// connections held check-ins as it at once: copies that present the same
// fingerprint (one machine, or a directory copied before fingerprints
// covered where the identity lives), which RecordCheckins cannot tell
// apart. seen names the copy's connection. The first flag is kept (and
// audited once); the flag stays until the copy re-enrols, as with a
// fingerprint that differs.
func (db *DB) FlagDuplicate(ctx context.Context, id, seen string) error {
	tx, err := db.BeginTx(WithActor(ctx, "system"))
	if err != nil {
		return err
	}
	defer tx.Rollback()
	flagged, err := flagDuplicate(tx, id, seen)
	if err != nil || !flagged {
		return err
	}
	if err := tx.audit("agent.duplicate", "agent/"+id, "two live connections check in as this agent; the copy (%s) was told to back off", seen); err != nil {
		return err
	}
	return tx.Commit()
}

func flagDuplicate(tx *Tx, id, seen string) (bool, error) {
	res, err := tx.exec(`UPDATE agents SET dup_fingerprint = ?, dup_at = ? WHERE id = ? AND dup_fingerprint = ''`,
		"live connection "+seen, ms(tx.now), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

package store

import "context"

// FlagDuplicate raises agent id's duplicate-identity flag for a copy the
// relay found: a check-in whose fingerprint is not the enrolled one (the
// copy's fingerprint), or two live connections checking in as the agent
// with the same fingerprint (one machine, or a directory copied before
// fingerprints covered where the identity lives), which RecordCheckins
// cannot tell apart. conn names the copy's connection for the audit log.
// The first flag is kept and audited once; it stays until the copy
// re-enrols, and the copy's check-ins change nothing else.
func (db *DB) FlagDuplicate(ctx context.Context, id, fingerprint, conn string) error {
	tx, err := db.BeginTx(WithActor(ctx, "system"))
	if err != nil {
		return err
	}
	defer tx.Rollback()
	flagged, enrolled, err := flagDuplicate(tx, id, fingerprint)
	if err != nil || !flagged {
		return err
	}
	why := "a copy with another fingerprint"
	if fingerprint == enrolled {
		why = "two live connections with the same fingerprint"
	}
	if err := tx.audit("agent.duplicate", "agent/"+id, "%s checks in as this agent (%s); the copy was told to back off", why, conn); err != nil {
		return err
	}
	return tx.Commit()
}

func flagDuplicate(tx *Tx, id, fingerprint string) (flagged bool, enrolled string, err error) {
	if err := tx.queryRow(`SELECT fingerprint FROM agents WHERE id = ?`, id).Scan(&enrolled); err != nil {
		return false, "", err
	}
	res, err := tx.exec(`UPDATE agents SET dup_fingerprint = ?, dup_at = ? WHERE id = ? AND dup_fingerprint = ''`, fingerprint, ms(tx.now), id)
	if err != nil {
		return false, "", err
	}
	n, err := res.RowsAffected()
	return n > 0, enrolled, err
}

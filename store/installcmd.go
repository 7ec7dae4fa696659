package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"outpost/relay/wire"
)

// InstallInput configures a new install command (seed 000, step 3).
type InstallInput struct {
	AccountID int64
	ClusterID int64 // 0 = agents connect directly
	TTL       time.Duration
	OS        wire.OS // "" = linux
	Group     string
	Provider  string
	ImageMode bool
}

// DefaultInstallTTL is the expiry when none is given.
const DefaultInstallTTL = 24 * time.Hour

// CreateInstallCommand creates an install key; the key is returned once.
func (db *DB) CreateInstallCommand(ctx context.Context, in InstallInput) (InstallCommand, error) {
	if in.TTL == 0 {
		in.TTL = DefaultInstallTTL
	}
	if in.TTL < 0 {
		return InstallCommand{}, Errorf(EInvalid, "expiry must be in the future")
	}
	if in.OS == "" {
		in.OS = wire.OSLinux
	}
	if _, err := wire.ParseOS(string(in.OS)); err != nil {
		return InstallCommand{}, Errorf(EInvalid, "%s", err)
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return InstallCommand{}, err
	}
	defer tx.Rollback()
	var cluster any
	clusterName := "direct"
	if in.ClusterID != 0 {
		c, err := getCluster(tx, in.ClusterID)
		if err != nil {
			return InstallCommand{}, err
		}
		if c.AccountID != in.AccountID {
			return InstallCommand{}, Errorf(EForbidden, "cluster %q belongs to another account", c.Name)
		}
		cluster, clusterName = c.ID, c.Name
	}
	key := NewSecret("ik_")
	res, err := tx.exec(`INSERT INTO install_commands (account_id, cluster_id, key_hash, key_prefix, expires_at, provider, grp, os, image_mode, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, in.AccountID, cluster, HashSecret(key), key[:10], ms(tx.now.Add(in.TTL)),
		in.Provider, in.Group, in.OS, in.ImageMode, ms(tx.now))
	if err != nil {
		return InstallCommand{}, sqlErr(err, "install command")
	}
	id, _ := res.LastInsertId()
	acct, err := accountName(tx, in.AccountID)
	if err != nil {
		return InstallCommand{}, err
	}
	if err := tx.audit("installcmd.create", fmt.Sprintf("installcmd/%s/%d", acct, id), "id=%d cluster=%s os=%s group=%s provider=%s expires=%s image=%t", id, clusterName, in.OS, in.Group, in.Provider,
		tx.now.Add(in.TTL).Format(time.RFC3339), in.ImageMode); err != nil {
		return InstallCommand{}, err
	}
	ic, err := getInstallCommand(tx, id)
	if err != nil {
		return InstallCommand{}, err
	}
	ic.Key = key
	return ic, tx.Commit()
}

const installCols = `i.id, i.account_id, COALESCE(i.cluster_id, 0), COALESCE(c.name, ''), i.key_prefix, i.expires_at, i.provider, i.grp,
	i.os, i.image_mode, i.uses, i.revoked_at, i.created_at`

func scanInstall(tx *Tx, sc interface{ Scan(...any) error }) (InstallCommand, error) {
	var ic InstallCommand
	var exp, rev, created int64
	err := sc.Scan(&ic.ID, &ic.AccountID, &ic.ClusterID, &ic.Cluster, &ic.KeyPrefix, &exp, &ic.Provider, &ic.Group,
		&ic.OS, &ic.ImageMode, &ic.Uses, &rev, &created)
	ic.ExpiresAt, ic.CreatedAt = fromMS(exp), fromMS(created)
	ic.Revoked = rev != 0
	ic.Expired = !tx.now.Before(ic.ExpiresAt)
	return ic, err
}

func getInstallCommand(tx *Tx, id int64) (InstallCommand, error) {
	ic, err := scanInstall(tx, tx.queryRow(`SELECT `+installCols+` FROM install_commands i LEFT JOIN clusters c ON c.id = i.cluster_id WHERE i.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ic, Errorf(ENotFound, "install command %d not found", id)
	}
	return ic, err
}

// ListInstallCommands lists an account's install commands, newest first.
func (db *DB) ListInstallCommands(ctx context.Context, accountID int64) ([]InstallCommand, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT `+installCols+` FROM install_commands i LEFT JOIN clusters c ON c.id = i.cluster_id
		WHERE (? = 0 OR i.account_id = ?) ORDER BY i.id DESC`, accountID, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InstallCommand
	for rows.Next() {
		ic, err := scanInstall(tx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ic)
	}
	return out, rows.Err()
}

// RevokeInstallCommand stops a key from enrolling anything more; agents it
// already enrolled keep working.
func (db *DB) RevokeInstallCommand(ctx context.Context, accountID, id int64) error {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ic, err := getInstallCommand(tx, id)
	if err != nil {
		return err
	}
	if accountID != 0 && ic.AccountID != accountID {
		return Errorf(ENotFound, "install command %d not found", id)
	}
	if ic.Revoked {
		return Errorf(EConflict, "install command %d is already revoked", id)
	}
	if _, err := tx.exec(`UPDATE install_commands SET revoked_at = ? WHERE id = ?`, ms(tx.now), id); err != nil {
		return err
	}
	acct, err := accountName(tx, ic.AccountID)
	if err != nil {
		return err
	}
	if err := tx.audit("installcmd.revoke", fmt.Sprintf("installcmd/%s/%d", acct, id), ""); err != nil {
		return err
	}
	return tx.Commit()
}

// InstallState is whether an install command still enrols agents.
type InstallState string

// Install command states; a revoked command is shown revoked even once it
// has also expired.
const (
	InstallActive  InstallState = "active"
	InstallExpired InstallState = "expired"
	InstallRevoked InstallState = "revoked"
)

// State is the command's InstallState.
func (ic InstallCommand) State() InstallState {
	switch {
	case ic.Revoked:
		return InstallRevoked
	case ic.Expired:
		return InstallExpired
	}
	return InstallActive
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// CreateAccount creates an account and returns its verification key, which
// is shown once: only its hash is kept.
func (db *DB) CreateAccount(ctx context.Context, name string) (Account, string, error) {
	name = strings.TrimSpace(name)
	if err := validName("account", name); err != nil {
		return Account{}, "", err
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Account{}, "", err
	}
	defer tx.Rollback()
	key := NewSecret("vk_")
	res, err := tx.exec(`INSERT INTO accounts (name, key_hash, created_at, key_created_at) VALUES (?, ?, ?, ?)`,
		name, HashSecret(key), ms(tx.now), ms(tx.now))
	if err != nil {
		return Account{}, "", sqlErr(err, "account "+quote(name)+" already exists")
	}
	id, _ := res.LastInsertId()
	if err := tx.audit("account.create", "account/"+name, ""); err != nil {
		return Account{}, "", err
	}
	if err := tx.Commit(); err != nil {
		return Account{}, "", err
	}
	return Account{ID: id, Name: name, CreatedAt: tx.now, KeyCreatedAt: tx.now}, key, nil
}

// RotateAccountKey replaces an account's verification key and returns the
// new one (shown once). The old key enrols nothing from then on; agents
// already enrolled keep their own credentials.
func (db *DB) RotateAccountKey(ctx context.Context, name string) (Account, string, error) {
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return Account{}, "", err
	}
	defer tx.Rollback()
	a, err := findAccount(tx, name)
	if err != nil {
		return Account{}, "", err
	}
	key := NewSecret("vk_")
	if _, err := tx.exec(`UPDATE accounts SET key_hash = ?, key_created_at = ? WHERE id = ?`, HashSecret(key), ms(tx.now), a.ID); err != nil {
		return Account{}, "", err
	}
	if err := tx.audit("account.rotate-key", "account/"+a.Name, ""); err != nil {
		return Account{}, "", err
	}
	if err := tx.Commit(); err != nil {
		return Account{}, "", err
	}
	a.KeyCreatedAt = tx.now
	return a, key, nil
}

const accountColumns = `id, name, created_at, key_created_at`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var at, keyAt int64
	err := sc.Scan(&a.ID, &a.Name, &at, &keyAt)
	a.CreatedAt, a.KeyCreatedAt = fromMS(at), fromMS(keyAt)
	return a, err
}

// ListAccounts returns all accounts by name.
func (db *DB) ListAccounts(ctx context.Context) ([]Account, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT ` + accountColumns + ` FROM accounts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// FindAccount resolves an account by name; an empty name picks the only
// account when there is exactly one, so single-tenant use needs no flag.
func (db *DB) FindAccount(ctx context.Context, name string) (Account, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return Account{}, err
	}
	defer tx.Rollback()
	return findAccount(tx, name)
}

func findAccount(tx *Tx, name string) (Account, error) {
	if name == "" {
		rows, err := tx.query(`SELECT ` + accountColumns + ` FROM accounts ORDER BY id LIMIT 2`)
		if err != nil {
			return Account{}, err
		}
		defer rows.Close()
		var found []Account
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return Account{}, err
			}
			found = append(found, a)
		}
		if err := rows.Err(); err != nil {
			return Account{}, err
		}
		switch len(found) {
		case 0:
			return Account{}, Errorf(ENotFound, "no account yet: create one with 'outpost account create NAME'")
		case 1:
			return found[0], nil
		default:
			return Account{}, Errorf(EInvalid, "several accounts exist: name one with --account")
		}
	}
	a, err := scanAccount(tx.queryRow(`SELECT `+accountColumns+` FROM accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, Errorf(ENotFound, "account %q not found", name)
	}
	return a, err
}

func validName(what, name string) error {
	if name == "" {
		return Errorf(EInvalid, "%s name is required", what)
	}
	if name == "." || name == ".." {
		return Errorf(EInvalid, "%s name %q is reserved", what, name)
	}
	if len(name) > 64 {
		return Errorf(EInvalid, "%s name %q is longer than 64 characters", what, name)
	}
	for _, r := range name {
		if r < ' ' || r == 0x7f || r == '/' {
			return Errorf(EInvalid, "%s name %q contains a control character or '/'", what, name)
		}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

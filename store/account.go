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
	res, err := tx.exec(`INSERT INTO accounts (name, key_hash, created_at) VALUES (?, ?, ?)`, name, HashSecret(key), ms(tx.now))
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
	return Account{ID: id, Name: name, CreatedAt: tx.now}, key, nil
}

// ListAccounts returns all accounts by name.
func (db *DB) ListAccounts(ctx context.Context) ([]Account, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT id, name, created_at FROM accounts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		var at int64
		if err := rows.Scan(&a.ID, &a.Name, &at); err != nil {
			return nil, err
		}
		a.CreatedAt = fromMS(at)
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
	var a Account
	var at int64
	if name == "" {
		rows, err := tx.query(`SELECT id, name, created_at FROM accounts ORDER BY id LIMIT 2`)
		if err != nil {
			return a, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
			if err := rows.Scan(&a.ID, &a.Name, &at); err != nil {
				return a, err
			}
		}
		switch n {
		case 0:
			return Account{}, Errorf(ENotFound, "no account yet: create one with 'outpost account create NAME'")
		case 1:
			a.CreatedAt = fromMS(at)
			return a, rows.Err()
		default:
			return Account{}, Errorf(EInvalid, "several accounts exist: name one with --account")
		}
	}
	err := tx.queryRow(`SELECT id, name, created_at FROM accounts WHERE name = ?`, name).Scan(&a.ID, &a.Name, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return a, Errorf(ENotFound, "account %q not found", name)
	}
	a.CreatedAt = fromMS(at)
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

package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// DB is the management store: one writer connection (BEGIN IMMEDIATE) and a
// pool of readers over a WAL-mode SQLite file.
type DB struct {
	Path  string
	Clock Clock

	w *sql.DB // single writer
	r *sql.DB // read pool

	mu       sync.RWMutex
	settings Settings
}

// Open opens (creating if needed, mode 0600) the database at path and runs
// pending migrations. clock may be nil for the system clock.
func Open(path string, clock Clock) (*DB, error) {
	if clock == nil {
		clock = systemClock{}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	db := &DB{Path: path, Clock: clock, w: w, r: r, settings: DefaultSettings()}
	if err := db.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.loadSettings(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	err1 := db.r.Close()
	err2 := db.w.Close()
	return errors.Join(err1, err2)
}

func (db *DB) migrate() error {
	if _, err := db.w.Exec(`CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migration/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrateFile(name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

// migrateFile runs one migration in its own transaction, with foreign keys
// off as SQLite's table-rebuild procedure requires (dropping a parent table
// would otherwise fire ON DELETE actions on the rows referencing it); the
// setting cannot change inside a transaction, so it is switched on the
// pinned writer connection around it, and foreign_key_check must find no
// dangling reference before the migration commits.
func (db *DB) migrateFile(name string) (err error) {
	ctx := context.Background()
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer func() {
		// The writer connection is reused: it must not keep foreign keys off.
		if _, e := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`); e != nil && err == nil {
			err = fmt.Errorf("foreign keys back on: %w", e)
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	buf, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(string(buf)); err != nil {
		return err
	}
	if err := foreignKeyCheck(tx); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO migrations (name) VALUES (?)`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// foreignKeyCheck fails on the first row whose foreign key points nowhere.
func foreignKeyCheck(tx *sql.Tx) error {
	rows, err := tx.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return err
		}
		return fmt.Errorf("foreign key check: row %d of %s points at a missing %s row", rowid.Int64, table, parent)
	}
	return rows.Err()
}

// Tx is a write (BEGIN IMMEDIATE) or read transaction with a fixed "now".
type Tx struct {
	*sql.Tx
	db  *DB
	now time.Time
	ctx context.Context
}

// BeginTx starts a write transaction on the single writer connection.
func (db *DB) BeginTx(ctx context.Context) (*Tx, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: db, now: db.Clock.Now().UTC(), ctx: ctx}, nil
}

// beginRead starts a read-only transaction on the read pool.
func (db *DB) beginRead(ctx context.Context) (*Tx, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: db, now: db.Clock.Now().UTC(), ctx: ctx}, nil
}

func (tx *Tx) exec(q string, args ...any) (sql.Result, error) {
	return tx.ExecContext(tx.ctx, q, args...)
}

func (tx *Tx) query(q string, args ...any) (*sql.Rows, error) {
	return tx.QueryContext(tx.ctx, q, args...)
}

func (tx *Tx) queryRow(q string, args ...any) *sql.Row {
	return tx.QueryRowContext(tx.ctx, q, args...)
}

// audit appends to the audit log inside the caller's transaction, so the
// entry exists exactly when the change does.
func (tx *Tx) audit(action, target, format string, args ...any) error {
	_, err := tx.exec(`INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		ms(tx.now), actorFrom(tx.ctx), action, target, fmt.Sprintf(format, args...))
	return err
}

// ms converts to the stored Unix-millisecond form; zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// NewSecret returns a random token with a readable prefix.
func NewSecret(prefix string) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b)
}

// HashSecret is how every secret is stored: only its SHA-256.
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// SecretMatches compares a presented secret with a stored hash in constant time.
func SecretMatches(secret, hash string) bool {
	got := HashSecret(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// sqlErr converts constraint failures into coded errors with the given
// conflict message.
func sqlErr(err error, conflict string) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return Errorf(EConflict, "%s", conflict)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return Errorf(EConflict, "%s: still referenced", conflict)
		case sqlite3.SQLITE_CONSTRAINT_TRIGGER, sqlite3.SQLITE_CONSTRAINT_CHECK:
			return Errorf(EInvalid, "%s", strings.TrimPrefix(se.Error(), "constraint failed: "))
		}
	}
	return err
}

// Settings returns the current timing settings.
func (db *DB) Settings() Settings {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.settings
}

func (db *DB) loadSettings(ctx context.Context) error {
	s := DefaultSettings()
	rows, err := db.r.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		if f := s.field(k); f != nil {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("setting %s: %w", k, err)
			}
			*f = time.Duration(n)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	db.settings = s
	db.mu.Unlock()
	return nil
}

// SetSettings validates and stores new timing settings.
func (db *DB) SetSettings(ctx context.Context, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, f := range settingFields {
		if _, err := tx.exec(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
			f.Key, strconv.FormatInt(int64(*f.Of(&s)), 10)); err != nil {
			return err
		}
	}
	if err := tx.audit("settings.set", "settings", "%s", s); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.mu.Lock()
	db.settings = s
	db.mu.Unlock()
	return nil
}

// ReloadSettings re-reads the settings, which another process (the CLI)
// may have changed, and reports whether they differ from those in use.
// Running relays call it about once a second: six rows, one read.
func (db *DB) ReloadSettings(ctx context.Context) (changed bool, err error) {
	old := db.Settings()
	if err := db.loadSettings(ctx); err != nil {
		return false, err
	}
	return db.Settings() != old, nil
}

// ListAudit returns the newest audit entries first.
func (db *DB) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(`SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

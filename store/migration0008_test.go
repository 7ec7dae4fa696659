package store_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"outpost/store"
)

// A database made by migrations 0001-0007 keeps its commands (and the
// counter past ids deleted before 0008) and its release key, which becomes
// the root of the key chain; the new states and stage are accepted.
func TestMigrationUpgradeStageKeyChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outpost.db")
	raw := openRaw(t, path)
	raw.SetMaxOpenConns(1)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, "\n", 2)[0], err)
		}
	}
	exec(`CREATE TABLE migrations (name TEXT PRIMARY KEY)`)
	names, _ := filepath.Glob("migration/000[1-7]_*.sql")
	if len(names) != 7 {
		t.Fatalf("got migrations %v, want 0001-0007", names)
	}
	for _, name := range names {
		buf, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		exec(string(buf))
		exec(`INSERT INTO migrations (name) VALUES (?)`, name)
	}
	at := t0.UnixMilli()
	root := strings.Repeat("ab", 32)
	exec(`INSERT INTO release_key (id, public_key, created_at) VALUES (1, ?, ?)`, root, at)
	exec(`INSERT INTO commands (target_kind, target_id, type, created_at, state, error, acked_at, updated_at) VALUES
		('proxy', '2', 'upgrade', ?, 'failed', 'boom', ?, ?), ('agent', 'ag_1', 'bind', ?, 'queued', '', 0, ?)`, at, at, at, at, at)
	// Commands 3-9 were deleted with their proxy server before 0008.
	exec(`INSERT INTO commands (id, target_kind, target_id, type, created_at) VALUES (9, 'proxy', '7', 'policy', ?)`, at)
	exec(`DELETE FROM commands WHERE id = 9`)
	cols := "(SELECT id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at, state, attempts, error, updated_at FROM commands)"
	before := dumpTables(t, raw, []string{cols})
	raw.Close()

	db, err := store.Open(path, newClock())
	if err != nil {
		t.Fatalf("Open (migrating from 0007): %v", err)
	}
	defer db.Close()
	f := &fixture{t: t, db: db, clock: newClock(), ctx: store.WithActor(t.Context(), "tester")}
	if after := dumpTables(t, f.raw(), []string{cols}); after != before {
		t.Errorf("commands changed by the migration:\n--- before\n%s--- after\n%s", before, after)
	}
	chain, err := db.ReleaseKeyChain(f.ctx)
	if err != nil || len(chain) != 1 || chain[0].Key != root || chain[0].Signature != "" {
		t.Errorf("key chain: got %+v, %v, want the 0007 key as its unsigned root", chain, err)
	}
	if k, err := db.ReleaseKey(f.ctx); err != nil || k != root {
		t.Errorf("ReleaseKey: got %q, %v, want the root", k, err)
	}
	res, err := f.raw().Exec(`INSERT INTO commands (target_kind, target_id, type, created_at, state, stage) VALUES ('proxy', '2', 'upgrade', ?, 'rolled_back', 'restarting')`, at)
	if err != nil {
		t.Fatalf("rolled_back with a stage: %v", err)
	}
	if id, _ := res.LastInsertId(); id <= 9 {
		t.Errorf("new command id: got %d, want > 9 (ids up to 9 were used before the migration)", id)
	}
	if _, err := f.raw().Exec(`INSERT INTO commands (target_kind, target_id, type, created_at, state) VALUES ('proxy', '2', 'x', ?, 'exploded')`, at); err == nil {
		t.Errorf("an unknown state: got accepted, want the CHECK to refuse it")
	}
	var idx int
	if err := f.raw().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('commands_pending', 'commands_open')`).Scan(&idx); err != nil || idx != 2 {
		t.Errorf("command indexes: got %d (%v), want 2", idx, err)
	}
}

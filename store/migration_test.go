package store_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// Deleting an object never frees its id for the next one, for every table
// whose ids the operator sees or the audit log names.
func TestIDsNotReusedAfterDelete(t *testing.T) {
	tests := []struct {
		name string
		// make creates one object and returns its id; remove deletes what
		// make created (through the store where it has a delete).
		make   func(f *fixture, acct store.Account) int64
		remove func(f *fixture, id int64)
	}{
		{name: "clusters",
			make: func(f *fixture, acct store.Account) int64 { return f.cluster(acct.ID, "edge", "relay.acme.example").ID },
			remove: func(f *fixture, id int64) {
				if err := f.db.DeleteCluster(f.ctx, id); err != nil {
					f.t.Fatal(err)
				}
			}},
		{name: "proxies",
			make: func(f *fixture, acct store.Account) int64 {
				c, err := f.db.FindCluster(f.ctx, acct.ID, "core")
				if err != nil {
					c = f.cluster(acct.ID, "core", "core.acme.example")
				}
				return f.proxy(c.ID, "relay-1", "1.0.0").ID
			},
			remove: func(f *fixture, id int64) {
				f.clock.Advance(f.db.Settings().ProxyOfflineAfter + time.Second)
				if err := f.db.DeleteProxy(f.ctx, id); err != nil {
					f.t.Fatal(err)
				}
			}},
		{name: "install_commands", // deleted with their cluster
			make: func(f *fixture, acct store.Account) int64 {
				c := f.cluster(acct.ID, "edge", "relay.acme.example")
				return f.installCmd(store.InstallInput{AccountID: acct.ID, ClusterID: c.ID}).ID
			},
			remove: func(f *fixture, id int64) {
				c, err := f.db.FindCluster(f.ctx, 0, "edge")
				if err != nil {
					f.t.Fatal(err)
				}
				if err := f.db.DeleteCluster(f.ctx, c.ID); err != nil {
					f.t.Fatal(err)
				}
			}},
		{name: "join_tokens", // deleted with their cluster
			make: func(f *fixture, acct store.Account) int64 {
				c := f.cluster(acct.ID, "edge", "relay.acme.example")
				jt, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", 0)
				if err != nil {
					f.t.Fatal(err)
				}
				return jt.ID
			},
			remove: func(f *fixture, id int64) {
				c, err := f.db.FindCluster(f.ctx, 0, "edge")
				if err != nil {
					f.t.Fatal(err)
				}
				if err := f.db.DeleteCluster(f.ctx, c.ID); err != nil {
					f.t.Fatal(err)
				}
			}},
		{name: "accounts", // no store API deletes one: the schema must still not reuse
			make: func(f *fixture, _ store.Account) int64 {
				a, _ := f.account(fmt.Sprintf("tmp-%d", f.clock.Now().UnixNano()))
				return a.ID
			},
			remove: func(f *fixture, id int64) {
				if _, err := f.raw().Exec(`DELETE FROM accounts WHERE id = ?`, id); err != nil {
					f.t.Fatal(err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			acct, _ := f.account("acme")
			first := tt.make(f, acct)
			tt.remove(f, first)
			f.clock.Advance(time.Second)
			if second := tt.make(f, acct); second <= first {
				t.Errorf("got id %d after deleting %d, want a new id (> %d)", second, first, first)
			}
		})
	}
}

// A database made by migrations 0001-0003, with rows in every table, keeps
// every row, index, trigger and foreign key through 0004, and ids deleted
// before the migration (named in the audit log) are not handed out again.
func TestMigrationNoIDReuseKeepsRows(t *testing.T) {
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
	for _, name := range []string{"0001_init.sql", "0002_agent_list_indexes.sql", "0003_agent_search.sql"} {
		buf, err := os.ReadFile(filepath.Join("migration", name))
		if err != nil {
			t.Fatal(err)
		}
		exec(string(buf))
		exec(`INSERT INTO migrations (name) VALUES (?)`, "migration/"+name)
	}
	exec(`PRAGMA foreign_keys = ON`)
	at := t0.UnixMilli()
	exec(`INSERT INTO accounts (id, name, key_hash, created_at) VALUES (1, 'acme', 'kh1', ?), (2, 'globex', 'kh2', ?)`, at, at)
	exec(`INSERT INTO clusters (id, account_id, name, address, address_kind, created_at, mode, bandwidth_bps) VALUES
		(1, 1, 'edge', 'relay.acme.example', 'domain', ?, 'forward', 1000), (3, 2, 'core', '10.0.0.5', 'ip', ?, 'forward', 0)`, at, at)
	exec(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, hostname, ips, cluster_id, enrolled_at, last_checkin)
		VALUES ('ag_1', 1, 'sh', 'fp', 'web-01', '10.1.0.1', 1, ?, ?)`, at, at)
	exec(`INSERT INTO proxies (id, cluster_id, hostname, deploy, asset_id, secret_hash, urls, created_at, last_seen) VALUES
		(2, 1, 'relay-2', 'quick', 'ag_1', 'rs', 'https://relay-2:8443', ?, ?)`, at, at)
	exec(`UPDATE agents SET via_proxy_id = 2 WHERE id = 'ag_1'`)
	exec(`INSERT INTO install_commands (id, account_id, cluster_id, key_hash, key_prefix, expires_at, created_at) VALUES
		(4, 1, 1, 'ikh', 'ik_1234567', ?, ?)`, at+3600000, at)
	exec(`UPDATE agents SET install_cmd_id = 4 WHERE id = 'ag_1'`)
	exec(`INSERT INTO join_tokens (id, cluster_id, token_hash, deploy, asset_id, expires_at, used_at, proxy_id, created_at) VALUES
		(5, 1, 'jth', 'quick', 'ag_1', ?, ?, 2, ?)`, at+3600000, at, at)
	exec(`INSERT INTO commands (target_kind, target_id, type, created_at) VALUES ('proxy', '2', 'policy', ?)`, at)
	exec(`INSERT INTO bind_batches (cluster_id, hosts, source, created_at) VALUES (1, 1, 'bind', ?)`, at)
	// Proxy 7 and install command 9 were made and deleted before the migration.
	exec(`INSERT INTO audit (at, actor, action, target, detail) VALUES
		(?, 'alice', 'proxy.join', 'cluster/edge', 'proxy=7 host=old ip= version=1.0.0'),
		(?, 'alice', 'proxy.delete', 'proxy/7', 'cluster=edge host=old'),
		(?, 'alice', 'installcmd.create', 'cluster/edge', 'id=9 os=linux group= provider= expires=x image=false')`, at, at, at)
	// commands and accounts: only the columns 0001 made (0005 rebuilds
	// commands with more, 0006 adds the key's creation time).
	tables := []string{"(SELECT id, name, key_hash, created_at FROM accounts)", "clusters", "agents", "proxies", "install_commands", "join_tokens", "bind_batches", "audit",
		"(SELECT id, target_kind, target_id, type, payload, created_at, delivered_at, acked_at FROM commands)"}
	before := dumpTables(t, raw, tables)
	raw.Close()

	db, err := store.Open(path, newClock())
	if err != nil {
		t.Fatalf("Open (migrating from 0003): %v", err)
	}
	defer db.Close()
	f := &fixture{t: t, db: db, clock: newClock(), ctx: store.WithActor(t.Context(), "tester")}
	if after := dumpTables(t, f.raw(), tables); after != before {
		t.Errorf("rows changed by the migration:\n--- before\n%s--- after\n%s", before, after)
	}
	var keyAt int64
	if err := f.raw().QueryRow(`SELECT key_created_at FROM accounts WHERE id = 1`).Scan(&keyAt); err != nil || keyAt != at {
		t.Errorf("key_created_at after 0006: got %d (%v), want the account's creation %d", keyAt, err, at)
	}
	var dangling int
	if err := f.raw().QueryRow(`SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&dangling); err != nil || dangling != 0 {
		t.Errorf("foreign_key_check: got %d rows (%v), want 0", dangling, err)
	}
	var schema string
	if err := f.raw().QueryRow(`SELECT group_concat(sql, ';') FROM sqlite_master WHERE name IN ('accounts', 'clusters', 'proxies', 'install_commands', 'join_tokens')`).
		Scan(&schema); err != nil || strings.Count(schema, "AUTOINCREMENT") != 5 {
		t.Errorf("got schema %s (%v), want 5 AUTOINCREMENT tables", schema, err)
	}

	t.Run("references follow the rebuilt tables", func(t *testing.T) {
		ag := f.agent("ag_1")
		if ag.Cluster != "edge" || ag.Via != "relay-2" {
			t.Errorf("agent: got cluster %q via %q, want edge via relay-2", ag.Cluster, ag.Via)
		}
		p, err := db.GetProxy(f.ctx, 2)
		if err != nil || p.Cluster != "edge" || p.AssetID != "ag_1" {
			t.Errorf("proxy 2: got %+v (%v)", p, err)
		}
	})
	t.Run("search index kept", func(t *testing.T) {
		page, err := db.ListAgents(f.ctx, store.AgentFilter{Query: "web-0"})
		if err != nil || page.Total != 1 {
			t.Errorf("search web-0: got %d (%v), want 1", page.Total, err)
		}
	})
	t.Run("immutability trigger kept", func(t *testing.T) {
		if _, err := f.raw().Exec(`UPDATE clusters SET name = 'renamed' WHERE id = 1`); err == nil || !strings.Contains(err.Error(), "cannot be changed") {
			t.Errorf("rename through SQL: got %v, want the trigger's refusal", err)
		}
	})
	t.Run("foreign keys enforced", func(t *testing.T) {
		if _, err := db.CreateCluster(f.ctx, store.ClusterInput{AccountID: 99, Name: "x", Address: "x.example"}); store.ErrorCode(err) != store.ENotFound {
			t.Errorf("cluster of a missing account: got %v, want not found", err)
		}
	})
	t.Run("ids deleted before the migration stay used", func(t *testing.T) {
		p := f.proxy(1, "relay-new", "1.0.0")
		if p.ID <= 7 {
			t.Errorf("new proxy: got id %d, want > 7 (proxy 7 was deleted before the migration)", p.ID)
		}
		ic := f.installCmd(store.InstallInput{AccountID: 1, ClusterID: 1})
		if ic.ID <= 9 {
			t.Errorf("new install command: got id %d, want > 9", ic.ID)
		}
		c := f.cluster(1, "new", "new.acme.example")
		if c.ID <= 3 {
			t.Errorf("new cluster: got id %d, want > 3", c.ID)
		}
	})
	t.Run("cascades kept", func(t *testing.T) {
		if _, err := db.Unbind(f.ctx, 1, nil, true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.raw().Exec(`DELETE FROM proxies WHERE cluster_id = 1`); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteCluster(f.ctx, 1); err != nil {
			t.Fatal(err)
		}
		var n int
		f.raw().QueryRow(`SELECT COUNT(*) FROM install_commands WHERE cluster_id = 1`).Scan(&n)
		if n != 0 {
			t.Errorf("install commands of the deleted cluster: got %d, want 0 (ON DELETE CASCADE)", n)
		}
	})
}

func dumpTables(t *testing.T, raw *sql.DB, tables []string) string {
	t.Helper()
	var b strings.Builder
	for _, tbl := range tables {
		rows, err := raw.Query(`SELECT * FROM ` + tbl + ` ORDER BY 1`)
		if err != nil {
			t.Fatalf("dump %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "== %s %v\n", tbl, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					vals[i] = string(bs)
				}
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

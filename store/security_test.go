package store_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"outpost/store"
)

func TestDatabaseFileMode(t *testing.T) {
	t.Run("new file", func(t *testing.T) {
		f := newFixture(t)
		f.account("acme") // something in the WAL too
		for _, p := range []string{f.db.Path, f.db.Path + "-wal"} {
			fi, err := os.Stat(p)
			if os.IsNotExist(err) && p != f.db.Path {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("%s: got mode %o, want 600", filepath.Base(p), got)
			}
		}
	})
	t.Run("existing world-readable file is tightened", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "outpost.db")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil { // regardless of umask
			t.Fatal(err)
		}
		db, err := store.Open(path, newClock())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("got mode %o, want 600", got)
		}
	})
}

// No column of the tables that hold credentials contains a secret that the
// API handed out; each is found there only as its SHA-256.
func TestSecretsStoredHashed(t *testing.T) {
	f := newFixture(t)
	a, vkey := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	ic := f.installCmd(store.InstallInput{AccountID: a.ID, ClusterID: c.ID})
	e, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: ic.Key, Host: host("web-01", "fp-web-01")})
	if err != nil {
		t.Fatal(err)
	}
	jt, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, relaySecret, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: jt.Token, Hostname: "relay-1"})
	if err != nil {
		t.Fatal(err)
	}
	unused, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"verification key": vkey, "install key": ic.Key, "agent secret": e.Secret,
		"join token": jt.Token, "unused join token": unused.Token, "relay secret": relaySecret,
	}
	for name, s := range secrets {
		if len(s) < 32 {
			t.Fatalf("%s: got %q, want a long random secret", name, s)
		}
	}

	var all strings.Builder
	for _, table := range []string{"accounts", "install_commands", "agents", "proxies", "join_tokens", "audit", "settings"} {
		rows, err := f.raw().Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
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
				cell := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					cell = string(b)
				}
				fmt.Fprintln(&all, cell)
				for name, s := range secrets {
					if strings.Contains(cell, s) {
						t.Errorf("%s.%s holds the plain %s", table, cols[i], name)
					}
				}
			}
		}
		rows.Close()
	}
	for name, s := range secrets {
		if !strings.Contains(all.String(), store.HashSecret(s)) {
			t.Errorf("%s: its hash is not stored; the check above looked in the wrong place", name)
		}
	}

	// And the hashes are what authenticates.
	auth, err := f.db.LookupAgentAuth(f.ctx, e.Agent.ID)
	if err != nil || !store.SecretMatches(e.Secret, auth.SecretHash) || store.SecretMatches(e.Secret+"x", auth.SecretHash) {
		t.Errorf("agent secret does not authenticate against its hash (%v)", err)
	}
	if _, err := f.db.AuthProxy(f.ctx, p.ID, relaySecret); err != nil {
		t.Errorf("AuthProxy: got %v, want nil", err)
	}
	if _, err := f.db.LookupAgentAuth(f.ctx, "ag_nope"); store.ErrorCode(err) != store.EUnauthorized {
		t.Errorf("LookupAgentAuth unknown: got %v, want %s", err, store.EUnauthorized)
	}
}

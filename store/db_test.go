package store_test

import (
	"errors"
	"testing"
	"time"

	"outpost/store"
)

func TestOpenMigratesOnce(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	var names []string
	rows, err := f.raw().Query(`SELECT name FROM migrations ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if len(names) == 0 || names[0] != "migration/0001_init.sql" {
		t.Fatalf("got migrations %v, want 0001_init.sql first", names)
	}
	// Reopening runs nothing again and keeps the data.
	for range 2 {
		db, err := store.Open(f.db.Path, f.clock)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		accts, err := db.ListAccounts(f.ctx)
		db.Close()
		if err != nil || len(accts) != 1 || accts[0].ID != a.ID {
			t.Errorf("after reopen: got %v %v, want the one account", accts, err)
		}
	}
	if got := f.count("migrations"); got != len(names) {
		t.Errorf("got %d migrations recorded, want %d", got, len(names))
	}
}

func TestReloadSettings(t *testing.T) {
	f := newFixture(t)
	other, err := store.Open(f.db.Path, f.clock) // another process: the CLI
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s := store.DefaultSettings()
	s.BindBatchGap = 2 * time.Minute
	if err := other.SetSettings(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := f.db.Settings().BindBatchGap; got != time.Minute {
		t.Errorf("before reload: got %v, want 1m", got)
	}
	if changed, err := f.db.ReloadSettings(f.ctx); err != nil || !changed {
		t.Fatalf("reload: got changed=%v, %v; want changed, no error", changed, err)
	}
	if got := f.db.Settings(); got != s {
		t.Errorf("after reload: got %+v, want %+v", got, s)
	}
	if changed, err := f.db.ReloadSettings(f.ctx); err != nil || changed {
		t.Errorf("second reload: got changed=%v, %v; want unchanged", changed, err)
	}
}

func TestErrorCode(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"coded", store.Errorf(store.ELimit, "x"), store.ELimit},
		{"wrapped", errors.Join(errors.New("ctx"), store.Errorf(store.EForbidden, "x")), store.EForbidden},
		{"foreign", errors.New("disk full"), store.EInternal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.ErrorCode(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFindAccountAndCluster(t *testing.T) {
	f := newFixture(t)
	if _, err := f.db.FindAccount(f.ctx, ""); store.ErrorCode(err) != store.ENotFound {
		t.Errorf("no account: got %v, want %s", err, store.ENotFound)
	}
	a, _ := f.account("acme")
	if got, err := f.db.FindAccount(f.ctx, ""); err != nil || got.ID != a.ID {
		t.Errorf("single account: got %v %v, want %d", got.ID, err, a.ID)
	}
	b, _ := f.account("globex")
	for _, tt := range []struct {
		name string
		code string
	}{{"", store.EInvalid}, {"initech", store.ENotFound}} {
		if _, err := f.db.FindAccount(f.ctx, tt.name); store.ErrorCode(err) != tt.code {
			t.Errorf("FindAccount(%q): got %v, want %s", tt.name, err, tt.code)
		}
	}
	f.cluster(a.ID, "edge", "relay.acme.example")
	cb := f.cluster(b.ID, "edge", "relay.globex.example")
	if _, err := f.db.FindCluster(f.ctx, 0, "edge"); store.ErrorCode(err) != store.EInvalid {
		t.Errorf("ambiguous: got %v, want %s", err, store.EInvalid)
	}
	if got, err := f.db.FindCluster(f.ctx, b.ID, "edge"); err != nil || got.ID != cb.ID {
		t.Errorf("FindCluster(globex, edge): got %d %v, want %d", got.ID, err, cb.ID)
	}
	if _, err := f.db.FindCluster(f.ctx, a.ID, "nope"); store.ErrorCode(err) != store.ENotFound {
		t.Errorf("unknown: got %v, want %s", err, store.ENotFound)
	}
}

package store_test

import (
	"testing"
	"time"

	"outpost/store"
)

// TestRotateAccountKey: after a rotation the old verification key enrols
// nothing, the new one does, agents enrolled before keep their identity,
// and the key's creation time and the audit log say what happened.
func TestRotateAccountKey(t *testing.T) {
	f := newFixture(t)
	acct, oldKey := f.account("acme")
	before := f.enrol(oldKey, "web-01")
	f.clock.Advance(time.Hour)

	got, newKey, err := f.db.RotateAccountKey(f.ctx, "acme")
	if err != nil {
		t.Fatalf("RotateAccountKey: %v", err)
	}
	if newKey == oldKey || len(newKey) < 20 {
		t.Fatalf("new key %q: want a fresh key", newKey)
	}
	if !got.KeyCreatedAt.After(acct.KeyCreatedAt) || !got.CreatedAt.Equal(acct.CreatedAt) {
		t.Errorf("key created %s (was %s), account created %s (was %s): want a later key, same account",
			got.KeyCreatedAt, acct.KeyCreatedAt, got.CreatedAt, acct.CreatedAt)
	}
	listed, err := f.db.FindAccount(f.ctx, "acme")
	if err != nil || !listed.KeyCreatedAt.Equal(got.KeyCreatedAt) {
		t.Errorf("FindAccount after rotation: got %+v, %v; want key created at %s", listed, err, got.KeyCreatedAt)
	}

	t.Run("old key refused", func(t *testing.T) {
		snap := f.dump()
		_, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: oldKey, Host: host("web-02", "fp-web-02")})
		if got, want := store.ErrorCode(err), store.EUnauthorized; got != want {
			t.Fatalf("enrol with the rotated key: got %v (%s), want %s", err, got, want)
		}
		f.unchanged(snap)
	})
	t.Run("new key enrols", func(t *testing.T) {
		if a := f.enrol(newKey, "web-03"); a.AccountID != acct.ID {
			t.Errorf("agent account: got %d, want %d", a.AccountID, acct.ID)
		}
	})
	t.Run("enrolled agents keep working", func(t *testing.T) {
		if _, err := f.db.LookupAgentAuth(f.ctx, before.ID); err != nil {
			t.Errorf("agent enrolled before the rotation: %v", err)
		}
	})
	t.Run("audited", func(t *testing.T) {
		as := f.audits()
		if len(as) == 0 || as[0].Action != "account.rotate-key" || as[0].Target != "account/acme" {
			t.Errorf("newest audit entry: got %+v, want account.rotate-key on account/acme", as)
		}
	})
	t.Run("unknown account", func(t *testing.T) {
		snap := f.dump()
		if _, _, err := f.db.RotateAccountKey(f.ctx, "globex"); store.ErrorCode(err) != store.ENotFound {
			t.Errorf("got %v, want not found", err)
		}
		f.unchanged(snap)
	})
}

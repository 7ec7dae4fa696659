package store_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"outpost/store"
)

// TestReleaseKeygen: the private key goes to its file (0600), the public
// key to the store, audited; a second key, or an existing file, is refused
// with nothing changed.
func TestReleaseKeygen(t *testing.T) {
	f := newFixture(t)
	if k, err := f.db.ReleaseKey(f.ctx); err != nil || k != "" {
		t.Fatalf("release key before keygen: got %q %v, want none", k, err)
	}
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.WriteFile(exists, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	_, err := f.db.CreateReleaseKey(f.ctx, exists)
	wantCode(t, err, store.EConflict)
	f.unchanged(before)
	if b, _ := os.ReadFile(exists); string(b) != "keep me" {
		t.Errorf("existing file: got %q, want it untouched", b)
	}

	out := filepath.Join(dir, "release.key")
	pub, err := f.db.CreateReleaseKey(f.ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.ReleaseKey(f.ctx); got != pub || len(pub) != 64 {
		t.Errorf("stored public key: got %q, want %q (64 hex digits)", got, pub)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", st, err)
	}
	priv, err := store.ReadSigningKey(out)
	if err != nil || hex.EncodeToString(priv.Public().(ed25519.PublicKey)) != pub {
		t.Errorf("key file holds %v (%v), want the private half of %s", priv, err, pub)
	}
	if es := f.audits(); len(es) == 0 || es[0].Action != "release.keygen" || !strings.Contains(es[0].Detail, pub) {
		t.Errorf("audit: got %+v, want release.keygen with the public key", es)
	}

	before = f.dump()
	_, err = f.db.CreateReleaseKey(f.ctx, filepath.Join(dir, "second.key"))
	wantCode(t, err, store.EConflict)
	f.unchanged(before)
	if _, err := os.Stat(filepath.Join(dir, "second.key")); !os.IsNotExist(err) {
		t.Errorf("second key file: got %v, want none written", err)
	}
}

// TestPublishSignedRelease: a release is signed over its version and
// SHA-256 by the key whose public half is stored; no key set, another
// key or a file that is no key is refused with nothing written.
func TestPublishSignedRelease(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	if err := os.WriteFile(pkg, []byte("package 1.2.0"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "release.key")
	notKey := filepath.Join(dir, "not.key")
	os.WriteFile(notKey, []byte("hello"), 0o600)

	// Before keygen: refused, even with a key file made elsewhere.
	other := newFixture(t)
	otherKey := filepath.Join(dir, "other.key")
	if _, err := other.db.CreateReleaseKey(other.ctx, otherKey); err != nil {
		t.Fatal(err)
	}
	refuse := func(name, keyFile, code, want string) {
		t.Run(name, func(t *testing.T) {
			before := f.dump()
			_, err := f.db.PublishSignedRelease(f.ctx, store.Release{Version: "1.2.0"}, pkg, keyFile)
			if wantCode(t, err, code) && !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
			f.unchanged(before)
			if _, err := os.Stat(filepath.Join(f.db.ReleaseDir(), "1.2.0")); !os.IsNotExist(err) {
				t.Errorf("package: got %v, want none copied", err)
			}
		})
	}
	refuse("no key set", otherKey, store.EConflict, "no release signing key is set")
	pub, err := f.db.CreateReleaseKey(f.ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	refuse("another key", otherKey, store.EInvalid, "is not the release key")
	refuse("not a key file", notKey, store.EInvalid, "is not a release signing key")
	refuse("missing key file", filepath.Join(dir, "missing"), store.EInvalid, "signing key")

	r, err := f.db.PublishSignedRelease(f.ctx, store.Release{Version: "v1.2.0"}, pkg, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyRelease(pub, "1.2.0", r.SHA256, r.Signature); err != nil {
		t.Errorf("signature of the published release: %v", err)
	}
	rs, _ := f.db.ListReleases(f.ctx)
	if len(rs) != 1 || rs[0].Signature != r.Signature {
		t.Errorf("listed: got %+v, want the signature stored", rs)
	}
	for _, tt := range []struct{ name, version, sha string }{
		{"other version", "1.3.0", r.SHA256},
		{"other package", "1.2.0", strings.Repeat("0", 64)},
	} {
		t.Run("verify "+tt.name, func(t *testing.T) {
			if err := store.VerifyRelease(pub, tt.version, tt.sha, r.Signature); store.ErrorCode(err) != store.EInvalid {
				t.Errorf("got %v, want the signature refused", err)
			}
		})
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"outpost/store"
)

// TestReleaseKeyRotate: keygen --rotate appends a key signed by the old
// one (the chain verifies from the first key), audited; from then on only
// the new key signs releases; wrong or missing flags and keys are refused
// in one line with the database unchanged and no file written.
func TestReleaseKeyRotate(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	pkg := releasePackage(t)
	dir := t.TempDir()
	k1, k2, k3 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2"), filepath.Join(dir, "k3")
	otherKey := releaseKey(t, newCLI(t))

	c.fails(1, "no release signing key is set, so there is none to rotate", "release", "keygen", "--rotate", "--key", otherKey, "--out", k2)
	var first struct {
		PublicKey string `json:"public_key"`
	}
	c.json(&first, "release", "keygen", "--out", k1)
	c.fails(1, "outpost release keygen --rotate --key OLD_FILE --out NEW_FILE", "release", "keygen", "--out", k2)
	for _, tt := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"--rotate without --key", 2, "--rotate needs --key OLD_FILE", []string{"--rotate", "--out", k2}},
		{"--key without --rotate", 2, "--key applies to --rotate only", []string{"--key", k1, "--out", k2}},
		{"no --out", 2, "--out FILE is required", []string{"--rotate", "--key", k1}},
		{"another store's key", 1, "the signing key is not the release key", []string{"--rotate", "--key", otherKey, "--out", k2}},
		{"not a key file", 1, "is not a release signing key", []string{"--rotate", "--key", pkg, "--out", k2}},
		{"out exists", 1, "already exists", []string{"--rotate", "--key", k1, "--out", k1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := c.snapshot()
			c.fails(tt.code, tt.want, append([]string{"release", "keygen"}, tt.args...)...)
			if after := c.snapshot(); after != before {
				t.Errorf("a refused rotation changed the database")
			}
			if _, err := os.Stat(k2); !os.IsNotExist(err) {
				t.Errorf("new key file: got %v, want none written", err)
			}
		})
	}

	var rot struct {
		PublicKey string `json:"public_key"`
		Rotated   bool   `json:"rotated"`
	}
	c.json(&rot, "release", "keygen", "--rotate", "--key", k1, "--out", k2)
	if !rot.Rotated || len(rot.PublicKey) != 64 || rot.PublicKey == first.PublicKey {
		t.Fatalf("rotate: got %+v, want a new public key", rot)
	}
	if st, err := os.Stat(k2); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v, want mode 0600", st, err)
	}
	if r := c.ok("audit", "--limit", "1"); !strings.Contains(r.stdout, "release.key.rotate") || !strings.Contains(r.stdout, rot.PublicKey) {
		t.Errorf("audit: %s, want release.key.rotate with the new key", r.stdout)
	}
	c.fails(1, "the signing key was rotated out", "release", "add", "1.0.0", "--file", pkg, "--key", k1)
	c.fails(1, "rotated out", "release", "keygen", "--rotate", "--key", k1, "--out", k3)
	c.ok("release", "add", "1.0.0", "--file", pkg, "--key", k2)
	r := c.ok("release", "keygen", "--rotate", "--key", k2, "--out", k3)
	if !strings.Contains(r.stdout, "release signing key rotated: new private key in "+k3) {
		t.Errorf("rotate: %s", r)
	}

	db, err := store.Open(filepath.Join(c.data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	chain, err := db.ReleaseKeyChain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := store.VerifyKeyChain(first.PublicKey, chain)
	if err != nil || len(keys) != 3 || keys[1] != rot.PublicKey {
		t.Fatalf("chain from the first key: got %v, %v, want 3 keys, the second %s", keys, err, rot.PublicKey)
	}
	rs, _ := db.ListReleases(t.Context())
	if len(rs) != 1 || store.VerifyReleaseAny(keys, rs[0].Version, rs[0].SHA256, rs[0].Signature) != nil || store.VerifyRelease(keys[0], rs[0].Version, rs[0].SHA256, rs[0].Signature) == nil {
		t.Errorf("release 1.0.0: got %+v, want signed by the second key, not the first", rs)
	}
}

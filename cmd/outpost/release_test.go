package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"outpost/store"
)

// TestReleaseSigning: release keygen writes the private key to --out and
// stores the public key; release add signs with --key, and is refused with
// the database unchanged when no key is set or the key is another one.
func TestReleaseSigning(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	pkg := releasePackage(t)
	dir := t.TempDir()
	other := newCLI(t)
	otherKey := releaseKey(t, other)

	c.fails(2, "--out FILE is required", "release", "keygen")
	c.fails(2, "--key FILE is required", "release", "add", "1.0.0", "--file", pkg)
	before := c.snapshot()
	c.fails(1, "no release signing key is set: make one with 'outpost release keygen --out FILE'", "release", "add", "1.0.0", "--file", pkg, "--key", otherKey)
	if after := c.snapshot(); after != before {
		t.Errorf("a refused release add changed the database")
	}

	key := filepath.Join(dir, "release.key")
	var kg struct {
		PublicKey string `json:"public_key"`
	}
	c.json(&kg, "release", "keygen", "--out", key)
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 || len(kg.PublicKey) != 64 {
		t.Fatalf("keygen: file %v %v, public key %q; want a 0600 file and 64 hex digits", st, err, kg.PublicKey)
	}
	c.fails(1, "a release signing key is already set", "release", "keygen", "--out", filepath.Join(dir, "second.key"))
	if _, err := os.Stat(filepath.Join(dir, "second.key")); !os.IsNotExist(err) {
		t.Errorf("second keygen wrote its file: %v", err)
	}

	for _, tt := range []struct {
		name, key, want string
	}{
		{"another key", otherKey, "the signing key is not the release key"},
		{"not a key", pkg, "is not a release signing key made by 'outpost release keygen'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := c.snapshot()
			c.fails(1, tt.want, "release", "add", "1.0.0", "--file", pkg, "--key", tt.key)
			if after := c.snapshot(); after != before {
				t.Errorf("a refused release add changed the database")
			}
		})
	}
	r := c.ok("release", "add", "1.0.0", "--file", pkg, "--key", key)
	if !strings.Contains(r.stdout, "release 1.0.0 published and signed") {
		t.Errorf("release add: %s", r)
	}
	var rs []store.Release
	c.json(&rs, "release", "list")
	if len(rs) != 1 || store.VerifyRelease(kg.PublicKey, "1.0.0", rs[0].SHA256, rs[0].Signature) != nil {
		t.Errorf("release list: got %+v, want 1.0.0 signed by %s", rs, kg.PublicKey)
	}
}

// TestProxyUpgradeForce: upgrading a proxy to a release not newer than its
// version is refused; --force queues it, audited as proxy.upgrade.force.
func TestProxyUpgradeForce(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "web", "--address", "relay.example.com")
	var jt struct {
		Token string `json:"token"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "web", "--manual")
	p := joinProxy(t, c, jt.Token, "relay-01", "2.0.0")
	c.ok("release", "add", "1.5.0", "--file", releasePackage(t), "--key", releaseKey(t, c))
	id := fmt.Sprint(p.ID)
	c.fails(1, "runs 2.0.0, newer than the latest release 1.5.0", "proxy", "upgrade", id)
	r := c.ok("proxy", "upgrade", id, "--force")
	if !strings.Contains(r.stdout, "upgrade 2.0.0 -> 1.5.0 queued") {
		t.Errorf("proxy upgrade --force: %s", r)
	}
	var es []store.AuditEntry
	c.json(&es, "audit")
	if len(es) == 0 || !strings.Contains(es[0].Action, "proxy.upgrade.force") {
		t.Errorf("audit: got %+v, want proxy.upgrade.force first", es)
	}
}

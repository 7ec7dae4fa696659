package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
)

// upgradeFixture is a manager with one joined relay (its version set by
// version) in its own data directory, online.
type upgradeFixture struct {
	m   *manager
	id  int64
	dir string
}

func newUpgradeFixture(t *testing.T, version string) *upgradeFixture {
	t.Helper()
	m := startManager(t)
	_, cl := clusterFleet(t, m, "acme", "edge", "relay.edge.example")
	// The key exists before the relay joins: it comes with the join.
	signingKey(t, m)
	dir := t.TempDir()
	if _, _, err := startJoinedWith(t, m, mustJoinToken(t, m, cl.ID), dir, func(c *relay.Config) { c.Version = version }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ps, err := m.DB.ListProxies(ctx, cl.ID)
	if err != nil || len(ps) != 1 {
		t.Fatalf("proxies: %v %v", ps, err)
	}
	f := &upgradeFixture{m: m, id: ps[0].ID, dir: dir}
	waitFor(t, 5*time.Second, "the relay to be online", func() bool {
		p, _ := m.DB.GetProxy(ctx, f.id)
		return p.Status == store.StatusOnline && p.Version == version
	})
	return f
}

// ended waits for the upgrade command to end and returns it.
func (f *upgradeFixture) ended(t *testing.T) store.Command {
	t.Helper()
	var up store.Command
	waitFor(t, 10*time.Second, "the upgrade to end", func() bool {
		p, _ := f.m.DB.GetProxy(context.Background(), f.id)
		up, _ = p.UpgradeCommand()
		return up.State == store.CommandFailed || up.State == store.CommandDone
	})
	return up
}

// staged lists what the relay wrote under DATA/releases.
func (f *upgradeFixture) staged() []string {
	es, _ := os.ReadDir(filepath.Join(f.dir, "releases"))
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestRelayRefusesBadRelease: a relay stages only a package whose
// signature, by the release key it got at join, covers its version and
// SHA-256; anything else ends failed with the reason and nothing on disk.
func TestRelayRefusesBadRelease(t *testing.T) {
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for _, tt := range []struct {
		name    string
		publish func(t *testing.T, m *manager)
		want    string
	}{
		{"tampered package", func(t *testing.T, m *manager) {
			publish(t, m, "9.9.9", []byte("release 9.9.9"))
			if err := os.WriteFile(filepath.Join(m.Dir, "releases", "9.9.9"), []byte("release 9.9.9 with a backdoor"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "does not match its signed SHA-256"},
		{"signed by another key", func(t *testing.T, m *manager) {
			addRaw(t, m, "9.9.9", []byte("release 9.9.9"), func(sha string) string {
				return hex.EncodeToString(ed25519.Sign(other, store.ReleaseMessage("9.9.9", sha)))
			})
		}, "signature does not verify"},
		{"signature of another version", func(t *testing.T, m *manager) {
			publish(t, m, "1.0.0", []byte("release 1.0.0"))
			rs, _ := m.DB.ListReleases(context.Background())
			addRaw(t, m, "9.9.9", []byte("release 1.0.0"), func(string) string { return rs[0].Signature })
		}, "signature does not verify"},
		{"unsigned", func(t *testing.T, m *manager) {
			addRaw(t, m, "9.9.9", []byte("release 9.9.9"), func(string) string { return "" })
		}, "is not signed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newUpgradeFixture(t, "1.0.0")
			tt.publish(t, f.m)
			if _, err := f.m.DB.UpgradeProxy(context.Background(), f.id); err != nil {
				t.Fatal(err)
			}
			up := f.ended(t)
			if up.State != store.CommandFailed || !strings.Contains(up.Error, tt.want) {
				t.Errorf("upgrade: got %s %q, want failed with %q", up.State, up.Error, tt.want)
			}
			if got := f.staged(); len(got) != 0 {
				t.Errorf("relay releases dir: got %v, want nothing written", got)
			}
		})
	}
}

// addRaw records a release whose signature is made by sign (given the
// package's SHA-256), bypassing the store's signing.
func addRaw(t *testing.T, m *manager, version string, pkg []byte, sign func(sha string) string) {
	t.Helper()
	if err := os.MkdirAll(m.DB.ReleaseDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.DB.ReleaseDir(), version), pkg, 0o600); err != nil {
		t.Fatal(err)
	}
	sha := wire.Fingerprint(pkg)
	if err := m.DB.AddRelease(context.Background(), store.Release{Version: version, SHA256: sha, Signature: sign(sha)}); err != nil {
		t.Fatal(err)
	}
}

// TestRelayRefusesDowngrade: a relay refuses a release not newer than its
// own version, even when the management host queued it (its record of the
// relay's version was stale); a forced upgrade (audited) is staged.
func TestRelayRefusesDowngrade(t *testing.T) {
	f := newUpgradeFixture(t, "2.0.0")
	ctx := context.Background()
	publish(t, f.m, "1.5.0", []byte("release 1.5.0"))
	if _, err := f.m.DB.UpgradeProxy(ctx, f.id); store.ErrorCode(err) != store.EConflict {
		t.Fatalf("store upgrade to an older release: got %v, want a conflict", err)
	}
	// The store thinks the relay is older (as after a stale report); the
	// relay's heartbeat may correct it meanwhile, so retry until queued.
	raw, err := sql.Open("sqlite", f.m.DB.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitFor(t, 5*time.Second, "an upgrade queued on a stale version", func() bool {
		if _, err := raw.Exec(`UPDATE proxies SET version = '1.0.0' WHERE id = ?`, f.id); err != nil {
			t.Fatal(err)
		}
		_, err := f.m.DB.UpgradeProxy(ctx, f.id)
		return err == nil
	})
	up := f.ended(t)
	if want := "not newer than this relay's 2.0.0"; up.State != store.CommandFailed || !strings.Contains(up.Error, want) {
		t.Errorf("downgrade: got %s %q, want failed with %q", up.State, up.Error, want)
	}
	if got := f.staged(); len(got) != 0 {
		t.Errorf("relay releases dir: got %v, want nothing written", got)
	}
	waitFor(t, 5*time.Second, "the relay's version reported again", func() bool {
		p, _ := f.m.DB.GetProxy(ctx, f.id)
		return p.Version == "2.0.0"
	})
	if _, err := f.m.DB.ForceUpgradeProxy(ctx, f.id); err != nil {
		t.Fatal(err)
	}
	if up := f.ended(t); up.State != store.CommandDone {
		t.Errorf("forced downgrade: got %s %q, want done", up.State, up.Error)
	}
	if b, _ := os.ReadFile(filepath.Join(f.dir, "releases", "pending")); strings.TrimSpace(string(b)) != "1.5.0" {
		t.Errorf("pending: got %q, want 1.5.0 staged", b)
	}
	es, _ := f.m.DB.ListAudit(ctx, 100)
	found := false
	for _, e := range es {
		found = found || (e.Action == "proxy.upgrade.force" && strings.Contains(e.Detail, "from=2.0.0 to=1.5.0"))
	}
	if !found {
		t.Errorf("audit: no proxy.upgrade.force entry in %+v", es)
	}
}

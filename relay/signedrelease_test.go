package relay_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
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
	srv *relay.Server
	id  int64
	dir string
	bin string // the relay's binary (a script answering --self-test)
	old []byte
}

func newUpgradeFixture(t *testing.T, version string) *upgradeFixture {
	t.Helper()
	return newUpgradeFixtureWith(t, version, fakeBinary(version, fakeOK))
}

func newUpgradeFixtureWith(t *testing.T, version string, binary []byte) *upgradeFixture {
	t.Helper()
	m := startManager(t)
	_, cl := clusterFleet(t, m, "acme", "edge", "relay.edge.example")
	// The key exists before the relay joins: it comes with the join.
	signingKey(t, m)
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "outpost")
	if err := os.WriteFile(bin, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, _, err := startJoinedWith(t, m, mustJoinToken(t, m, cl.ID), dir, func(c *relay.Config) {
		c.Version, c.Binary, c.Argv = version, bin, []string{bin, "relay"}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ps, err := m.DB.ListProxies(ctx, cl.ID)
	if err != nil || len(ps) != 1 {
		t.Fatalf("proxies: %v %v", ps, err)
	}
	f := &upgradeFixture{m: m, srv: srv, id: ps[0].ID, dir: dir, bin: bin, old: binary}
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
		return up.State == wire.StateFailed || up.State == wire.StateDone || up.State == wire.StateRolledBack
	})
	return up
}

// changed lists what an upgrade changed on disk: the binary, the files
// beside it, the trial in DATA/upgrade.
func (f *upgradeFixture) changed() []string {
	var out []string
	if b, err := os.ReadFile(f.bin); err != nil || !bytes.Equal(b, f.old) {
		out = append(out, "the binary")
	}
	es, _ := os.ReadDir(filepath.Dir(f.bin))
	for _, e := range es {
		if e.Name() != "outpost" {
			out = append(out, e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "upgrade", "trial.json")); err == nil {
		out = append(out, "upgrade/trial.json")
	}
	return out
}

// Fake binaries for the in-process relay: shell scripts that answer
// --self-test and upgrade-watch as the real binary does (the real restart
// is tested with processes in cmd/outpost).
const (
	fakeOK            = ""
	fakeSelfTestFails = "selftest"
	fakeNoWatcher     = "watch"
)

func fakeBinary(version, fails string) []byte {
	st := fmt.Sprintf(`echo '{"version":"%s","os":"%s","arch":"%s"}'`, version, runtime.GOOS, runtime.GOARCH)
	if fails == fakeSelfTestFails {
		st = `echo "self-test: cannot open the store" >&2; exit 1`
	}
	watch := `echo "$@" >> "$0.watch-calls"`
	if fails == fakeNoWatcher {
		watch = `echo "no watcher here" >&2; exit 1`
	}
	return []byte("#!/bin/sh\ncase \"$1\" in\n--self-test) " + st + " ;;\nupgrade-watch) " + watch + " ;;\nesac\n")
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
		{"self-test fails", func(t *testing.T, m *manager) {
			publish(t, m, "9.9.9", fakeBinary("9.9.9", fakeSelfTestFails))
		}, "self-test of the new binary: exit status 1: self-test: cannot open the store"},
		{"another version inside", func(t *testing.T, m *manager) {
			publish(t, m, "9.9.9", fakeBinary("9.9.8", fakeOK))
		}, `it says version "9.9.8", the release is 9.9.9`},
		{"not a binary", func(t *testing.T, m *manager) {
			publish(t, m, "9.9.9", []byte("release 9.9.9"))
		}, "self-test of the new binary: it does not run on this host (exec format error)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newUpgradeFixture(t, "1.0.0")
			tt.publish(t, f.m)
			if _, err := f.m.DB.UpgradeProxy(context.Background(), f.id); err != nil {
				t.Fatal(err)
			}
			up := f.ended(t)
			if up.State != wire.StateFailed || !strings.Contains(up.Error, tt.want) {
				t.Errorf("upgrade: got %s %q, want failed with %q", up.State, up.Error, tt.want)
			}
			if got := f.changed(); len(got) != 0 {
				t.Errorf("after the refusal: %v changed, want nothing", got)
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
// relay's version was stale); a forced upgrade (audited) goes ahead to
// the restart.
func TestRelayRefusesDowngrade(t *testing.T) {
	f := newUpgradeFixture(t, "2.0.0")
	ctx := context.Background()
	publish(t, f.m, "1.5.0", fakeBinary("1.5.0", fakeOK))
	if _, err := f.m.DB.UpgradeProxy(ctx, f.id); store.ErrorCode(err) != store.EConflict {
		t.Fatalf("store upgrade to an older release: got %v, want a conflict", err)
	}
	// The store thinks the relay is older (as after a stale report); the
	// relay's heartbeat may correct it meanwhile, so retry until queued.
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: f.m.DB.Path}).EscapedPath()+"?_pragma=busy_timeout(5000)") // the relay writes too
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
	if want := "not newer than this relay's 2.0.0"; up.State != wire.StateFailed || !strings.Contains(up.Error, want) {
		t.Errorf("downgrade: got %s %q, want failed with %q", up.State, up.Error, want)
	}
	if got := f.changed(); len(got) != 0 {
		t.Errorf("after the refusal: %v changed, want nothing", got)
	}
	waitFor(t, 5*time.Second, "the relay's version reported again", func() bool {
		p, _ := f.m.DB.GetProxy(ctx, f.id)
		return p.Version == "2.0.0"
	})
	if _, err := f.m.DB.ForceUpgradeProxy(ctx, f.id); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-f.srv.RestartRequested():
		if p.To != "1.5.0" || p.From != "2.0.0" {
			t.Errorf("forced downgrade: restart from %s to %s, want 2.0.0 to 1.5.0", p.From, p.To)
		}
	case <-time.After(10 * time.Second):
		p, _ := f.m.DB.GetProxy(ctx, f.id)
		up, _ := p.UpgradeCommand()
		t.Fatalf("forced downgrade: no restart asked; command %s", up.Describe())
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

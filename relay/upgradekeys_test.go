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

	"outpost/relay/wire"
	"outpost/store"
)

// TestRelayFollowsReleaseKeyChain: a relay that joined trusting the first
// release key installs a release signed by a rotated key, reached through
// a link the first key signed; a key added to the chain without a valid
// link is not trusted, and its release is refused with nothing changed.
func TestRelayFollowsReleaseKeyChain(t *testing.T) {
	for _, tt := range []struct {
		name    string
		publish func(t *testing.T, f *upgradeFixture)
		want    string // "" = the restart is asked
	}{
		{"rotated key", func(t *testing.T, f *upgradeFixture) {
			next := filepath.Join(t.TempDir(), "next.key")
			if _, err := f.m.DB.RotateReleaseKey(context.Background(), signingKey(t, f.m), next); err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.DB.PublishSignedRelease(context.Background(), store.Release{Version: "9.9.9"}, pkgFile(t, fakeBinary("9.9.9", fakeOK)), next); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"key without a valid link", func(t *testing.T, f *upgradeFixture) {
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			raw, err := sql.Open("sqlite", "file:"+f.m.DB.Path+"?_pragma=busy_timeout(10000)") // the relay writes meanwhile
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Exec(`INSERT INTO release_keys (public_key, signature, created_at) VALUES (?, ?, ?)`,
				hex.EncodeToString(pub), strings.Repeat("ab", ed25519.SignatureSize), time.Now().UnixMilli()); err != nil {
				t.Fatal(err)
			}
			addRaw(t, f.m, "9.9.9", fakeBinary("9.9.9", fakeOK), func(sha string) string {
				return hex.EncodeToString(ed25519.Sign(priv, store.ReleaseMessage("9.9.9", sha)))
			})
		}, "signature does not verify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newUpgradeFixture(t, "1.0.0")
			tt.publish(t, f)
			if _, err := f.m.DB.UpgradeProxy(context.Background(), f.id); err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				up := f.ended(t)
				if up.State != wire.StateFailed || !strings.Contains(up.Error, tt.want) {
					t.Errorf("upgrade: got %s %q, want failed with %q", up.State, up.Error, tt.want)
				}
				if got := f.changed(); len(got) != 0 {
					t.Errorf("after the refusal: %v changed, want nothing", got)
				}
				return
			}
			select {
			case p := <-f.srv.RestartRequested():
				if p.To != "9.9.9" {
					t.Errorf("restart into %s, want 9.9.9", p.To)
				}
			case <-time.After(10 * time.Second):
				p, _ := f.m.DB.GetProxy(context.Background(), f.id)
				up, _ := p.UpgradeCommand()
				t.Fatalf("no restart asked; upgrade %s", up.Describe())
			}
		})
	}
}

func pkgFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pkg")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

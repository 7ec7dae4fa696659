package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// publish publishes a release with a small package file.
func (f *fixture) publish(version string) store.Release {
	f.t.Helper()
	pkg := filepath.Join(f.t.TempDir(), "pkg")
	if err := os.WriteFile(pkg, []byte("package "+version), 0o600); err != nil {
		f.t.Fatal(err)
	}
	r, err := f.db.PublishRelease(f.ctx, store.Release{Version: version}, pkg)
	if err != nil {
		f.t.Fatalf("PublishRelease(%s): %v", version, err)
	}
	return r
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in, want string // want "" = refused
	}{
		{"1.2.3", "1.2.3"},
		{"v1.2.3", "1.2.3"},
		{"0.0.9", "0.0.9"},
		{"1.0.0-rc.1", "1.0.0-rc.1"},
		{"1.0.0-0.3.7", "1.0.0-0.3.7"},
		{"1.0.0-x-y.7", "1.0.0-x-y.7"},
		{"v1.0", ""},
		{"1.0", ""},
		{"1", ""},
		{"1.2.3.4", ""},
		{"01.2.3", ""},
		{"1.2.3-", ""},
		{"1.2.3-rc..1", ""},
		{"1.2.3-01", ""},
		{"1.2.3+build.5", ""},
		{"1.2.x", ""},
		{"", ""},
		{"v", ""},
		{" 1.2.3", ""},
		{"1.2.3-rc/1", ""},
		{"99999999999999999999.0.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := store.ParseVersion(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %s, want a refusal", v)
				}
				wantCode(t, err, store.EInvalid)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
			if got := v.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	// Each is lower than the next (semver.org's own example, then ours).
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.9", "1.2.10", "1.10.0", "2.0.0"}
	for i := 0; i+1 < len(order); i++ {
		a, b := order[i], order[i+1]
		t.Run(a+"<"+b, func(t *testing.T) {
			if got := store.CompareVersions(a, b); got != -1 {
				t.Errorf("CompareVersions(%s, %s): got %d, want -1", a, b, got)
			}
			if got := store.CompareVersions(b, a); got != 1 {
				t.Errorf("CompareVersions(%s, %s): got %d, want 1", b, a, got)
			}
		})
	}
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"v1.2.3", "1.2.3", 0},
		{"0.1.0-dev", "0.0.9", 1}, // a newer pre-release beats an older release
		{"0.1.0-dev", "0.1.0", -1},
		{"1.0", "1.0.0", 0}, // lenient for versions a relay reports
		{"dev", "0.0.1", -1},
		{"1.2.0-rc1", "1.2.0", -1}, // was 0: the pre-release was ignored
		{"2.0.0", "10.0.0", -1},
	} {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			if got := store.CompareVersions(tt.a, tt.b); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPublishRelease(t *testing.T) {
	f := newFixture(t)
	body := []byte("outpost 1.2.0 package")
	pkg := filepath.Join(t.TempDir(), "outpost-1.2.0.tar.gz")
	if err := os.WriteFile(pkg, body, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	r, err := f.db.PublishRelease(f.ctx, store.Release{Version: "v1.2.0", Notes: "first"}, pkg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Version, "1.2.0"; got != want {
		t.Errorf("version: got %s, want %s", got, want)
	}
	if got, want := r.SHA256, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("sha256: got %s, want %s", got, want)
	}
	if got, err := os.ReadFile(filepath.Join(f.db.ReleaseDir(), "1.2.0")); err != nil || string(got) != string(body) {
		t.Errorf("package file: got %q, %v, want %q", got, err, body)
	}
	rs, err := f.db.ListReleases(f.ctx)
	if err != nil || len(rs) != 1 || rs[0].SHA256 != r.SHA256 {
		t.Errorf("ListReleases: got %+v, %v, want 1.2.0 with its sha256", rs, err)
	}

	missing := filepath.Join(t.TempDir(), "nope")
	before := f.dump()
	files := func() []string {
		es, _ := os.ReadDir(f.db.ReleaseDir())
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	filesBefore := files()
	for _, tt := range []struct {
		name, version, pkg, code string
	}{
		{"not semver", "v1.0", pkg, store.EInvalid},
		{"two numbers", "1.3", pkg, store.EInvalid},
		{"no package", "1.3.0", missing, store.EInvalid},
		{"a directory", "1.3.0", t.TempDir(), store.EInvalid},
		{"exists", "1.2.0", pkg, store.EConflict},
		{"exists with v", "v1.2.0", pkg, store.EConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.db.PublishRelease(f.ctx, store.Release{Version: tt.version}, tt.pkg)
			wantCode(t, err, tt.code)
			f.unchanged(before)
			if got := files(); len(got) != len(filesBefore) {
				t.Errorf("release dir: got %v, want %v", got, filesBefore)
			}
		})
	}
	t.Run("a package already in place", func(t *testing.T) {
		inPlace := filepath.Join(f.db.ReleaseDir(), "1.5.0")
		if err := os.WriteFile(inPlace, []byte("put here by hand"), 0o600); err != nil {
			t.Fatal(err)
		}
		other := filepath.Join(f.db.ReleaseDir(), "1.6.0")
		if err := os.WriteFile(other, []byte("another file"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(other)
		dump := f.dump()
		_, err := f.db.PublishRelease(f.ctx, store.Release{Version: "1.6.0"}, pkg)
		wantCode(t, err, store.EConflict) // a different file would be overwritten
		f.unchanged(dump)
		r, err := f.db.PublishRelease(f.ctx, store.Release{Version: "1.5.0"}, inPlace)
		if err != nil {
			t.Fatalf("got %v, want the file in place recorded", err)
		}
		sum := sha256.Sum256([]byte("put here by hand"))
		if r.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("sha256: got %s, want that of the file in place", r.SHA256)
		}
		if err := f.db.DeleteRelease(f.ctx, "1.5.0"); err != nil {
			t.Fatal(err)
		}
		before, filesBefore = f.dump(), files()
	})
	t.Run("AddRelease needs the package's sha256", func(t *testing.T) {
		wantCode(t, f.db.AddRelease(f.ctx, store.Release{Version: "1.4.0"}), store.EInvalid)
		wantCode(t, f.db.AddRelease(f.ctx, store.Release{Version: "1.4", SHA256: r.SHA256}), store.EInvalid)
		f.unchanged(before)
	})
}

func TestDeleteRelease(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "px-1", "1.0.0")
	f.publish("1.1.0")
	if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	id := f.pending(store.TargetProxy, itoa(p.ID))[0].ID
	pkg := filepath.Join(f.db.ReleaseDir(), "1.1.0")

	refused := func(t *testing.T, version, code string) {
		t.Helper()
		before := f.dump()
		wantCode(t, f.db.DeleteRelease(f.ctx, version), code)
		f.unchanged(before)
		if _, err := os.Stat(pkg); err != nil {
			t.Errorf("package: %v, want it kept", err)
		}
	}
	t.Run("unknown", func(t *testing.T) { refused(t, "9.9.9", store.ENotFound) })
	t.Run("upgrade queued", func(t *testing.T) { refused(t, "1.1.0", store.EConflict) })
	if _, err := f.db.DeliverCommands(f.ctx, store.TargetProxy, itoa(p.ID)); err != nil {
		t.Fatal(err)
	}
	t.Run("upgrade delivered", func(t *testing.T) { refused(t, "v1.1.0", store.EConflict) })
	if err := f.db.ReportCommands(f.ctx, store.TargetProxy, itoa(p.ID), []store.CommandReport{{ID: id, State: wire.StateRunning}}); err != nil {
		t.Fatal(err)
	}
	t.Run("upgrade running", func(t *testing.T) { refused(t, "1.1.0", store.EConflict) })
	t.Run("upgrade failed", func(t *testing.T) {
		err := f.db.ReportCommands(f.ctx, store.TargetProxy, itoa(p.ID), []store.CommandReport{{ID: id, State: wire.StateFailed, Error: "download: status 404 Not Found"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.DeleteRelease(f.ctx, "1.1.0"); err != nil {
			t.Fatalf("got %v, want the release deleted", err)
		}
		if _, err := os.Stat(pkg); !os.IsNotExist(err) {
			t.Errorf("package: got %v, want it removed", err)
		}
		if rs, _ := f.db.ListReleases(f.ctx); len(rs) != 0 {
			t.Errorf("releases: got %+v, want none", rs)
		}
	})
}

func TestUpgradeProxyRefusals(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	newer := f.proxy(c.ID, "px-new", "0.1.0-dev")
	old := f.proxy(c.ID, "px-old", "0.0.1")
	f.publish("0.0.9")
	t.Run("runs a newer version", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.UpgradeProxy(f.ctx, newer.ID)
		wantCode(t, err, store.EConflict)
		if msg, want := store.ErrorMessage(err), "runs 0.1.0-dev, newer than the latest release 0.0.9"; !strings.Contains(msg, want) {
			t.Errorf("got %q, want it to say %q", msg, want)
		}
		f.unchanged(before)
	})
	if _, err := f.db.UpgradeProxy(f.ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	t.Run("an upgrade under way", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.UpgradeProxy(f.ctx, old.ID)
		wantCode(t, err, store.EConflict)
		f.unchanged(before)
	})
	t.Run("shown in the listing", func(t *testing.T) {
		p, err := f.db.GetProxy(f.ctx, old.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := p.UpgradeCommand(); !ok || c.State != wire.StateQueued {
			t.Errorf("upgrade command: got %+v, %v, want queued", c, ok)
		}
		id := f.pending(store.TargetProxy, itoa(old.ID))[0].ID
		f.db.DeliverCommands(f.ctx, store.TargetProxy, itoa(old.ID))
		f.clock.Advance(time.Second)
		f.db.ReportCommands(f.ctx, store.TargetProxy, itoa(old.ID), []store.CommandReport{{ID: id, State: wire.StateFailed, Error: "upgrade: download 0.0.9: status 404 Not Found"}})
		ps, err := f.db.ListProxies(f.ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			want := ""
			if p.ID == old.ID {
				want = "404 Not Found"
			}
			if (want == "") != (p.LastError == "") || !strings.Contains(p.LastError, want) {
				t.Errorf("proxy %s: last error %q, want %q", p.Hostname, p.LastError, want)
			}
		}
	})
	t.Run("again after a failure", func(t *testing.T) {
		if _, err := f.db.UpgradeProxy(f.ctx, old.ID); err != nil {
			t.Errorf("got %v, want a new upgrade queued", err)
		}
	})
}

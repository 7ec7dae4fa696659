package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/logs/logstest"
	"outpost/relay/relaytest"
	"outpost/relay/selfupdate"
	"outpost/relay/wire"
	"outpost/store"
)

// publish adds a release with a package file on the management host,
// signed by the release key (made on first use, kept beside the data
// directory).
func publish(t *testing.T, m *manager, version string, pkg []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "pkg")
	if err := os.WriteFile(src, pkg, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.PublishSignedRelease(context.Background(), store.Release{Version: version}, src, signingKey(t, m)); err != nil {
		t.Fatal(err)
	}
	if got := m.DB.ReleaseDir(); got != filepath.Join(m.Dir, "releases") {
		t.Fatalf("release dir %s, want the relay's DATA/releases", got)
	}
}

func TestUpdateManifestAndPackage(t *testing.T) {
	m := startManager(t)
	_, cl := clusterFleet(t, m, "acme", "edge", "relay.edge.example")
	pkg := []byte("outpost release 1.2.0 package bytes")
	publish(t, m, "1.1.0", []byte("old"))
	publish(t, m, "1.2.0", pkg)
	_, joined, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := httpClient(m)
	for _, base := range []struct{ name, url string }{{"management host", m.TLSURL}, {"through a joined relay", joined}} {
		t.Run(base.name, func(t *testing.T) {
			resp, err := hc.Get(base.url + wire.PathManifest)
			if err != nil {
				t.Fatal(err)
			}
			var man wire.Manifest
			json.NewDecoder(resp.Body).Decode(&man)
			resp.Body.Close()
			if got, want := man.Latest, "1.2.0"; got != want {
				t.Errorf("latest: got %q, want %q", got, want)
			}
			if len(man.Releases) != 2 || man.Releases[0].SHA256 != wire.Fingerprint(pkg) {
				t.Fatalf("got releases %+v, want 2 with the 1.2.0 checksum first", man.Releases)
			}
			resp, err = hc.Get(base.url + man.Releases[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			body := drainBody(resp)
			if resp.StatusCode != http.StatusOK || body != string(pkg) {
				t.Errorf("package: got %d %q, want 200 with the package", resp.StatusCode, body)
			}
		})
	}
	for _, tt := range []struct {
		name, path string
		want       int
	}{
		{"unknown version", wire.PathPackage + "9.9.9", http.StatusNotFound},
		{"hidden file", wire.PathPackage + ".pending", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := hc.Get(m.TLSURL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			drainBody(resp)
			if resp.StatusCode != tt.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

// TestRelayUpgradeThroughHeartbeat: an upgrade queued for a joined relay
// reaches it with its heartbeat; the relay reports each stage, fetches the
// release through the management host, checks it, self-tests the new
// binary, installs it (the previous one kept as .prev), starts the watcher
// from the previous binary, reports "restarting" and asks its command line
// for the restart. When the watcher cannot start, the previous binary is
// put back and the upgrade fails with why.
func TestRelayUpgradeThroughHeartbeat(t *testing.T) {
	for _, tt := range []struct {
		name string
		old  []byte
		want string // "" = the restart is asked
	}{
		{"installed", fakeBinary("1.0.0", fakeOK), ""},
		{"watcher cannot start", fakeBinary("1.0.0", fakeNoWatcher), "start the upgrade watcher: exit status 1: no watcher here (the previous binary is back)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newUpgradeFixtureWith(t, "1.0.0", tt.old)
			pkg := fakeBinary("9.9.9", fakeOK)
			publish(t, f.m, "9.9.9", pkg)
			ctx := context.Background()
			if _, err := f.m.DB.UpgradeProxy(ctx, f.id); err != nil {
				t.Fatal(err)
			}
			if tt.want != "" {
				up := f.ended(t)
				if up.State != wire.StateFailed || !strings.Contains(up.Error, tt.want) {
					t.Errorf("upgrade: got %s %q, want failed with %q", up.State, up.Error, tt.want)
				}
				if got := f.changed(); len(got) != 0 {
					t.Errorf("after the failed restart: %v changed, want nothing", got)
				}
				return
			}
			var plan selfupdate.Plan
			select {
			case plan = <-f.srv.RestartRequested():
			case <-time.After(10 * time.Second):
				t.Fatal("no restart asked within 10s")
			}
			if plan.From != "1.0.0" || plan.To != "9.9.9" || plan.Binary != f.bin || plan.Command == 0 {
				t.Errorf("plan: got %+v, want 1.0.0 -> 9.9.9 of %s", plan, f.bin)
			}
			if got, _ := os.ReadFile(f.bin); !bytes.Equal(got, pkg) {
				t.Errorf("binary: got %q, want the new release", got)
			}
			if got, _ := os.ReadFile(f.bin + ".prev"); !bytes.Equal(got, f.old) {
				t.Errorf("binary.prev: got %q, want the previous binary", got)
			}
			calls, _ := os.ReadFile(f.bin + ".prev.watch-calls")
			if want := "upgrade-watch --dir " + f.dir + " --detach"; strings.TrimSpace(string(calls)) != want {
				t.Errorf("watcher: got %q, want the previous binary run as %q", calls, want)
			}
			tr, err := selfupdate.Load(f.dir)
			if err != nil || tr.To != "9.9.9" || tr.Command != plan.Command {
				t.Errorf("trial: got %+v %v, want the upgrade to 9.9.9 on trial", tr, err)
			}
			waitFor(t, 5*time.Second, "the restarting stage", func() bool {
				p, _ := f.m.DB.GetProxy(ctx, f.id)
				up, _ := p.UpgradeCommand()
				return up.State == wire.StateRunning && up.Stage == wire.StageRestarting
			})
		})
	}
}

// TestRelayUpgradeFailureReported: an upgrade the relay cannot carry out
// (the package is gone from the management host: 404) ends failed with
// that reason, shown on the proxy and in the audit log, and is not
// delivered again, instead of being retried every heartbeat for ever.
func TestRelayUpgradeFailureReported(t *testing.T) {
	m := startManager(t)
	_, cl := clusterFleet(t, m, "acme", "edge", "relay.edge.example")
	dir := t.TempDir()
	if _, _, err := startJoined(t, m, mustJoinToken(t, m, cl.ID), dir); err != nil {
		t.Fatal(err)
	}
	publish(t, m, "9.9.9", []byte("release 9.9.9"))
	if err := os.Remove(filepath.Join(m.Dir, "releases", "9.9.9")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ps, err := m.DB.ListProxies(ctx, cl.ID)
	if err != nil || len(ps) != 1 {
		t.Fatalf("proxies: %v %v", ps, err)
	}
	id := ps[0].ID
	waitFor(t, 5*time.Second, "the relay to be online", func() bool {
		p, _ := m.DB.GetProxy(ctx, id)
		return p.Status == store.StatusOnline
	})
	if _, err := m.DB.UpgradeProxy(ctx, id); err != nil {
		t.Fatal(err)
	}
	var up store.Command
	waitFor(t, 10*time.Second, "the upgrade to end failed", func() bool {
		p, _ := m.DB.GetProxy(ctx, id)
		up, _ = p.UpgradeCommand()
		return up.State == wire.StateFailed
	})
	// Delivered once, or again by a heartbeat that came before the relay's
	// first report (the management host hands a delivered command over
	// until a report lands; the relay leaves a redelivery to the upgrade
	// already running): a loaded machine sees 2.
	if want := "404"; !strings.Contains(up.Error, want) || up.Attempts < 1 || up.Attempts > 2 {
		t.Errorf("upgrade command: got %q after %d deliveries, want the %s reason after 1 or 2", up.Error, up.Attempts, want)
	}
	p, _ := m.DB.GetProxy(ctx, id)
	if !strings.Contains(p.LastError, "404") {
		t.Errorf("proxy last error: got %q, want the 404 reason", p.LastError)
	}
	es, err := m.DB.ListAudit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		found = found || (e.Action == "command.failed" && e.Target == "proxy/acme/"+strconv.FormatInt(id, 10) && strings.Contains(e.Detail, "404"))
	}
	if !found {
		t.Errorf("audit: no command.failed entry for proxy %d with the reason in %+v", id, es)
	}
	// Not delivered again: after several more heartbeats (100 ms apart)
	// it is still the one failed delivery.
	seen := p.LastSeen
	waitFor(t, 5*time.Second, "five more heartbeats", func() bool {
		p, _ = m.DB.GetProxy(ctx, id)
		return p.LastSeen.Sub(seen) >= 500*time.Millisecond
	})
	if got, _ := p.UpgradeCommand(); got.State != wire.StateFailed || got.Attempts != up.Attempts {
		t.Errorf("upgrade command later: got %s after %d deliveries, want failed after %d (no delivery after the failure)", got.State, got.Attempts, up.Attempts)
	}
}

// signingKey is the manager's release signing key file, made on first use.
func signingKey(t *testing.T, m *manager) string {
	t.Helper()
	path := m.Dir + ".release-signing.key"
	if k, err := m.DB.ReleaseKey(context.Background()); err != nil {
		t.Fatal(err)
	} else if k == "" {
		if _, err := m.DB.CreateReleaseKey(context.Background(), path); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func mustJoinToken(t *testing.T, m *manager, clusterID int64) string {
	t.Helper()
	jt, err := m.DB.CreateJoinToken(context.Background(), clusterID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return jt.Token
}

// TestSpoolFullAnswers429: with the upstream down, a full spool answers
// 429 + Retry-After; the agent keeps what was refused, and everything that
// was acknowledged reaches the collector once it is back.
func TestSpoolFullAnswers429(t *testing.T) {
	upstream := relaytest.FreeAddr(t) // down until the end of the test
	m := startManager(t, func(c *relay.Config) {
		c.Upstream = "http://" + upstream
		c.SpoolMax = 1 << 20
	})
	f := newFleet(t, m, "acme", 0)
	c := newClient(m, m.TLSURL)
	en := enrolLinux(t, c, f.Key, 1)
	pad := strings.Repeat("x", 8000)
	var acked uint64
	var refused *agentsim.StatusError
	for seq := uint64(1); seq <= 400 && refused == nil; seq++ {
		rec := wire.Record{Seq: seq, Time: time.Now().UTC(), Type: "bulk", Data: json.RawMessage(`{"pad":"` + pad + `"}`)}
		_, err := c.SendEvents(context.Background(), []wire.Record{rec})
		switch {
		case err == nil:
			acked = seq
		case errors.As(err, &refused):
		default:
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	if refused == nil || refused.Status != http.StatusTooManyRequests || refused.RetryAfter <= 0 {
		t.Fatalf("got refusal %+v after %d acknowledged, want 429 with Retry-After", refused, acked)
	}
	if acked < 50 {
		t.Fatalf("only %d records acknowledged before the spool filled, want the spool to hold about 1 MiB", acked)
	}
	// Upstream back: every acknowledged record arrives.
	col, err := collector.New(t.TempDir(), logstest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	ln, err := net.Listen("tcp", upstream)
	if err != nil {
		t.Skipf("upstream port %s taken meanwhile: %v", upstream, err)
	}
	hs := &http.Server{Handler: col.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	waitFor(t, 20*time.Second, "the spool to drain upstream", func() bool { return col.Received(en.AgentID) == acked })
}

package store_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

func TestUpgradeProxy(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "relay-1", "1.1.9")
	pid := itoa(p.ID)

	refuse := func(name, code string) {
		t.Run(name, func(t *testing.T) {
			before := f.dump()
			_, err := f.db.UpgradeProxy(f.ctx, p.ID)
			wantCode(t, err, code)
			f.unchanged(before)
		})
	}
	refuse("no release", store.EConflict)

	f.publish("1.2.0")
	f.clock.Advance(f.db.Settings().ProxyOfflineAfter + time.Second)
	if got, _ := f.db.GetProxy(f.ctx, p.ID); got.Upgrade {
		t.Errorf("offline proxy: got Upgrade true, want false")
	}
	refuse("offline", store.EConflict)

	if err := f.db.Heartbeat(f.ctx, p.ID, "1.1.9", 0.1, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.GetProxy(f.ctx, p.ID); !got.Upgrade {
		t.Errorf("online 1.1.9 with 1.2.0 out: got Upgrade false, want true")
	}
	t.Run("online and older", func(t *testing.T) {
		to, err := f.db.UpgradeProxy(f.ctx, p.ID)
		if err != nil || to != "1.2.0" {
			t.Fatalf("got %q %v, want 1.2.0", to, err)
		}
		cmds := f.pending(store.TargetProxy, pid)
		if len(cmds) != 1 || cmds[0].Type != "upgrade" {
			t.Fatalf("got %v, want one upgrade command", commandTypes(cmds))
		}
		var payload map[string]string
		if err := json.Unmarshal([]byte(cmds[0].Payload), &payload); err != nil || payload["version"] != "1.2.0" {
			t.Errorf("got payload %s, want version 1.2.0", cmds[0].Payload)
		}
	})

	if err := f.db.Heartbeat(f.ctx, p.ID, "1.2.0", 0.1, 0); err != nil {
		t.Fatal(err)
	}
	refuse("already at latest", store.EConflict)
	if err := f.db.Heartbeat(f.ctx, p.ID, "1.3.0", 0.1, 0); err != nil {
		t.Fatal(err)
	}
	refuse("newer than latest", store.EConflict)
	t.Run("unknown proxy", func(t *testing.T) {
		_, err := f.db.UpgradeProxy(f.ctx, 999)
		wantCode(t, err, store.ENotFound)
	})
}

func TestUpgradeProxyNumericOrdering(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "relay-1", "1.9.0")
	// Published out of order: "1.10.0" sorts before "1.9.0" as text.
	for _, v := range []string{"1.10.0", "1.9.0", "1.2.0"} {
		f.publish(v)
	}
	if latest, err := f.db.LatestRelease(f.ctx); err != nil || latest != "1.10.0" {
		t.Errorf("LatestRelease: got %q %v, want 1.10.0", latest, err)
	}
	to, err := f.db.UpgradeProxy(f.ctx, p.ID)
	if err != nil || to != "1.10.0" {
		t.Errorf("got %q %v, want 1.10.0", to, err)
	}
	t.Run("duplicate release", func(t *testing.T) {
		before := f.dump()
		wantCode(t, f.db.AddRelease(f.ctx, store.Release{Version: "1.9.0", SHA256: strings.Repeat("ab", 32)}), store.EConflict)
		f.unchanged(before)
	})
	t.Run("empty release", func(t *testing.T) {
		before := f.dump()
		wantCode(t, f.db.AddRelease(f.ctx, store.Release{Version: " "}), store.EInvalid)
		f.unchanged(before)
	})
}

func TestDeleteProxyOnlyOffline(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "relay-1", "1.0.0")
	if _, err := f.db.SetPolicy(f.ctx, c.ID, store.Policy{}); err != nil { // queues a command for it
		t.Fatal(err)
	}
	t.Run("online", func(t *testing.T) {
		before := f.dump()
		wantCode(t, f.db.DeleteProxy(f.ctx, p.ID), store.EConflict)
		f.unchanged(before)
	})
	f.clock.Advance(f.db.Settings().ProxyOfflineAfter + time.Second)
	t.Run("offline", func(t *testing.T) {
		if err := f.db.DeleteProxy(f.ctx, p.ID); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if cmds := f.pending(store.TargetProxy, itoa(p.ID)); len(cmds) != 0 {
			t.Errorf("got %v, want its commands gone", commandTypes(cmds))
		}
		if got := f.getCluster(c.ID).Proxies; got != 0 {
			t.Errorf("got %d proxies, want 0", got)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		wantCode(t, f.db.DeleteProxy(f.ctx, p.ID), store.ENotFound)
	})
}

func TestQuickDeploy(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	linux := f.enrol(key, "linux-01")
	win, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: key, Host: store.HostFacts{Hostname: "win-01", Fingerprint: "fp-w", OS: "windows"}})
	if err != nil {
		t.Fatal(err)
	}
	stale := f.enrol(key, "stale-01")
	f.clock.Advance(f.db.Settings().OfflineAfter)
	for _, ag := range []store.Agent{linux, win.Agent} {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, asset, code string
	}{
		{"windows asset", win.Agent.ID, store.EInvalid},
		{"offline asset", stale.ID, store.EConflict},
		{"unknown asset", "ag_nope", store.ENotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			_, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployQuick, tt.asset, 0)
			wantCode(t, err, tt.code)
			f.unchanged(before)
		})
	}
	t.Run("online linux asset", func(t *testing.T) {
		jt, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployQuick, linux.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := commandTypes(f.pending(store.TargetAgent, linux.ID)); len(got) != 1 || got[0] != "deploy-proxy" {
			t.Errorf("got %v, want [deploy-proxy]", got)
		}
		if jt.Token != "" {
			t.Errorf("got token %q from a quick deployment, want none (it is issued on delivery)", jt.Token)
		}
		token, err := f.db.IssueJoinToken(f.ctx, jt.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range f.pending(store.TargetAgent, linux.ID) {
			if strings.Contains(c.Payload, token) {
				t.Errorf("command payload %s holds the plain join token", c.Payload)
			}
		}
		p, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: token, Hostname: "linux-01"})
		if err != nil {
			t.Fatal(err)
		}
		if p.AssetID != linux.ID || !p.Protected || p.Deploy != store.DeployQuick {
			t.Errorf("got asset %q protected %v deploy %s, want %s true quick", p.AssetID, p.Protected, p.Deploy, linux.ID)
		}
	})
}

func TestAuthProxy(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p, secret, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: f.joinToken(c.ID), Hostname: "relay-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.db.AuthProxy(f.ctx, p.ID, secret); err != nil || got.ID != p.ID {
		t.Errorf("right secret: got %v %v, want proxy %d", got.ID, err, p.ID)
	}
	for _, tt := range []struct {
		name   string
		id     int64
		secret string
	}{{"wrong secret", p.ID, secret + "x"}, {"unknown proxy", 999, secret}} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.db.AuthProxy(f.ctx, tt.id, tt.secret)
			wantCode(t, err, store.EUnauthorized)
		})
	}
	acct, cl, err := f.db.ProxyAccount(f.ctx, p.ID)
	if err != nil || acct != a.ID || cl != c.ID {
		t.Errorf("ProxyAccount: got %d %d %v, want %d %d", acct, cl, err, a.ID, c.ID)
	}
}

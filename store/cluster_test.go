package store_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

func TestClusterNameUniquePerAccount(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	b, _ := f.account("globex")
	f.cluster(a.ID, "edge", "relay.acme.example")

	for _, name := range []string{"edge", " edge "} {
		t.Run("same account "+quoteName(name), func(t *testing.T) {
			before := f.dump()
			_, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: a.ID, Name: name, Address: "other.acme.example"})
			wantCode(t, err, store.EConflict)
			f.unchanged(before)
		})
	}
	t.Run("other account", func(t *testing.T) {
		c, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: b.ID, Name: "edge", Address: "relay.acme.example"})
		if err != nil {
			t.Fatalf("got %v, want the same name accepted in another account", err)
		}
		if c.AccountID != b.ID || c.Account != "globex" {
			t.Errorf("got account %d %q, want %d %q", c.AccountID, c.Account, b.ID, "globex")
		}
	})
	t.Run("unknown account", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: 999, Name: "x", Address: "10.0.0.9"})
		wantCode(t, err, store.ENotFound)
		f.unchanged(before)
	})
	for _, id := range []int64{a.ID, b.ID} {
		cs, err := f.db.ListClusters(f.ctx, id)
		if err != nil || len(cs) != 1 {
			t.Errorf("ListClusters(%d): got %d clusters, %v, want 1", id, len(cs), err)
		}
	}
}

func quoteName(s string) string { return "\"" + s + "\"" }

// The schema refuses the change too, whoever makes it: a second raw
// connection that does not go through the store.
func TestClusterImmutableTrigger(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	b, _ := f.account("globex")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	raw := openRaw(t, f.db.Path)
	tests := []struct {
		name string
		sql  string
		args []any
	}{
		{"name", `UPDATE clusters SET name = ? WHERE id = ?`, []any{"renamed", c.ID}},
		{"address", `UPDATE clusters SET address = ? WHERE id = ?`, []any{"10.9.9.9", c.ID}},
		{"account", `UPDATE clusters SET account_id = ? WHERE id = ?`, []any{b.ID, c.ID}},
		{"name and region", `UPDATE clusters SET name = ?, region = 'x' WHERE id = ?`, []any{"renamed", c.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			_, err := raw.Exec(tt.sql, tt.args...)
			if err == nil || !strings.Contains(err.Error(), "cannot be changed after creation") {
				t.Errorf("got %v, want the trigger's refusal", err)
			}
			f.unchanged(before)
		})
	}
	t.Run("same values and other columns pass", func(t *testing.T) {
		if _, err := raw.Exec(`UPDATE clusters SET name = name, address = address, remark = 'ok' WHERE id = ?`, c.ID); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	if got := f.getCluster(c.ID); got.Name != "edge" || got.Address != "relay.acme.example" || got.AccountID != a.ID {
		t.Errorf("got %q %q account %d, want edge relay.acme.example account %d", got.Name, got.Address, got.AccountID, a.ID)
	}
}

func TestClusterAddress(t *testing.T) {
	tests := []struct {
		addr string
		kind store.AddressKind // "" = refused
	}{
		{"10.0.0.5", "ip"},
		{"::1", "ip"},
		{"relay.example.com", "domain"},
		{"", ""},
		{"10.0.0.256", ""},
		{"10.0.0", ""},
		{"exa mple.com", ""},
		{"-bad.com", ""},
		{"a..b", ""},
		{"http://x.com", ""},
	}
	for _, tt := range tests {
		t.Run(quoteName(tt.addr), func(t *testing.T) {
			f := newFixture(t)
			a, _ := f.account("acme")
			before := f.dump()
			c, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: a.ID, Name: "edge", Address: tt.addr})
			if tt.kind == "" {
				wantCode(t, err, store.EInvalid)
				f.unchanged(before)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want a %s cluster", err, tt.kind)
			}
			if c.Address != tt.addr || c.AddressKind != tt.kind {
				t.Errorf("got %q kind %q, want %q kind %q", c.Address, c.AddressKind, tt.addr, tt.kind)
			}
		})
	}
}

func TestIPClusterHoldsOneProxy(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "10.0.0.5")
	// Two deploy commands made before either relay joined: the second join
	// must still be refused.
	tok1, tok2 := f.joinToken(c.ID), f.joinToken(c.ID)
	if _, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: tok1, Hostname: "relay-1", Version: "1.0.0"}); err != nil {
		t.Fatalf("first JoinProxy: %v", err)
	}
	t.Run("JoinProxy", func(t *testing.T) {
		before := f.dump()
		_, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: tok2, Hostname: "relay-2", Version: "1.0.0"})
		wantCode(t, err, store.ELimit)
		f.unchanged(before)
	})
	t.Run("CreateJoinToken", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", 0)
		wantCode(t, err, store.ELimit)
		f.unchanged(before)
	})
	if got := f.getCluster(c.ID).Proxies; got != 1 {
		t.Errorf("got %d proxies, want 1", got)
	}
}

func TestDomainClusterHoldsSeveralProxies(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	f.proxy(c.ID, "relay-1", "1.0.0")
	f.proxy(c.ID, "relay-2", "1.0.0")
	if _, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", 0); err != nil {
		t.Errorf("third CreateJoinToken: got %v, want nil", err)
	}
	if got := f.getCluster(c.ID); got.Proxies != 2 || got.ProxiesOnline != 2 {
		t.Errorf("got %d proxies (%d online), want 2 (2)", got.Proxies, got.ProxiesOnline)
	}
}

func TestJoinTokenOneTime(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	tok := f.joinToken(c.ID)
	if _, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: tok, Hostname: "relay-1"}); err != nil {
		t.Fatalf("JoinProxy: %v", err)
	}
	expiring := f.joinToken(c.ID)
	f.clock.Advance(store.DefaultJoinTTL)
	for _, tt := range []struct{ name, token string }{{"reused", tok}, {"expired", expiring}, {"unknown", "jt_nope"}} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			_, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: tt.token, Hostname: "relay-2"})
			wantCode(t, err, store.EUnauthorized)
			f.unchanged(before)
		})
	}
}

func TestClusterStatusFollowsProxies(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	after := f.db.Settings().ProxyOfflineAfter

	check := func(step string, wantCluster, wantProxy store.Status) {
		t.Helper()
		got := f.getCluster(c.ID)
		if got.Status != wantCluster {
			t.Errorf("%s: got cluster %s, want %s", step, got.Status, wantCluster)
		}
		ps, err := f.db.ListProxies(f.ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Status != wantProxy {
				t.Errorf("%s: got proxy %s, want %s", step, p.Status, wantProxy)
			}
		}
	}
	check("no proxy", store.StatusOffline, "")
	p := f.proxy(c.ID, "relay-1", "1.0.0")
	check("joined", store.StatusOnline, store.StatusOnline)
	f.clock.Advance(after)
	check("at ProxyOfflineAfter", store.StatusOnline, store.StatusOnline)
	f.clock.Advance(time.Second)
	check("past ProxyOfflineAfter", store.StatusOffline, store.StatusOffline)
	if err := f.db.Heartbeat(f.ctx, p.ID, "1.0.0", 0.2, 3); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	check("heartbeat", store.StatusOnline, store.StatusOnline)

	// One online proxy is enough.
	p2 := f.proxy(c.ID, "relay-2", "1.0.0")
	f.clock.Advance(after / 2)
	if err := f.db.Heartbeat(f.ctx, p2.ID, "1.0.0", 0, 0); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(after/2 + time.Second)
	got := f.getCluster(c.ID)
	if got.Status != store.StatusOnline || got.ProxiesOnline != 1 || got.Proxies != 2 {
		t.Errorf("one of two online: got %s %d/%d, want online 1/2", got.Status, got.ProxiesOnline, got.Proxies)
	}
	if err := f.db.Heartbeat(f.ctx, 999, "1.0.0", 0, 0); store.ErrorCode(err) != store.ENotFound {
		t.Errorf("Heartbeat unknown proxy: got %v, want %s", err, store.ENotFound)
	}
}

func TestDeleteClusterOrder(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	ag := f.enrol(key, "web-01")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	p := f.proxy(c.ID, "relay-1", "1.0.0")

	refuse := func(step string, mention, absent []string) {
		t.Helper()
		before := f.dump()
		err := f.db.DeleteCluster(f.ctx, c.ID)
		if !wantCode(t, err, store.EConflict) {
			return
		}
		for _, m := range mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: got %q, want it to mention %q", step, err, m)
			}
		}
		for _, m := range absent {
			if strings.Contains(err.Error(), m) {
				t.Errorf("%s: got %q, want it not to mention %q", step, err, m)
			}
		}
		f.unchanged(before)
	}
	refuse("agents and proxy", []string{"1 bound agent", "1 proxy server", "unbind"}, nil)

	if _, err := f.db.Unbind(f.ctx, c.ID, nil, true); err != nil {
		t.Fatalf("Unbind --all: %v", err)
	}
	refuse("proxy left", []string{"proxy"}, []string{"agent"})

	t.Run("DeleteProxy refused while online", func(t *testing.T) {
		before := f.dump()
		err := f.db.DeleteProxy(f.ctx, p.ID)
		wantCode(t, err, store.EConflict)
		f.unchanged(before)
	})
	f.clock.Advance(f.db.Settings().ProxyOfflineAfter + time.Second)
	if err := f.db.DeleteProxy(f.ctx, p.ID); err != nil {
		t.Fatalf("DeleteProxy offline: got %v, want nil", err)
	}
	if _, err := f.db.GetProxy(f.ctx, p.ID); store.ErrorCode(err) != store.ENotFound {
		t.Errorf("GetProxy after delete: got %v, want %s", err, store.ENotFound)
	}
	if err := f.db.DeleteCluster(f.ctx, c.ID); err != nil {
		t.Fatalf("DeleteCluster empty: got %v, want nil", err)
	}
	if _, err := f.db.GetCluster(f.ctx, c.ID); store.ErrorCode(err) != store.ENotFound {
		t.Errorf("GetCluster after delete: got %v, want %s", err, store.ENotFound)
	}
	// Unbinding did not uninstall: the agent is still there, direct.
	if got := f.agent(ag.ID); got.ClusterID != 0 {
		t.Errorf("got cluster %d, want 0", got.ClusterID)
	}
}

func TestDeleteClusterWithOnlyAgents(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "10.0.0.5")
	f.enrol(key, "web-01")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	err := f.db.DeleteCluster(f.ctx, c.ID)
	if wantCode(t, err, store.EConflict) {
		if !strings.Contains(err.Error(), "agent") || strings.Contains(err.Error(), "proxy") {
			t.Errorf("got %q, want it to name the agents only", err)
		}
	}
	f.unchanged(before)
}

func TestSetPolicy(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	if got := c.Policy; got != (store.Policy{Mode: wire.ModeForward}) {
		t.Errorf("default policy: got %+v, want forward unlimited", got)
	}
	p1 := f.proxy(c.ID, "relay-1", "1.0.0")
	p2 := f.proxy(c.ID, "relay-2", "1.0.0")

	tests := []struct {
		name string
		in   store.Policy
		want store.Policy
	}{
		{"forward limited", store.Policy{Mode: wire.ModeForward, BandwidthBps: 250000, FrequencyRPS: 50},
			store.Policy{Mode: wire.ModeForward, BandwidthBps: 250000, FrequencyRPS: 50}},
		{"forward unlimited", store.Policy{Mode: wire.ModeForward}, store.Policy{Mode: wire.ModeForward}},
		{"cache defaults", store.Policy{Mode: wire.ModeCache},
			store.Policy{Mode: wire.ModeCache, CacheDir: filepath.Join(store.DefaultCacheDir, "edge"), CacheMax: store.MaxCacheBytes}},
		{"cache 2 GB", store.Policy{Mode: wire.ModeCache, CacheDir: "/srv/outpost", CacheMax: 2000000000},
			store.Policy{Mode: wire.ModeCache, CacheDir: "/srv/outpost", CacheMax: 2000000000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n1, n2 := len(f.pending(store.TargetProxy, itoa(p1.ID))), len(f.pending(store.TargetProxy, itoa(p2.ID)))
			got, err := f.db.SetPolicy(f.ctx, c.ID, tt.in)
			if err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
			if got.Policy != tt.want {
				t.Errorf("returned: got %+v, want %+v", got.Policy, tt.want)
			}
			if stored := f.getCluster(c.ID).Policy; stored != tt.want {
				t.Errorf("stored: got %+v, want %+v", stored, tt.want)
			}
			for _, p := range []struct {
				id     int64
				before int
			}{{p1.ID, n1}, {p2.ID, n2}} {
				cmds := f.pending(store.TargetProxy, itoa(p.id))
				if len(cmds) != p.before+1 {
					t.Fatalf("proxy %d: got %d commands, want %d", p.id, len(cmds), p.before+1)
				}
				last := cmds[len(cmds)-1]
				var sent store.Policy
				if err := json.Unmarshal([]byte(last.Payload), &sent); err != nil {
					t.Fatal(err)
				}
				if last.Type != "policy" || sent != tt.want {
					t.Errorf("proxy %d: got %s %+v, want policy %+v", p.id, last.Type, sent, tt.want)
				}
			}
		})
	}
}

func TestSetPolicyCacheCapRefused(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	f.proxy(c.ID, "relay-1", "1.0.0")
	if _, err := f.db.SetPolicy(f.ctx, c.ID, store.Policy{Mode: wire.ModeForward, BandwidthBps: 1000}); err != nil {
		t.Fatal(err)
	}
	cap20, err := store.ParseSize("20GB")
	if err != nil {
		t.Fatal(err)
	}
	before := f.dump()
	_, err = f.db.SetPolicy(f.ctx, c.ID, store.Policy{Mode: wire.ModeCache, CacheMax: cap20})
	wantCode(t, err, store.ELimit)
	f.unchanged(before)
	if got := f.getCluster(c.ID).Policy; got != (store.Policy{Mode: wire.ModeForward, BandwidthBps: 1000}) {
		t.Errorf("got %+v, want the previous policy", got)
	}
	// The schema caps it as well, whoever writes.
	if _, err := f.raw().Exec(`UPDATE clusters SET cache_max = ? WHERE id = ?`, cap20, c.ID); err == nil {
		t.Errorf("raw UPDATE cache_max=20GB: got nil, want a CHECK failure")
	}
}

func TestClusterWarningsDerived(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	f.proxy(c.ID, "relay-1", "1.0.0")
	got, err := f.db.SetPolicy(f.ctx, c.ID, store.Policy{Mode: wire.ModeForward, BandwidthBps: 937500, LinkBps: 10000000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0].Text(), "60%") {
		t.Errorf("got %q, want the 60%% link warning", got.Warnings)
	}
	got, err = f.db.SetPolicy(f.ctx, c.ID, store.Policy{Mode: wire.ModeForward, BandwidthBps: 625000, LinkBps: 10000000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Warnings) != 0 {
		t.Errorf("got %q, want no warnings", got.Warnings)
	}
}

func TestFindProxiesFilter(t *testing.T) {
	f := newFixture(t)
	acme, _ := f.account("acme")
	other, _ := f.account("other")
	edge := f.cluster(acme.ID, "edge", "relay.acme.example")
	core := f.cluster(acme.ID, "core", "core.acme.example")
	theirs := f.cluster(other.ID, "edge", "relay.other.example")
	f.proxy(edge.ID, "edge-1", "1.0.0")
	f.proxy(core.ID, "core-1", "1.0.0")
	f.proxy(theirs.ID, "theirs-1", "1.0.0")
	for _, tc := range []struct {
		name string
		f    store.ProxyFilter
		want []string
	}{
		{"all", store.ProxyFilter{}, []string{"core-1", "edge-1", "theirs-1"}},
		{"cluster", store.ProxyFilter{ClusterID: edge.ID}, []string{"edge-1"}},
		{"account", store.ProxyFilter{AccountID: acme.ID}, []string{"core-1", "edge-1"}},
		{"other account", store.ProxyFilter{AccountID: other.ID}, []string{"theirs-1"}},
		{"cluster of another account", store.ProxyFilter{ClusterID: theirs.ID, AccountID: acme.ID}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := f.db.FindProxies(f.ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Hostname)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

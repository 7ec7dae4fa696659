package store_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// --- status timing (rule 2) ---

func TestAgentOfflineAfterDefault(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	ag := f.enrol(key, "web-01")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		advance  time.Duration // from the previous step
		online   bool
		security string
	}{
		{"just enrolled", 0, true, store.Protected},
		{"11h59m", 11*time.Hour + 59*time.Minute, true, store.Protected},
		{"12h", time.Minute, false, store.Unprotected},
		{"13h", time.Hour, false, store.Unprotected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(tt.advance)
			got := f.agent(ag.ID)
			if got.Online != tt.online || got.SecurityStatus != tt.security {
				t.Errorf("GetAgent: got online=%v %s, want online=%v %s", got.Online, got.SecurityStatus, tt.online, tt.security)
			}
			wantN := 0
			if tt.online {
				wantN = 1
			}
			// Every view agrees at the boundary.
			if c := f.getCluster(c.ID); c.AgentsOnline != wantN {
				t.Errorf("cluster AgentsOnline: got %d, want %d", c.AgentsOnline, wantN)
			}
			counts, err := f.db.CountAgents(f.ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if counts.Online != wantN {
				t.Errorf("CountAgents.Online: got %d, want %d", counts.Online, wantN)
			}
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Status: store.StatusOnline})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != wantN {
				t.Errorf("ListAgents online: got %d, want %d", page.Total, wantN)
			}
		})
	}
	t.Run("check-in brings it back", func(t *testing.T) {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
			t.Fatal(err)
		}
		if got := f.agent(ag.ID); !got.Online || got.SecurityStatus != store.Protected {
			t.Errorf("got online=%v %s, want online=true Protected", got.Online, got.SecurityStatus)
		}
	})
}

func TestAgentOfflineAfterSetting(t *testing.T) {
	f := newFixture(t)
	_, key := f.account("acme")
	s := store.DefaultSettings()
	s.OfflineAfter, s.InventoryInterval = 30*time.Second, 10*time.Second
	if err := f.db.SetSettings(f.ctx, s); err != nil {
		t.Fatalf("SetSettings: %v", err)
	}
	ag := f.enrol(key, "web-01")
	f.clock.Advance(29 * time.Second)
	if got := f.agent(ag.ID); !got.Online {
		t.Errorf("at 29s: got offline, want online")
	}
	f.clock.Advance(time.Second)
	if got := f.agent(ag.ID); got.Online || got.SecurityStatus != store.Unprotected {
		t.Errorf("at 30s: got online=%v %s, want offline Unprotected", got.Online, got.SecurityStatus)
	}

	// The setting survives a restart.
	f.db.Close()
	db, err := store.Open(f.db.Path, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Settings(); got != s {
		t.Errorf("after reopen: got %+v, want %+v", got, s)
	}
}

func TestSetSettingsRefusesBadValues(t *testing.T) {
	f := newFixture(t)
	if got := f.db.Settings(); got != store.DefaultSettings() {
		t.Errorf("fresh database: got %+v, want defaults", got)
	}
	if got := f.db.Settings().InventoryInterval; got != 5*time.Hour {
		t.Errorf("InventoryInterval: got %v, want 5h", got)
	}
	bad := store.DefaultSettings()
	bad.OfflineAfter = 0
	before := f.dump()
	err := f.db.SetSettings(f.ctx, bad)
	if wantCode(t, err, store.EInvalid) && !strings.Contains(err.Error(), "offline_after") {
		t.Errorf("got %q, want it to name offline_after", err)
	}
	f.unchanged(before)
	if got := f.db.Settings(); got != store.DefaultSettings() {
		t.Errorf("after refusal: got %+v, want defaults", got)
	}
}

// --- binding (rule 4) ---

func TestBindBatchSize(t *testing.T) {
	t.Parallel() // slow under -race: let the quick tests run alongside
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	ids := f.seedAgents(a.ID, 0, "web", store.BindBatchMax+1, t0)
	hosts := make([]string, len(ids))
	for i := range ids {
		hosts[i] = fmt.Sprintf("web-%05d", i)
	}
	t.Run("501 refused", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.Bind(f.ctx, c.ID, hosts)
		wantCode(t, err, store.ELimit)
		f.unchanged(before)
	})
	t.Run("500 accepted", func(t *testing.T) {
		res, err := f.db.Bind(f.ctx, c.ID, hosts[:store.BindBatchMax])
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if len(res.Bound) != store.BindBatchMax {
			t.Errorf("got %d bound, want %d", len(res.Bound), store.BindBatchMax)
		}
		if got := f.getCluster(c.ID).Agents; got != store.BindBatchMax {
			t.Errorf("cluster agents: got %d, want %d", got, store.BindBatchMax)
		}
	})
}

func TestBindBatchGap(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	other := f.cluster(a.ID, "core", "core.acme.example")
	for _, h := range []string{"web-01", "web-02", "web-03"} {
		f.enrol(key, h)
	}
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(20 * time.Second)
	t.Run("second batch within a minute", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.Bind(f.ctx, c.ID, []string{"web-02"})
		if !wantCode(t, err, store.ELimit) {
			return
		}
		if got := retryAfter(err); got != 40*time.Second {
			t.Errorf("got RetryAfter %v, want 40s", got)
		}
		f.unchanged(before)
	})
	t.Run("another cluster is not held up", func(t *testing.T) {
		if _, err := f.db.Bind(f.ctx, other.ID, []string{"web-03"}); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	f.clock.Advance(40 * time.Second)
	t.Run("a minute later", func(t *testing.T) {
		res, err := f.db.Bind(f.ctx, c.ID, []string{"web-02"})
		if err != nil || len(res.Bound) != 1 {
			t.Errorf("got %v %v, want web-02 bound", res, err)
		}
	})
}

func TestBindRefusals(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	_, keyB := f.account("globex")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	w1, w2 := f.enrol(key, "web-01"), f.enrol(key, "web-02")
	foreign := f.enrol(keyB, "globex-db")
	tests := []struct {
		name  string
		hosts []string
		code  string
	}{
		{"agent of another account", []string{"globex-db"}, store.EForbidden},
		{"foreign agent by id", []string{foreign.ID}, store.EForbidden},
		{"unknown host", []string{"nope"}, store.ENotFound},
		{"one bad host spoils the batch", []string{"web-01", "web-02", "nope"}, store.ENotFound},
		{"one foreign host spoils the batch", []string{"web-01", "globex-db", "web-02"}, store.EForbidden},
		{"empty", nil, store.EInvalid},
		{"blank host", []string{"web-01", " "}, store.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			_, err := f.db.Bind(f.ctx, c.ID, tt.hosts)
			wantCode(t, err, tt.code)
			f.unchanged(before)
			for _, ag := range []store.Agent{w1, w2, foreign} {
				if got := f.agent(ag.ID).ClusterID; got != 0 {
					t.Errorf("%s: got cluster %d, want 0 (direct)", ag.Hostname, got)
				}
				if cmds := f.pending(store.TargetAgent, ag.ID); len(cmds) != 0 {
					t.Errorf("%s: got commands %v, want none", ag.Hostname, commandTypes(cmds))
				}
			}
		})
	}
	t.Run("unknown cluster", func(t *testing.T) {
		_, err := f.db.Bind(f.ctx, 999, []string{"web-01"})
		wantCode(t, err, store.ENotFound)
	})
}

func TestBindQueuesCommands(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	f.proxy(c.ID, "relay-1", "1.0.0")
	w1, w2 := f.enrol(key, "web-01"), f.enrol(key, "web-02")
	res, err := f.db.Bind(f.ctx, c.ID, []string{"web-01", w2.ID, "web-01"}) // by name, by id, repeated
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{w1.ID, w2.ID}; !slices.Equal(res.Bound, want) {
		t.Errorf("Bound: got %v, want %v", res.Bound, want)
	}
	for _, ag := range []store.Agent{w1, w2} {
		if got := f.agent(ag.ID); got.ClusterID != c.ID || got.Cluster != "edge" {
			t.Errorf("%s: got cluster %d %q, want %d edge", ag.Hostname, got.ClusterID, got.Cluster, c.ID)
		}
		cmds := f.pending(store.TargetAgent, ag.ID)
		if len(cmds) != 1 || cmds[0].Type != "bind" {
			t.Fatalf("%s: got %v, want one bind command", ag.Hostname, commandTypes(cmds))
		}
		var payload struct {
			Cluster string   `json:"cluster"`
			Proxies []string `json:"proxies"`
		}
		if err := json.Unmarshal([]byte(cmds[0].Payload), &payload); err != nil {
			t.Fatal(err)
		}
		if want := []string{"https://relay.acme.example:8443", "https://relay-1:8443"}; payload.Cluster != "edge" || !slices.Equal(payload.Proxies, want) {
			t.Errorf("%s: got payload %+v, want cluster edge via %v", ag.Hostname, payload, want)
		}
	}
	f.clock.Advance(time.Minute)
	res, err = f.db.Bind(f.ctx, c.ID, []string{"web-01"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bound) != 0 || !slices.Equal(res.Already, []string{w1.ID}) {
		t.Errorf("rebind: got %+v, want web-01 already bound", res)
	}
	if got := len(f.pending(store.TargetAgent, w1.ID)); got != 1 {
		t.Errorf("rebind queued again: got %d commands, want 1", got)
	}
}

func TestUnbindKeepsAgent(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	w1, w2, w3 := f.enrol(key, "web-01"), f.enrol(key, "web-02"), f.enrol(key, "web-03")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01", "web-02"}); err != nil {
		t.Fatal(err)
	}
	t.Run("host not in the cluster", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.Unbind(f.ctx, c.ID, []string{"web-01", "web-03"}, false)
		wantCode(t, err, store.EInvalid)
		f.unchanged(before)
	})
	t.Run("one host", func(t *testing.T) {
		ids, err := f.db.Unbind(f.ctx, c.ID, []string{"web-01"}, false)
		if err != nil || !slices.Equal(ids, []string{w1.ID}) {
			t.Fatalf("got %v %v, want [%s]", ids, err, w1.ID)
		}
	})
	t.Run("all", func(t *testing.T) {
		ids, err := f.db.Unbind(f.ctx, c.ID, nil, true)
		if err != nil || !slices.Equal(ids, []string{w2.ID}) {
			t.Fatalf("got %v %v, want [%s]", ids, err, w2.ID)
		}
	})
	for _, ag := range []store.Agent{w1, w2} {
		got, err := f.db.GetAgent(f.ctx, ag.ID)
		if err != nil {
			t.Fatalf("%s: got %v, want the agent kept", ag.Hostname, err)
		}
		if got.ClusterID != 0 || got.Cluster != "" {
			t.Errorf("%s: got cluster %d %q, want direct", ag.Hostname, got.ClusterID, got.Cluster)
		}
		if want := []string{"bind", "unbind"}; !slices.Equal(commandTypes(f.pending(store.TargetAgent, ag.ID)), want) {
			t.Errorf("%s: got %v, want %v", ag.Hostname, commandTypes(f.pending(store.TargetAgent, ag.ID)), want)
		}
	}
	if cmds := f.pending(store.TargetAgent, w3.ID); len(cmds) != 0 {
		t.Errorf("web-03: got %v, want none", commandTypes(cmds))
	}
	if got := f.getCluster(c.ID).Agents; got != 0 {
		t.Errorf("cluster agents: got %d, want 0", got)
	}
}

func TestInstallEnrolmentPacing(t *testing.T) {
	t.Parallel() // slow under -race: let the quick tests run alongside
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	ic := f.installCmd(store.InstallInput{AccountID: a.ID, ClusterID: c.ID})
	for i := range store.BindBatchMax {
		if _, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: ic.Key, Host: host(fmt.Sprintf("h-%03d", i), fmt.Sprintf("fp-%03d", i))}); err != nil {
			t.Fatalf("enrolment %d: %v", i+1, err)
		}
	}
	f.clock.Advance(15 * time.Second)
	before := f.dump()
	_, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: ic.Key, Host: host("h-500", "fp-500")})
	if wantCode(t, err, store.ELimit) {
		if got := retryAfter(err); got != 45*time.Second {
			t.Errorf("got RetryAfter %v, want 45s", got)
		}
	}
	f.unchanged(before)
	f.clock.Advance(45 * time.Second)
	if _, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: ic.Key, Host: host("h-500", "fp-500")}); err != nil {
		t.Errorf("after the gap: got %v, want nil", err)
	}
	if got := f.getCluster(c.ID).Agents; got != store.BindBatchMax+1 {
		t.Errorf("cluster agents: got %d, want %d", got, store.BindBatchMax+1)
	}
}

// --- install commands (rule 5) ---

func TestEnrolInstallCommandRefusals(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	expiring := f.installCmd(store.InstallInput{AccountID: a.ID, ClusterID: c.ID, TTL: time.Hour})
	revoked := f.installCmd(store.InstallInput{AccountID: a.ID})
	windows := f.installCmd(store.InstallInput{AccountID: a.ID, OS: "windows"})
	if err := f.db.RevokeInstallCommand(f.ctx, a.ID, revoked.ID); err != nil {
		t.Fatal(err)
	}
	// Usable right up to the expiry.
	f.clock.Advance(59 * time.Minute)
	f.enrol(expiring.Key, "early")
	f.clock.Advance(time.Minute)

	tests := []struct {
		name string
		key  string
		os   string
		code string
	}{
		{"expired", expiring.Key, "linux", store.EForbidden},
		{"revoked", revoked.Key, "linux", store.EForbidden},
		{"unknown key", "ik_0000000000", "linux", store.EUnauthorized},
		{"empty key", "", "linux", store.EUnauthorized},
		{"os mismatch", windows.Key, "linux", store.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			agentsBefore := f.count("agents")
			h := host("late", "fp-late")
			h.OS = tt.os
			_, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: tt.key, Host: h})
			wantCode(t, err, tt.code)
			f.unchanged(before)
			if got := f.count("agents"); got != agentsBefore {
				t.Errorf("agents: got %d, want %d", got, agentsBefore)
			}
		})
	}
	ics, err := f.db.ListInstallCommands(f.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ic := range ics {
		want := 0
		if ic.ID == expiring.ID {
			want = 1
			if !ic.Expired {
				t.Errorf("install command %d: got Expired false, want true", ic.ID)
			}
		}
		if ic.Uses != want {
			t.Errorf("install command %d: got %d uses, want %d", ic.ID, ic.Uses, want)
		}
		if ic.ID == revoked.ID && !ic.Revoked {
			t.Errorf("install command %d: got Revoked false, want true", ic.ID)
		}
	}
	t.Run("revoke twice", func(t *testing.T) {
		before := f.dump()
		wantCode(t, f.db.RevokeInstallCommand(f.ctx, a.ID, revoked.ID), store.EConflict)
		f.unchanged(before)
	})
}

func TestEnrolAppliesInstallCommand(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	f.proxy(c.ID, "relay-1", "1.0.0")
	ic := f.installCmd(store.InstallInput{AccountID: a.ID, ClusterID: c.ID, OS: "windows", Group: "finance", Provider: "腾讯云", ImageMode: true})
	if ic.Key == "" || !strings.HasPrefix(ic.Key, ic.KeyPrefix) || ic.Cluster != "edge" {
		t.Fatalf("got %+v, want the key shown once with its prefix, for cluster edge", ic)
	}
	for i, name := range []string{"win-01", "win-02"} {
		h := host(name, "fp-"+name)
		h.OS, h.Group, h.Provider = "windows", "ignored", "ignored"
		e, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: ic.Key, Host: h})
		if err != nil {
			t.Fatalf("Enrol %s: %v", name, err)
		}
		ag := e.Agent
		if ag.Group != "finance" || ag.Provider != "腾讯云" || ag.ClusterID != c.ID || ag.AccountID != a.ID || ag.OS != "windows" {
			t.Errorf("%s: got group %q provider %q cluster %d account %d os %s, want finance 腾讯云 %d %d windows",
				name, ag.Group, ag.Provider, ag.ClusterID, ag.AccountID, ag.OS, c.ID, a.ID)
		}
		if !e.ImageMode || !slices.Equal(e.Proxies, []string{"https://relay.acme.example:8443", "https://relay-1:8443"}) || e.Secret == "" {
			t.Errorf("%s: got image %v proxies %v, want image mode and the cluster's proxy", name, e.ImageMode, e.Proxies)
		}
		ics, err := f.db.ListInstallCommands(f.ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ics) != 1 || ics[0].Uses != i+1 || !ics[0].ImageMode || ics[0].Key != "" {
			t.Errorf("after %s: got %+v, want 1 command with %d uses, image mode, no key", name, ics, i+1)
		}
	}
	t.Run("bad install input", func(t *testing.T) {
		for _, in := range []store.InstallInput{{AccountID: a.ID, OS: "plan9"}, {AccountID: a.ID, TTL: -time.Hour}} {
			before := f.dump()
			_, err := f.db.CreateInstallCommand(f.ctx, in)
			wantCode(t, err, store.EInvalid)
			f.unchanged(before)
		}
	})
}

func TestEnrolCrossAccount(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	b, keyB := f.account("globex")
	ca := f.cluster(a.ID, "edge", "relay.acme.example")
	pa := f.proxy(ca.ID, "relay-a", "1.0.0")
	icB := f.installCmd(store.InstallInput{AccountID: b.ID})

	for _, tt := range []struct{ name, key string }{{"install key of B", icB.Key}, {"verification key of B", keyB}} {
		t.Run(tt.name+" through A's proxy", func(t *testing.T) {
			before := f.dump()
			_, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: tt.key, Host: host("intruder", "fp-x"), ViaProxyID: pa.ID})
			wantCode(t, err, store.EForbidden)
			f.unchanged(before)
		})
	}
	t.Run("install command for A's cluster in B", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.CreateInstallCommand(f.ctx, store.InstallInput{AccountID: b.ID, ClusterID: ca.ID})
		wantCode(t, err, store.EForbidden)
		f.unchanged(before)
	})
	t.Run("unregistered proxy", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: keyB, Host: host("intruder", "fp-x"), ViaProxyID: 999})
		wantCode(t, err, store.EForbidden)
		f.unchanged(before)
	})
	t.Run("own account through own proxy", func(t *testing.T) {
		icA := f.installCmd(store.InstallInput{AccountID: a.ID, ClusterID: ca.ID})
		e, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: icA.Key, Host: host("web-01", "fp-1"), ViaProxyID: pa.ID})
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		if e.Agent.ViaProxyID != pa.ID {
			t.Errorf("got via %d, want %d", e.Agent.ViaProxyID, pa.ID)
		}
	})
	t.Run("quick deploy onto another account's asset", func(t *testing.T) {
		bAgent := f.enrol(keyB, "globex-01")
		before := f.dump()
		_, err := f.db.CreateJoinToken(f.ctx, ca.ID, store.DeployQuick, bAgent.ID, 0)
		wantCode(t, err, store.EForbidden)
		f.unchanged(before)
	})
}

// --- uninstall (rule 10) ---

func TestUninstallOnlyOnline(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	ag := f.enrol(key, "web-01")
	f.clock.Advance(f.db.Settings().OfflineAfter)
	before := f.dump()
	_, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"})
	wantCode(t, err, store.EConflict)
	f.unchanged(before)
	if cmds := f.pending(store.TargetAgent, ag.ID); len(cmds) != 0 {
		t.Errorf("got %v, want no command", commandTypes(cmds))
	}
}

func TestUninstallGrace(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	ag := f.enrol(key, "web-01")
	ids, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"})
	if err != nil || !slices.Equal(ids, []string{ag.ID}) {
		t.Fatalf("got %v %v, want [%s]", ids, err, ag.ID)
	}
	if got := commandTypes(f.pending(store.TargetAgent, ag.ID)); !slices.Equal(got, []string{"uninstall"}) {
		t.Errorf("got %v, want [uninstall]", got)
	}
	t.Run("twice", func(t *testing.T) {
		before := f.dump()
		_, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01"})
		wantCode(t, err, store.EConflict)
		f.unchanged(before)
	})
	grace := f.db.Settings().UninstallGrace
	if grace != 6*time.Hour {
		t.Errorf("UninstallGrace: got %v, want 6h", grace)
	}
	for _, tt := range []struct {
		name    string
		advance time.Duration
		want    string
	}{
		{"right after", 0, store.Protected},
		{"5h59m", grace - time.Minute, store.Protected},
		// Still checking in and never acknowledging: the agent runs, so it
		// is neither uninstalled nor Unprotected (TestUninstalledStatus).
		{"6h", time.Minute, store.Protected},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(tt.advance)
			if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
				t.Fatal(err)
			}
			if got := f.agent(ag.ID); got.SecurityStatus != tt.want || !got.Online {
				t.Errorf("got %s online=%v, want %s online", got.SecurityStatus, got.Online, tt.want)
			}
		})
	}
}

// An uninstalled agent is never shown online or Protected: at once when it
// acknowledged the command, after the grace when it was not heard of since
// the request. Counts and filters agree with the agent's own status.
func TestUninstalledStatus(t *testing.T) {
	grace := store.DefaultSettings().UninstallGrace
	tests := []struct {
		name        string
		ack         bool          // the agent acknowledges the uninstall command
		fail        string        // or reports that it failed, with this reason
		advance     time.Duration // then the clock moves on
		checkinLate bool          // and the agent checks in again
		wantStatus  string
		wantSec     string
	}{
		{name: "acknowledged", ack: true, wantStatus: store.StatusUninstalled, wantSec: store.Unprotected},
		{name: "acknowledged, an hour later", ack: true, advance: time.Hour, wantStatus: store.StatusUninstalled, wantSec: store.Unprotected},
		{name: "pending within the grace", advance: grace - time.Minute, wantStatus: store.StatusOnline, wantSec: store.Protected},
		{name: "not heard of since, grace passed", advance: grace, wantStatus: store.StatusUninstalled, wantSec: store.Unprotected},
		{name: "still checking in after the grace", advance: grace, checkinLate: true, wantStatus: store.StatusOnline, wantSec: store.Protected},
		{name: "failed: the agent still runs", fail: "permission denied", wantStatus: store.StatusOnline, wantSec: store.Protected},
		{name: "failed, then silent past the grace", fail: "permission denied", advance: grace, wantStatus: store.StatusOnline, wantSec: store.Protected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			ag := f.enrol(key, "web-01")
			if _, err := f.db.Bind(f.ctx, c.ID, []string{ag.ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.db.Uninstall(f.ctx, a.ID, []string{ag.ID}); err != nil {
				t.Fatal(err)
			}
			ackAt := f.clock.Now()
			if tt.ack {
				var ids []int64
				for _, cmd := range f.pending(store.TargetAgent, ag.ID) {
					ids = append(ids, cmd.ID)
				}
				f.clock.Advance(time.Second) // the ack arrives a moment later
				ackAt = f.clock.Now()
				if err := f.db.AckCommands(f.ctx, store.TargetAgent, ag.ID, ids); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fail != "" {
				cmds := f.pending(store.TargetAgent, ag.ID)
				f.clock.Advance(time.Second)
				// The failure arrives with a check-in, as the relay records it.
				if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
					t.Fatal(err)
				}
				if err := f.db.ReportCommands(f.ctx, store.TargetAgent, ag.ID, []store.CommandReport{
					{ID: cmds[len(cmds)-1].ID, State: store.CommandFailed, Error: tt.fail}}); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(tt.advance)
			if tt.checkinLate {
				if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
					t.Fatal(err)
				}
			}
			got := f.agent(ag.ID)
			online := tt.wantStatus == store.StatusOnline
			if got.Status != tt.wantStatus || got.SecurityStatus != tt.wantSec || got.Online != online || got.Uninstalled == online {
				t.Errorf("got status %s %s online=%v uninstalled=%v, want %s %s online=%v", got.Status, got.SecurityStatus, got.Online,
					got.Uninstalled, tt.wantStatus, tt.wantSec, online)
			}
			if got.Connected && !online {
				t.Errorf("got connected=true for a %s agent", got.Status)
			}
			if tt.ack && !got.UninstalledAt.Equal(ackAt) {
				t.Errorf("UninstalledAt: got %v, want %v", got.UninstalledAt, ackAt)
			}
			if want := "failed: " + tt.fail; tt.fail != "" && got.UninstallState != want {
				t.Errorf("UninstallState: got %q, want %q", got.UninstallState, want)
			}
			wantN := 0
			if online {
				wantN = 1
			}
			if cl := f.getCluster(c.ID); cl.AgentsOnline != wantN {
				t.Errorf("cluster AgentsOnline: got %d, want %d", cl.AgentsOnline, wantN)
			}
			if n, err := f.db.CountAgents(f.ctx, a.ID); err != nil || n.Online != wantN {
				t.Errorf("CountAgents.Online: got %d (%v), want %d", n.Online, err, wantN)
			}
			for _, st := range []string{store.StatusOnline, store.StatusOffline, store.StatusUninstalled} {
				page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Status: st})
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if st == tt.wantStatus || (st == store.StatusOffline && tt.wantStatus == store.StatusUninstalled) {
					want = 1
				}
				if page.Total != want {
					t.Errorf("ListAgents(status %s): got %d, want %d", st, page.Total, want)
				}
			}
		})
	}
}

// --- listing (rule 12) ---

// listFixture: account acme with clusters edge and core, and one agent of
// globex that no acme filter may show.
func listFixture(t *testing.T) (*fixture, store.Account, store.Cluster, store.Cluster) {
	f := newFixture(t)
	a, _ := f.account("acme")
	b, _ := f.account("globex")
	edge := f.cluster(a.ID, "edge", "relay.acme.example")
	core := f.cluster(a.ID, "core", "10.0.0.5")
	now := t0.Add(24 * time.Hour)
	old := now.Add(-13 * time.Hour)
	seeds := []agentSeed{
		{ID: "ag_1", AccountID: a.ID, ClusterID: edge.ID, Hostname: "web-01", IPs: "10.1.0.1", LastCheckin: now.Add(-time.Minute)},
		{ID: "ag_2", AccountID: a.ID, ClusterID: edge.ID, Hostname: "web-02", IPs: "10.1.0.2", LastCheckin: old},
		{ID: "ag_3", AccountID: a.ID, Hostname: "db-01", IPs: "10.1.0.3,172.16.0.3", LastCheckin: now.Add(-2 * time.Minute), Vulns: 3},
		{ID: "ag_4", AccountID: a.ID, ClusterID: core.ID, Hostname: "腾讯云-web-01", IPs: "10.2.0.1", LastCheckin: now.Add(-3 * time.Minute), OS: "windows"},
		{ID: "ag_5", AccountID: a.ID, Hostname: "腾讯云-db-02", IPs: "10.2.0.2", LastCheckin: old.Add(-time.Hour), DupFP: "fp-clone"},
		{ID: "ag_6", AccountID: a.ID, Hostname: "web_03", IPs: "10.1.0.4", LastCheckin: now.Add(-4 * time.Minute)},
		{ID: "ag_9", AccountID: b.ID, Hostname: "web-01", IPs: "10.9.0.1", LastCheckin: now},
	}
	if err := insertAgents(f.raw(), seeds); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(24 * time.Hour)
	return f, a, edge, core
}

func TestListAgentsFilters(t *testing.T) {
	f, a, edge, core := listFixture(t)
	tests := []struct {
		name   string
		filter store.AgentFilter
		want   []string
	}{
		{"account", store.AgentFilter{}, []string{"db-01", "web-01", "web-02", "web_03", "腾讯云-db-02", "腾讯云-web-01"}},
		{"cluster edge", store.AgentFilter{ClusterID: edge.ID}, []string{"web-01", "web-02"}},
		{"cluster core", store.AgentFilter{ClusterID: core.ID}, []string{"腾讯云-web-01"}},
		{"direct", store.AgentFilter{ClusterID: -1}, []string{"db-01", "web_03", "腾讯云-db-02"}},
		{"online", store.AgentFilter{Status: store.StatusOnline}, []string{"db-01", "web-01", "web_03", "腾讯云-web-01"}},
		{"offline", store.AgentFilter{Status: store.StatusOffline}, []string{"web-02", "腾讯云-db-02"}},
		{"cluster and online", store.AgentFilter{ClusterID: edge.ID, Status: store.StatusOnline}, []string{"web-01"}},
		{"query substring", store.AgentFilter{Query: "web-0"}, []string{"web-01", "web-02", "腾讯云-web-01"}},
		{"query CJK", store.AgentFilter{Query: "腾讯云"}, []string{"腾讯云-db-02", "腾讯云-web-01"}},
		{"query CJK full name", store.AgentFilter{Query: "腾讯云-web-01"}, []string{"腾讯云-web-01"}},
		{"query case-insensitive ASCII", store.AgentFilter{Query: "DB-0"}, []string{"db-01", "腾讯云-db-02"}},
		{"query IP", store.AgentFilter{Query: "172.16.0.3"}, []string{"db-01"}},
		{"query id", store.AgentFilter{Query: "ag_4"}, []string{"腾讯云-web-01"}},
		{"query underscore is literal", store.AgentFilter{Query: "web_0"}, []string{"web_03"}},
		{"query percent is literal", store.AgentFilter{Query: "%"}, nil},
		{"query no match", store.AgentFilter{Query: "mail"}, nil},
		{"duplicate", store.AgentFilter{Duplicate: true}, []string{"腾讯云-db-02"}},
		{"at risk", store.AgentFilter{AtRisk: true}, []string{"db-01"}},
		{"os", store.AgentFilter{OS: "windows"}, []string{"腾讯云-web-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.AccountID = a.ID
			page, err := f.db.ListAgents(f.ctx, tt.filter)
			if err != nil {
				t.Fatalf("ListAgents: %v", err)
			}
			if got := hostnames(page.Agents); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if page.Total != len(tt.want) {
				t.Errorf("Total: got %d, want %d", page.Total, len(tt.want))
			}
		})
	}
	t.Run("all accounts", func(t *testing.T) {
		page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Query: "web-01"})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 3 {
			t.Errorf("got %d, want 3 (both accounts)", page.Total)
		}
	})
	t.Run("derived fields", func(t *testing.T) {
		page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Query: "db-01"})
		if err != nil || len(page.Agents) != 1 {
			t.Fatalf("got %v %v", page, err)
		}
		ag := page.Agents[0]
		if ag.RiskStatus != "At risk" || !ag.Online || ag.SecurityStatus != store.Protected || !slices.Equal(ag.IPs, []string{"10.1.0.3", "172.16.0.3"}) {
			t.Errorf("got risk %q online %v %s ips %v", ag.RiskStatus, ag.Online, ag.SecurityStatus, ag.IPs)
		}
	})
}

func TestListAgentsSort(t *testing.T) {
	f, a, _, _ := listFixture(t)
	tests := []struct {
		sort string
		desc bool
		want []string
	}{
		{"", false, []string{"db-01", "web-01", "web-02", "web_03", "腾讯云-db-02", "腾讯云-web-01"}},
		{"hostname", false, []string{"db-01", "web-01", "web-02", "web_03", "腾讯云-db-02", "腾讯云-web-01"}},
		{"hostname", true, []string{"腾讯云-web-01", "腾讯云-db-02", "web_03", "web-02", "web-01", "db-01"}},
		{"last_checkin", false, []string{"腾讯云-db-02", "web-02", "web_03", "腾讯云-web-01", "db-01", "web-01"}},
		{"last_checkin", true, []string{"web-01", "db-01", "腾讯云-web-01", "web_03", "web-02", "腾讯云-db-02"}},
		{"risk", true, []string{"db-01", "web_03", "腾讯云-db-02", "腾讯云-web-01", "web-02", "web-01"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s desc=%v", tt.sort, tt.desc), func(t *testing.T) {
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Sort: tt.sort, Desc: tt.desc})
			if err != nil {
				t.Fatal(err)
			}
			if got := hostnames(page.Agents); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestListAgentsBadArguments(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		filter store.AgentFilter
	}{
		{"sort", store.AgentFilter{Sort: "name"}},
		{"sort injection", store.AgentFilter{Sort: "hostname; DROP TABLE agents"}},
		{"status", store.AgentFilter{Status: "gone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.db.ListAgents(f.ctx, tt.filter)
			wantCode(t, err, store.EInvalid)
		})
	}
}

func TestListAgentsPaging(t *testing.T) {
	t.Parallel() // slow under -race: let the quick tests run alongside
	f := newFixture(t)
	a, _ := f.account("acme")
	f.seedAgents(a.ID, 0, "host", 1234, t0)
	var all []string
	for off := 0; ; off += 500 {
		page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Limit: 500, Offset: off})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 1234 {
			t.Errorf("offset %d: got Total %d, want 1234", off, page.Total)
		}
		if len(page.Agents) == 0 {
			break
		}
		all = append(all, hostnames(page.Agents)...)
	}
	if len(all) != 1234 || !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != 1234 {
		t.Errorf("got %d hosts (sorted %v), want 1234 distinct in order", len(all), slices.IsSorted(all))
	}
	for _, tt := range []struct {
		name          string
		limit, offset int
		wantLen       int
		wantFirst     string
	}{
		{"default limit", 0, 0, 50, "host-00000"},
		{"second page", 50, 50, 50, "host-00050"},
		{"last partial page", 50, 1200, 34, "host-01200"},
		{"past the end", 50, 5000, 0, ""},
		{"limit capped at 1000", 5000, 0, 1000, "host-00000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Limit: tt.limit, Offset: tt.offset})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Agents) != tt.wantLen || page.Total != 1234 {
				t.Fatalf("got %d rows of %d, want %d of 1234", len(page.Agents), page.Total, tt.wantLen)
			}
			if tt.wantLen > 0 && page.Agents[0].Hostname != tt.wantFirst {
				t.Errorf("got first %q, want %q", page.Agents[0].Hostname, tt.wantFirst)
			}
		})
	}
}

func TestCountAgents(t *testing.T) {
	f, a, _, _ := listFixture(t)
	tests := []struct {
		name    string
		account int64
		want    store.AgentCounts
	}{
		{"acme", a.ID, store.AgentCounts{Total: 6, Online: 4, Direct: 3, Duplicates: 1, AtRisk: 1}},
		{"all accounts", 0, store.AgentCounts{Total: 7, Online: 5, Connected: 1, Direct: 4, Duplicates: 1, AtRisk: 1}},
		{"unknown account", 999, store.AgentCounts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.db.CountAgents(f.ctx, tt.account)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFindAgent(t *testing.T) {
	f, a, _, _ := listFixture(t)
	for _, tt := range []struct {
		host string
		want string
		code string
	}{
		{"db-01", "ag_3", ""},
		{"ag_3", "ag_3", ""},
		{"172.16.0.3", "ag_3", ""},
		{"10.9.0.1", "", store.EForbidden},
		{"nope", "", store.ENotFound},
		{"", "", store.EInvalid},
	} {
		t.Run(quoteName(tt.host), func(t *testing.T) {
			got, err := f.db.FindAgent(f.ctx, a.ID, tt.host)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil || got.ID != tt.want {
				t.Errorf("got %q %v, want %q", got.ID, err, tt.want)
			}
		})
	}
}

// TestSearchIndexFollowsRenames: the trigram index behind --query follows a
// host name reported in a check-in, and short queries still match by LIKE.
func TestSearchIndexFollowsRenames(t *testing.T) {
	f := newFixture(t)
	_, key := f.account("acme")
	g := f.enrol(key, "阿里云-old-07")
	h := store.HostFacts{Hostname: "web-renamed-07", IPs: []string{"10.9.8.7"}, Fingerprint: g.Fingerprint}
	if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: g.ID, Fingerprint: g.Fingerprint, Host: &h}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"renamed", 1}, {"阿里云", 0}, {"old-07", 0}, {"9.8.7", 1}, {"07", 1}, {"云", 0},
	} {
		t.Run(tt.query, func(t *testing.T) {
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Query: tt.query})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != tt.want {
				t.Errorf("query %q: got %d agents, want %d", tt.query, page.Total, tt.want)
			}
		})
	}
}

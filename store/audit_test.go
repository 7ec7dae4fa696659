package store_test

import (
	"context"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// Every operator change writes exactly one audit entry naming the actor;
// the steps run in order on one database, each with its own setup outside
// the measured window.
func TestAuditOneEntryPerChange(t *testing.T) {
	f := newFixture(t)
	ctx := store.WithActor(context.Background(), "alice")
	var (
		acct    store.Account
		key     string
		cluster store.Cluster
		ic      store.InstallCommand
		proxy   store.Proxy
		agent   store.Agent
	)
	steps := []struct {
		name   string
		setup  func()
		change func() error
		action string
		target string
	}{
		{name: "CreateAccount", action: "account.create", target: "account/acme", change: func() (err error) {
			acct, key, err = f.db.CreateAccount(ctx, "acme")
			return err
		}},
		{name: "CreateCluster", action: "cluster.create", target: "cluster/acme/edge", change: func() (err error) {
			cluster, err = f.db.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: "edge", Address: "relay.acme.example"})
			return err
		}},
		{name: "SetPolicy", action: "cluster.policy", target: "cluster/acme/edge", change: func() error {
			_, err := f.db.SetPolicy(ctx, cluster.ID, store.Policy{Mode: wire.ModeCache})
			return err
		}},
		{name: "CreateInstallCommand", action: "installcmd.create", target: "installcmd/acme/1", change: func() (err error) {
			ic, err = f.db.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID, ClusterID: cluster.ID})
			return err
		}},
		{name: "RevokeInstallCommand", action: "installcmd.revoke", target: "installcmd/acme/1", change: func() error {
			return f.db.RevokeInstallCommand(ctx, acct.ID, ic.ID)
		}},
		{name: "CreateJoinToken", action: "proxy.deploy", target: "cluster/acme/edge", change: func() error {
			_, err := f.db.CreateJoinToken(ctx, cluster.ID, store.DeployManual, "", 0)
			return err
		}},
		{name: "UpgradeProxy", action: "proxy.upgrade", target: "proxy/acme/1",
			setup: func() {
				proxy = f.proxy(cluster.ID, "relay-1", "1.0.0")
				f.publish("1.1.0")
			},
			change: func() error {
				_, err := f.db.UpgradeProxy(ctx, proxy.ID)
				return err
			}},
		{name: "Bind", action: "agent.bind", target: "cluster/acme/edge",
			setup: func() { agent = f.enrol(key, "web-01") },
			change: func() error {
				_, err := f.db.Bind(ctx, cluster.ID, []string{"web-01"})
				return err
			}},
		{name: "Uninstall", action: "agent.uninstall", target: "agents/acme", change: func() error {
			_, err := f.db.Uninstall(ctx, acct.ID, []string{agent.ID})
			return err
		}},
		{name: "Unbind", action: "agent.unbind", target: "cluster/acme/edge", change: func() error {
			_, err := f.db.Unbind(ctx, cluster.ID, nil, true)
			return err
		}},
		{name: "DeleteProxy", action: "proxy.delete", target: "proxy/acme/1",
			setup:  func() { f.clock.Advance(f.db.Settings().ProxyOfflineAfter + time.Second) },
			change: func() error { return f.db.DeleteProxy(ctx, proxy.ID) }},
		{name: "DeleteCluster", action: "cluster.delete", target: "cluster/acme/edge", change: func() error {
			return f.db.DeleteCluster(ctx, cluster.ID)
		}},
		{name: "SetSettings", action: "settings.set", target: "settings", change: func() error {
			s := store.DefaultSettings()
			s.OfflineAfter = 24 * time.Hour
			return f.db.SetSettings(ctx, s)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.setup != nil {
				st.setup()
			}
			before := f.audits()
			if err := st.change(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			after := f.audits()
			if len(after) != len(before)+1 {
				t.Fatalf("got %d new audit entries, want 1", len(after)-len(before))
			}
			e := after[0] // newest first
			if e.Actor != "alice" || e.Action != st.action || (st.target != "" && e.Target != st.target) {
				t.Errorf("got %s %s %s, want alice %s %s", e.Actor, e.Action, e.Target, st.action, st.target)
			}
			if !e.At.Equal(f.clock.Now()) {
				t.Errorf("At: got %v, want %v", e.At, f.clock.Now())
			}
		})
	}
}

func TestAuditDefaultActor(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.db.CreateAccount(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	if es := f.audits(); len(es) != 1 || es[0].Actor != "system" {
		t.Errorf("got %+v, want one entry by system", es)
	}
}

// A refused change writes no audit entry (and nothing else).
func TestAuditRefusedWritesNone(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	b, _ := f.account("globex")
	c := f.cluster(a.ID, "edge", "10.0.0.5")
	p := f.proxy(c.ID, "relay-1", "1.0.0")
	ic := f.installCmd(store.InstallInput{AccountID: a.ID})
	if err := f.db.RevokeInstallCommand(f.ctx, a.ID, ic.ID); err != nil {
		t.Fatal(err)
	}
	f.enrol(key, "web-01")
	f.enrol(key, "web-02")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second)

	for _, tt := range []struct {
		name   string
		change func() error
	}{
		{"CreateAccount duplicate", func() error { _, _, err := f.db.CreateAccount(f.ctx, "acme"); return err }},
		{"CreateCluster duplicate", func() error {
			_, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: a.ID, Name: "edge", Address: "10.0.0.6"})
			return err
		}},
		{"SetPolicy 20GB", func() error {
			_, err := f.db.SetPolicy(f.ctx, c.ID, store.Policy{Mode: wire.ModeCache, CacheMax: 20000000000})
			return err
		}},
		{"DeleteCluster not empty", func() error { return f.db.DeleteCluster(f.ctx, c.ID) }},
		{"CreateInstallCommand foreign cluster", func() error {
			_, err := f.db.CreateInstallCommand(f.ctx, store.InstallInput{AccountID: b.ID, ClusterID: c.ID})
			return err
		}},
		{"RevokeInstallCommand again", func() error { return f.db.RevokeInstallCommand(f.ctx, a.ID, ic.ID) }},
		{"Bind within the gap", func() error { _, err := f.db.Bind(f.ctx, c.ID, []string{"web-02"}); return err }},
		{"Unbind host not bound", func() error { _, err := f.db.Unbind(f.ctx, c.ID, []string{"web-02"}, false); return err }},
		{"Uninstall unknown", func() error { _, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-01", "nope"}); return err }},
		{"CreateJoinToken second proxy of IP cluster", func() error {
			_, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", 0)
			return err
		}},
		{"DeleteProxy online", func() error { return f.db.DeleteProxy(f.ctx, p.ID) }},
		{"UpgradeProxy without release", func() error { _, err := f.db.UpgradeProxy(f.ctx, p.ID); return err }},
		{"SetSettings invalid", func() error { return f.db.SetSettings(f.ctx, store.Settings{}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			n := len(f.audits())
			err := tt.change()
			if err == nil {
				t.Fatalf("got nil, want a refusal")
			}
			if got := len(f.audits()); got != n {
				t.Errorf("got %d audit entries, want %d", got, n)
			}
			f.unchanged(before)
		})
	}
}

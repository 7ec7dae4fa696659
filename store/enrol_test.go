package store_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

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
		os   wire.OS
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

package store_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

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
		if want := []wire.CommandType{wire.CmdBind, wire.CmdUnbind}; !slices.Equal(commandTypes(f.pending(store.TargetAgent, ag.ID)), want) {
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
	if got := commandTypes(f.pending(store.TargetAgent, ag.ID)); !slices.Equal(got, []wire.CommandType{wire.CmdUninstall}) {
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
		want    store.Security
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

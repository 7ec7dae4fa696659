package store_test

import (
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// Online keeps the seed's 12 h rule; beside it "connected now" follows the
// long poll (PollTimeout + ConnectedMargin) and Via names the relay of the
// last check-in. The cluster counts both.
func TestAgentConnectedNow(t *testing.T) {
	window := store.DefaultSettings().ConnectedWindow()
	if got, want := window, 45*time.Second; got != want {
		t.Fatalf("ConnectedWindow: got %v, want %v (poll timeout 30 s + 15 s)", got, want)
	}
	tests := []struct {
		name          string
		viaProxy      bool
		age           time.Duration
		wantConnected bool
		wantOnline    bool
	}{
		{name: "through a relay, just now", viaProxy: true, age: 0, wantConnected: true, wantOnline: true},
		{name: "through a relay, inside the window", viaProxy: true, age: window - time.Millisecond, wantConnected: true, wantOnline: true},
		{name: "relay stopped: online, not connected", viaProxy: true, age: window, wantConnected: false, wantOnline: true},
		{name: "direct, just now", age: time.Second, wantConnected: true, wantOnline: true},
		{name: "silent 12 h: neither", viaProxy: true, age: 12 * time.Hour, wantConnected: false, wantOnline: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			p := f.proxy(c.ID, "edge-2", "1.0.0")
			ag := f.enrol(key, "web-01")
			if _, err := f.db.Bind(f.ctx, c.ID, []string{ag.ID}); err != nil {
				t.Fatal(err)
			}
			ci := store.Checkin{AgentID: ag.ID, Fingerprint: ag.Fingerprint}
			wantVia := store.ViaDirect
			if tt.viaProxy {
				ci.ViaProxyID, wantVia = p.ID, "edge-2"
			}
			if err := f.db.RecordCheckins(f.ctx, []store.Checkin{ci}); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(tt.age)
			got := f.agent(ag.ID)
			if got.Connected != tt.wantConnected || got.Online != tt.wantOnline || got.Via != wantVia {
				t.Errorf("got connected=%v online=%v via %q, want connected=%v online=%v via %q",
					got.Connected, got.Online, got.Via, tt.wantConnected, tt.wantOnline, wantVia)
			}
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{ClusterID: c.ID})
			if err != nil || len(page.Agents) != 1 || page.Agents[0].Connected != tt.wantConnected || page.Agents[0].Via != wantVia {
				t.Errorf("ListAgents: got %+v (%v), want one agent connected=%v via %q", page.Agents, err, tt.wantConnected, wantVia)
			}
			b2i := map[bool]int{true: 1}
			cl := f.getCluster(c.ID)
			if cl.AgentsConnected != b2i[tt.wantConnected] || cl.AgentsOnline != b2i[tt.wantOnline] {
				t.Errorf("cluster: got %d online, %d connected now, want %d, %d", cl.AgentsOnline, cl.AgentsConnected,
					b2i[tt.wantOnline], b2i[tt.wantConnected])
			}
			if n, err := f.db.CountAgents(f.ctx, a.ID); err != nil || n.Connected != b2i[tt.wantConnected] {
				t.Errorf("CountAgents.Connected: got %d (%v), want %d", n.Connected, err, b2i[tt.wantConnected])
			}
		})
	}
}

// A quick-deployed proxy is Protected only while its host's agent is:
// uninstalled or offline means proxy only.
func TestQuickProxyProtectedFollowsAgent(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fixture, acct store.Account, ag store.Agent)
		want   bool
		text   string // SecurityText
	}{
		{name: "agent running", change: func(*fixture, store.Account, store.Agent) {}, want: true, text: "Protected"},
		{name: "agent uninstalled", want: false, text: "proxy only (agent uninstalled)", change: func(f *fixture, acct store.Account, ag store.Agent) {
			if _, err := f.db.Uninstall(f.ctx, acct.ID, []string{ag.ID}); err != nil {
				f.t.Fatal(err)
			}
			var ids []int64
			for _, c := range f.pending(store.TargetAgent, ag.ID) {
				ids = append(ids, c.ID)
			}
			if err := f.db.AckCommands(f.ctx, store.TargetAgent, ag.ID, ids); err != nil {
				f.t.Fatal(err)
			}
		}},
		{name: "agent offline", want: false, text: "proxy only (agent offline)", change: func(f *fixture, _ store.Account, ag store.Agent) {
			f.clock.Advance(f.db.Settings().OfflineAfter)
			// The relay itself is still heartbeating.
			ps, _ := f.db.ListProxies(f.ctx, 0)
			if err := f.db.Heartbeat(f.ctx, ps[0].ID, "1.0.0", 0, 0); err != nil {
				f.t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			ag := f.enrol(key, "linux-01")
			jt, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployQuick, ag.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			token, err := f.db.IssueJoinToken(f.ctx, jt.ID)
			if err != nil {
				t.Fatal(err)
			}
			p, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: token, Hostname: "linux-01"})
			if err != nil {
				t.Fatal(err)
			}
			tt.change(f, a, ag)
			got, err := f.db.GetProxy(f.ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Protected != tt.want || got.SecurityText() != tt.text {
				t.Errorf("GetProxy: got protected=%v %q, want %v %q", got.Protected, got.SecurityText(), tt.want, tt.text)
			}
			ps, err := f.db.ListProxies(f.ctx, c.ID)
			if err != nil || len(ps) != 1 || ps[0].Protected != tt.want {
				t.Errorf("ListProxies: got %+v (%v), want protected=%v", ps, err, tt.want)
			}
		})
	}
}

// Bound agents with every proxy server stopped is "proxy down", not a
// capacity problem; the cluster's warnings say so.
func TestClusterProxyDownWarning(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	f.proxy(c.ID, "edge-1", "1.0.0")
	f.seedAgents(a.ID, c.ID, "web", 60, f.clock.Now())
	if cl := f.getCluster(c.ID); len(cl.Warnings) != 0 {
		t.Errorf("proxy online: got warnings %q, want none", cl.Warnings)
	}
	f.clock.Advance(f.db.Settings().ProxyOfflineAfter + time.Second)
	cl := f.getCluster(c.ID)
	want := "proxy down: all 1 proxy server(s) offline: agents cannot connect through this cluster"
	if len(cl.Warnings) != 1 || cl.Warnings[0].Text() != want {
		t.Errorf("proxy stopped: got warnings %q, want [%q]", cl.Warnings, want)
	}
	for _, w := range cl.Warnings {
		if strings.Contains(w.Text(), "exceed") {
			t.Errorf("got capacity warning %q for a stopped proxy", w)
		}
	}
}

func TestManualProxyIsProxyOnly(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "relay-1", "1.0.0")
	if p.Protected || p.SecurityText() != "proxy only" {
		t.Errorf("manual proxy: got protected=%v %q, want false \"proxy only\"", p.Protected, p.SecurityText())
	}
}

// TestParseStatus: the agent status filter an operator types is read into
// store.Status; anything else is refused with the allowed values.
func TestParseStatus(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    store.Status
		wantErr string
	}{
		{"online", store.StatusOnline, ""},
		{"offline", store.StatusOffline, ""},
		{"uninstalled", store.StatusUninstalled, ""},
		{"Online", "", `status "Online": want online, offline or uninstalled`},
		{"up", "", `status "up": want online, offline or uninstalled`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := store.ParseStatus(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = store.ErrorMessage(err)
				wantCode(t, err, store.EInvalid)
			}
			if got != tt.want || gotErr != tt.wantErr {
				t.Errorf("ParseStatus(%q): got %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

// TestInstallState: revoked wins over expired; neither is active.
func TestInstallState(t *testing.T) {
	for _, tt := range []struct {
		name             string
		revoked, expired bool
		want             store.InstallState
	}{
		{"active", false, false, store.InstallActive},
		{"expired", false, true, store.InstallExpired},
		{"revoked", true, false, store.InstallRevoked},
		{"revoked and expired", true, true, store.InstallRevoked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := (store.InstallCommand{Revoked: tt.revoked, Expired: tt.expired}).State(); got != tt.want {
				t.Errorf("State: got %q, want %q", got, tt.want)
			}
		})
	}
}

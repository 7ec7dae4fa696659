package main

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// The listings show, beside the seed's online rule, whether each agent is
// connected now and through which relay; a stopped relay is "proxy down".
func TestCLIConnectedNow(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	c.ok("cluster", "create", "--name", "edge", "--address", "relay.example.com")
	ids := seedAgents(t, c, key, 2, "web")
	path := filepath.Join(c.data, "outpost.db")
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cl, err := db.FindCluster(ctx, 0, "edge")
	if err != nil {
		t.Fatal(err)
	}
	jt, err := db.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := db.JoinProxy(ctx, store.JoinInput{Token: jt.Token, Hostname: "edge-2", URLs: []string{"https://edge-2:8443"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Bind(ctx, cl.ID, ids); err != nil {
		t.Fatal(err)
	}
	// web-0000 checks in through edge-2 now; web-0001 last checked in two
	// minutes ago (still online, not connected now).
	if err := db.RecordCheckins(ctx, []store.Checkin{{AgentID: ids[0], ViaProxyID: p.ID}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE agents SET last_checkin = ? WHERE id = ?`, time.Now().Add(-2*time.Minute).UnixMilli(), ids[1]); err != nil {
		t.Fatal(err)
	}

	t.Run("agent list", func(t *testing.T) {
		out := c.ok("agent", "list").stdout
		for _, want := range []string{`(?m)^HOST .* STATUS +CONNECTED +SECURITY `, `(?m)^web-0000 .* online +yes via edge-2 +Protected `,
			`(?m)^web-0001 .* online +no +Protected `} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("agent list: no line matching %s in\n%s", want, out)
			}
		}
		var page agentPage
		c.json(&page, "agent", "list")
		got := map[string]string{}
		for _, g := range page.Agents {
			got[g.Hostname] = g.Via
			if want := g.Hostname == "web-0000"; g.Connected != want || !g.Online || g.Status != store.StatusOnline {
				t.Errorf("%s --json: got connected=%v online=%v status %s, want connected=%v online", g.Hostname, g.Connected, g.Online, g.Status, want)
			}
		}
		if got["web-0000"] != "edge-2" || got["web-0001"] != store.ViaDirect {
			t.Errorf("--json via: got %v, want web-0000 edge-2, web-0001 direct", got)
		}
	})
	t.Run("agent show", func(t *testing.T) {
		if out := c.ok("agent", "show", "web-0000").stdout; !regexp.MustCompile(`(?m)^Connected +yes, via edge-2 \(proxy server \d+\)$`).MatchString(out) {
			t.Errorf("agent show web-0000: no connected-now line in\n%s", out)
		}
		if out := c.ok("agent", "show", "web-0001").stdout; !regexp.MustCompile(`(?m)^Connected +no: last check-in 2m ago via direct`).MatchString(out) {
			t.Errorf("agent show web-0001: no not-connected line in\n%s", out)
		}
	})
	t.Run("cluster list and show", func(t *testing.T) {
		if out := c.ok("cluster", "list").stdout; !strings.Contains(out, "2/2 online, 1 connected now") {
			t.Errorf("cluster list: want 2/2 online, 1 connected now in\n%s", out)
		}
		if out := c.ok("cluster", "show", "edge").stdout; !regexp.MustCompile(`(?m)^Agents +2 bound, 2 online, 1 connected now$`).MatchString(out) {
			t.Errorf("cluster show: no agents line in\n%s", out)
		}
		var got struct {
			AgentsOnline    int `json:"agents_online"`
			AgentsConnected int `json:"agents_connected"`
		}
		c.json(&got, "cluster", "show", "edge")
		if got.AgentsOnline != 2 || got.AgentsConnected != 1 {
			t.Errorf("cluster show --json: got %+v, want 2 online, 1 connected", got)
		}
	})
	t.Run("proxy list", func(t *testing.T) {
		if out := c.ok("proxy", "list").stdout; !regexp.MustCompile(`(?m)^\d+ +edge +edge-2 .* proxy only +`).MatchString(out) {
			t.Errorf("proxy list: want the manual proxy edge-2 shown as proxy only in\n%s", out)
		}
	})
	t.Run("relay stopped", func(t *testing.T) {
		if _, err := raw.Exec(`UPDATE proxies SET last_seen = ?`, time.Now().Add(-time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		out := c.ok("cluster", "show", "edge").stdout
		if !strings.Contains(out, "proxy down: all 1 proxy server(s) offline: agents cannot connect through this cluster") || strings.Contains(out, "exceed") {
			t.Errorf("cluster show with its relay stopped: want the proxy-down warning and no capacity warning in\n%s", out)
		}
	})
}

// A policy value whose meaning would be guessed is refused with the cause,
// exit 2, and changes nothing.
func TestPolicyValueMessages(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	c.ok("cluster", "create", "--name", "edge", "--address", "relay.example.com")
	c.ok("cluster", "policy", "edge", "--mode", "cache", "--cache-max", "5GB")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bare bandwidth", []string{"gz", "--bandwidth", "2"}, "invalid --bandwidth: bandwidth 2 needs a unit, e.g. 2Mbit or 250KB/s"},
		{"bare link", []string{"gz", "--link", "100"}, "invalid --link: link 100 needs a unit, e.g. 100Mbit or 1Gbit"},
		{"cache-max 0", []string{"edge", "--cache-max", "0"}, "invalid --cache-max 0: cache-max must be more than 0"},
		{"cache-max 0GB", []string{"edge", "--cache-max", "0GB"}, "cache-max must be more than 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.snapshot()
			c.fails(2, tt.want, append([]string{"cluster", "policy"}, tt.args...)...)
			if after := c.snapshot(); after != before {
				t.Errorf("refused policy changed the database:\n--- before\n%s\n--- after\n%s", before, after)
			}
		})
	}
}

// The up summary counts agents connected now beside online ones.
func TestFleetSummaryConnectedNow(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	acct, key, err := db.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := db.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: "edge", Address: "relay.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.Enrol(ctx, store.EnrolInput{Key: key, Host: store.HostFacts{Hostname: "web-01", OS: "linux", Fingerprint: "fp-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Bind(ctx, cl.ID, []string{e.Agent.ID}); err != nil {
		t.Fatal(err)
	}
	out, err := fleetSummary(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"agents: 1 enrolled, 1 online, 1 connected now, 0 direct", "agents 1/1 online, 1 connected now"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not contain %q:\n%s", want, out)
		}
	}
}

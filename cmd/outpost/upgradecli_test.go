package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// TestAgentUpgradeCommand: agent upgrade queues upgrade commands (HOST...
// all or nothing, --cluster skipping with reasons), refuses with one line
// when it cannot, and agent show (and --json) follows the command through
// its stages to its end.
func TestAgentUpgradeCommand(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	ids := seedAgents(t, c, key, 3, "web") // version 1.0.0
	c.ok("cluster", "create", "--name", "edge", "--address", "relay.example.com")
	c.ok("agent", "bind", "--cluster", "edge", "web-0000", "web-0001")

	c.fails(2, "give HOST..., --cluster N or --all (exactly one)", "agent", "upgrade")
	c.fails(2, "exactly one", "agent", "upgrade", "web-0000", "--all")
	before := c.snapshot()
	c.fails(1, "no release is published", "agent", "upgrade", "web-0000")
	if c.snapshot() != before {
		t.Errorf("a refused upgrade changed the database")
	}
	signing := releaseKey(t, c)
	c.ok("release", "add", "0.9.0", "--file", releasePackage(t), "--key", signing)
	c.ok("release", "add", "1.1.0", "--file", releasePackage(t), "--key", signing)

	r := c.ok("agent", "upgrade", "web-0000")
	if !strings.Contains(r.stdout, "1 agent(s) of 1 host(s) queued for upgrade to 1.1.0") {
		t.Errorf("agent upgrade: %s", r)
	}
	for _, tt := range []struct{ name, host, want string }{
		{"under way", "web-0000", "has an upgrade under way (command"},
		{"unknown host", "nope", `host "nope" not found`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := c.snapshot()
			c.fails(1, tt.want, "agent", "upgrade", tt.host, "web-0002")
			if c.snapshot() != before {
				t.Errorf("a refused upgrade changed the database")
			}
		})
	}
	c.fails(1, "runs 1.0.0, newer than 0.9.0 (--force downgrades it)", "agent", "upgrade", "web-0002", "--version", "0.9.0")
	c.fails(1, "release 2.0.0 is not published", "agent", "upgrade", "web-0002", "--version", "2.0.0")

	var res struct {
		Version string               `json:"version"`
		Queued  []store.AgentUpgrade `json:"queued"`
		Skipped []store.AgentUpgrade `json:"skipped"`
	}
	c.json(&res, "agent", "upgrade", "--cluster", "edge")
	if res.Version != "1.1.0" || len(res.Queued) != 1 || res.Queued[0].AgentID != ids[1] || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "under way") {
		t.Errorf("upgrade --cluster: got %+v, want web-0001 queued, web-0000 skipped as under way", res)
	}
	r = c.ok("agent", "upgrade", "web-0002", "--version", "0.9.0", "--force")
	if !strings.Contains(r.stdout, "queued for upgrade to 0.9.0") {
		t.Errorf("--force: %s", r)
	}
	var es []store.AuditEntry
	c.json(&es, "audit")
	if len(es) == 0 || es[0].Action != "agent.upgrade.force" || !strings.Contains(es[0].Detail, "to=0.9.0") {
		t.Errorf("audit: got %+v, want agent.upgrade.force to=0.9.0 first", es)
	}

	// The agent reports, as its relay would record it.
	db, err := store.Open(filepath.Join(c.data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cmds, err := db.DeliverCommands(context.Background(), store.TargetAgent, ids[0])
	if err != nil || len(cmds) == 0 {
		t.Fatalf("deliver: %v %v", cmds, err)
	}
	up := cmds[len(cmds)-1]
	for _, tt := range []struct {
		report store.CommandReport
		want   string
	}{
		{store.CommandReport{}, "to 1.1.0: delivered"},
		{store.CommandReport{State: wire.StateRunning, Stage: wire.StageDownloading}, "to 1.1.0: downloading"},
		{store.CommandReport{State: wire.StateRunning, Stage: wire.StageRestarting}, "to 1.1.0: restarting"},
		{store.CommandReport{State: wire.StateRolledBack, Error: "the new version crashed 3 times in a minute"}, "to 1.1.0: rolled back: the new version crashed 3 times in a minute"},
	} {
		if tt.report.State != "" {
			tt.report.ID = up.ID
			if err := db.ReportCommands(context.Background(), store.TargetAgent, ids[0], []store.CommandReport{tt.report}); err != nil {
				t.Fatal(err)
			}
		}
		r := c.ok("agent", "show", "web-0000")
		if !strings.Contains(r.stdout, "Upgrade") || !strings.Contains(r.stdout, tt.want+" (command "+fmt.Sprint(up.ID)) {
			t.Errorf("agent show: want %q in\n%s", tt.want, r.stdout)
		}
		var g store.Agent
		c.json(&g, "agent", "show", "web-0000")
		if g.Upgrade == nil || g.Upgrade.ID != up.ID || store.UpgradeText(g.Upgrade) != tt.want {
			t.Errorf("agent show --json: got upgrade %+v, want %q", g.Upgrade, tt.want)
		}
	}
}

// fakeRelays plays the relays of a cluster against the store, as the
// management host records them: a heartbeat every 50 ms (online, at its
// version), and for an upgrade command the stages, then done and the new
// version, or the outcome the script gives.
type fakeRelays struct {
	db      *store.DB
	mu      sync.Mutex
	version map[int64]string
	// outcome: nil = healthy after 300 ms; else the report to send
	// (rolled back, failed), or State "" to stay downloading.
	outcome map[int64]*store.CommandReport
}

func startFakeRelays(t *testing.T, c *cli, ps []store.Proxy, outcome map[int64]*store.CommandReport) *fakeRelays {
	t.Helper()
	db, err := store.Open(filepath.Join(c.data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRelays{db: db, version: map[int64]string{}, outcome: outcome}
	for _, p := range ps {
		f.version[p.ID] = p.Version
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); f.run(ctx, p.ID) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait(); db.Close() })
	return f
}

func (f *fakeRelays) run(ctx context.Context, id int64) {
	target := fmt.Sprint(id)
	var cur *store.Command
	var since time.Time
	for ctx.Err() == nil {
		f.mu.Lock()
		v := f.version[id]
		f.mu.Unlock()
		f.db.Heartbeat(ctx, id, v, 0, 0)
		if cmds, _ := f.db.DeliverCommands(ctx, store.TargetProxy, target); len(cmds) > 0 && cmds[0].Type == wire.CmdUpgrade {
			cur, since = &cmds[0], time.Now()
		}
		if cur != nil {
			out := f.outcome[id]
			var r []store.CommandReport
			switch {
			case time.Since(since) < 300*time.Millisecond || (out != nil && out.State == ""):
				r = []store.CommandReport{{ID: cur.ID, State: wire.StateRunning, Stage: wire.StageDownloading}}
			case out != nil:
				r = []store.CommandReport{{ID: cur.ID, State: out.State, Error: out.Error}}
				cur = nil
			default:
				var a wire.UpgradeArgs
				json.Unmarshal([]byte(cur.Payload), &a)
				f.mu.Lock()
				f.version[id] = a.Version
				f.mu.Unlock()
				f.db.Heartbeat(ctx, id, a.Version, 0, 0) // the new binary, healthy
				r = []store.CommandReport{{ID: cur.ID, State: wire.StateDone}}
				cur = nil
			}
			f.db.ReportCommands(ctx, store.TargetProxy, target, r)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func proxyCluster(t *testing.T, c *cli, n int) []store.Proxy {
	t.Helper()
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "edge", "--address", "relay.example.com")
	var ps []store.Proxy
	for i := range n {
		var jt struct {
			Token string `json:"token"`
		}
		c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--manual")
		ps = append(ps, joinProxy(t, c, jt.Token, fmt.Sprintf("px-%d", i+1), "1.0.0"))
	}
	c.ok("release", "add", "1.1.0", "--file", releasePackage(t), "--key", releaseKey(t, c))
	return ps
}

// TestProxyRollingUpgrade: proxy upgrade --cluster upgrades one proxy at a
// time, the next queued only once the one before is done and online at
// the new version, and says so line by line; proxy list shows the
// version and the upgrade's state.
func TestProxyRollingUpgrade(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	ps := proxyCluster(t, c, 3)
	f := startFakeRelays(t, c, ps, nil)
	r := c.ok("proxy", "upgrade", "--cluster", "edge")
	for i, want := range []string{
		"proxy server 1 (px-1): upgrade 1.0.0 -> 1.1.0 queued (1/3)", "proxy server 1 (px-1): online at 1.1.0 after",
		"proxy server 2 (px-2): upgrade 1.0.0 -> 1.1.0 queued (2/3)", "proxy server 2 (px-2): online at 1.1.0 after",
		"proxy server 3 (px-3): upgrade 1.0.0 -> 1.1.0 queued (3/3)", "proxy server 3 (px-3): online at 1.1.0 after",
		"cluster edge: 3 proxy server(s) upgraded to 1.1.0",
	} {
		if lines := strings.Split(r.stdout, "\n"); len(lines) <= i || !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: want %q in\n%s", i+1, want, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("stderr: %q, want no warning for three proxies", r.stderr)
	}
	// One at a time: each command was queued after the one before ended.
	var prevEnd time.Time
	for _, p := range ps {
		cs, err := f.db.ListCommands(context.Background(), store.TargetProxy, fmt.Sprint(p.ID), 1)
		if err != nil || len(cs) != 1 || cs[0].State != wire.StateDone {
			t.Fatalf("proxy %d: %+v %v, want its upgrade done", p.ID, cs, err)
		}
		if cs[0].CreatedAt.Before(prevEnd) {
			t.Errorf("proxy %d: queued at %s, before the previous upgrade ended at %s", p.ID, cs[0].CreatedAt, prevEnd)
		}
		prevEnd = cs[0].EndedAt
	}
	var list []store.Proxy
	c.json(&list, "proxy", "list")
	for _, p := range list {
		if p.Version != "1.1.0" || p.UpgradeState != "to 1.1.0: done" {
			t.Errorf("proxy list --json: proxy %d at %s, upgrade %q; want 1.1.0, done", p.ID, p.Version, p.UpgradeState)
		}
	}
	if r := c.ok("proxy", "list"); !strings.Contains(r.stdout, "to 1.1.0: done") {
		t.Errorf("proxy list: %s", r.stdout)
	}
	// Again: every proxy is at the release, so all are skipped.
	var again struct {
		Version string `json:"version"`
		Proxies []struct {
			ID     int64  `json:"id"`
			State  string `json:"state"`
			Reason string `json:"reason"`
		} `json:"proxies"`
	}
	r = c.json(&again, "proxy", "upgrade", "--cluster", "edge")
	if again.Version != "1.1.0" || len(again.Proxies) != 3 || again.Proxies[0].State != "skipped" || again.Proxies[0].Reason != "already runs 1.1.0" {
		t.Errorf("upgrade --cluster --json again: got %+v, want the three skipped as already at 1.1.0", again)
	}
	if !strings.Contains(r.stderr, "proxy server 1 (px-1): skipped: already runs 1.1.0") {
		t.Errorf("with --json the progress goes to stderr: got %q", r.stderr)
	}
	if r := c.ok("proxy", "upgrade", "--cluster", "edge"); !strings.Contains(r.stdout, "cluster edge: no proxy server to upgrade to 1.1.0 (all skipped, see above)") {
		t.Errorf("again: %s", r)
	}
	c.fails(2, "give proxy IDs or --cluster N", "proxy", "upgrade")
	c.fails(2, "--timeout applies to --cluster only", "proxy", "upgrade", "1", "--timeout", "1m")
}

// TestProxyRollingUpgradeStops: the first rollback or timeout stops the
// run, naming the proxy and the reason, and the proxies after it are not
// queued; a single-proxy cluster is warned about.
func TestProxyRollingUpgradeStops(t *testing.T) {
	t.Parallel()
	t.Run("rolled back", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t)
		ps := proxyCluster(t, c, 3)
		f := startFakeRelays(t, c, ps, map[int64]*store.CommandReport{ps[1].ID: {State: wire.StateRolledBack, Error: "no healthy heartbeat within 2m0s; last log: panic: boom"}})
		r := c.run("proxy", "upgrade", "--cluster", "edge")
		want := fmt.Sprintf("outpost: proxy server %d (px-2): upgrade to 1.1.0 rolled back: no healthy heartbeat within 2m0s; last log: panic: boom (command", ps[1].ID)
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "stopped there: 1 of 3 upgraded before it, the rest keep their version") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("got %s\nwant exit 1 and one line %q...", r, want)
		}
		if !strings.Contains(r.stdout, "px-1): online at 1.1.0") || strings.Contains(r.stdout, "px-3") {
			t.Errorf("stdout: %s, want px-1 upgraded and px-3 not touched", r.stdout)
		}
		if cs, _ := f.db.ListCommands(context.Background(), store.TargetProxy, fmt.Sprint(ps[2].ID), 5); len(cs) != 0 {
			t.Errorf("px-3: got commands %+v, want none queued", cs)
		}
		if r := c.ok("proxy", "list"); !strings.Contains(r.stdout, "to 1.1.0: rolled back: no healthy heartbeat") {
			t.Errorf("proxy list: %s, want the rollback shown", r.stdout)
		}
	})
	t.Run("no answer within the bound, single proxy", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t)
		ps := proxyCluster(t, c, 1)
		startFakeRelays(t, c, ps, map[int64]*store.CommandReport{ps[0].ID: {}})
		start := time.Now()
		r := c.run("proxy", "upgrade", "--cluster", "edge", "--timeout", "2s")
		if r.code != 1 || !strings.Contains(r.stderr, "(px-1): not online at 1.1.0 within 2s (command 1 downloading;") || !strings.Contains(r.stderr, "the proxy is online at 1.0.0") {
			t.Errorf("got %s, want the bound's failure", r)
		}
		if !strings.Contains(r.stderr, `warning: cluster "edge" has a single proxy server`) {
			t.Errorf("stderr: %q, want the single-proxy warning", r.stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s, want about the 2 s bound", d)
		}
	})
}
